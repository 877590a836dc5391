"""OpenCL devices: sgm's SHA-256d kernel (``kernels/sha256d.cl``) on any OpenCL device.

* :func:`discover` -- every device of every OpenCL platform, as a DeviceInfo and its handle.
* :func:`kernel_path` -- ``sha256d.cl`` in an installed wheel (``sgm/kernels/``) or in a
  source checkout (``kernels/``, the source of truth).
* :class:`ProgramCache` -- compiled programs on disk (the user cache directory), keyed by
  platform, device, driver version, kernel source hash and build options.
* :class:`OpenCLScanner` -- one device's context, in-order queue, program and result
  buffers: enqueues launches, waits for them without holding the GIL and turns their
  candidates into nonces (the kernel pre-filters on the hash's top word, the host decides
  on the full target).  :meth:`OpenCLScanner.scan_range` is an exact range scan.
* :class:`OpenCLDevice` -- the scheduler-facing :class:`~sgm.devices.base.QueuedDevice`:
  several batches submitted at once and their launches pipelined within and across them,
  the global size adapted to a target kernel time, and an OpenCL error stops this device
  alone (its unscanned work goes back to the queue).
"""
from sgm.devices.opencl.device import OpenCLDevice
from sgm.devices.opencl.discovery import discover, first_device, make_devices, select
from sgm.devices.opencl.precomputation import precompute
from sgm.devices.opencl.program import (
    KERNEL_FILE,
    KERNEL_NAME,
    ProgramCache,
    choose_geometry,
    default_cache_dir,
    kernel_path,
)
from sgm.devices.opencl.runtime import (
    INSTALL_HINT,
    OpenCLBuildError,
    OpenCLUnavailable,
    device_type_name,
    opencl_errors,
    require_opencl,
)
from sgm.devices.opencl.scanner import (
    DEFAULT_DEPTH,
    KERNEL_TIME_CPU,
    KERNEL_TIME_GPU,
    MAX_LAUNCH,
    RESULT_CAPACITY,
    RESULT_PREFIX,
    Launch,
    OpenCLScanner,
    ScanJob,
)

__all__ = [
    "DEFAULT_DEPTH", "INSTALL_HINT", "KERNEL_FILE", "KERNEL_NAME", "KERNEL_TIME_CPU",
    "KERNEL_TIME_GPU", "MAX_LAUNCH", "RESULT_CAPACITY", "RESULT_PREFIX", "Launch",
    "OpenCLBuildError", "OpenCLDevice", "OpenCLScanner", "OpenCLUnavailable", "ProgramCache",
    "ScanJob", "choose_geometry", "default_cache_dir", "device_type_name", "discover",
    "first_device", "kernel_path", "make_devices", "opencl_errors", "precompute",
    "require_opencl", "select",
]
