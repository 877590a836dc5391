"""The OpenCL runtime: pyopencl when it is installed, and the errors it raises."""
from __future__ import annotations

from typing import Any

try:  # optional dependency: pip install 'sgm[opencl]'
    import pyopencl as cl
except ImportError:  # pragma: no cover - exercised where pyopencl is missing
    cl = None  # type: ignore[assignment]

INSTALL_HINT = ("install an OpenCL runtime: pip install 'sgm[opencl]' for pyopencl plus your "
                "GPU's OpenCL driver, or pip install 'pyopencl[pocl]' for PoCL's CPU device")


class OpenCLUnavailable(RuntimeError):
    """No usable OpenCL runtime (pyopencl missing, no platform, or no device)."""


class OpenCLBuildError(RuntimeError):
    """The kernel could not be built (or loaded) for a device."""


def require_opencl() -> Any:
    """The pyopencl module, or OpenCLUnavailable saying what to install."""
    if cl is None:
        raise OpenCLUnavailable(f"pyopencl is not installed: {INSTALL_HINT}")
    return cl


def opencl_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'the OpenCL runtime or device failed'."""
    return (cl.Error,) if cl is not None else ()


def device_type_name(dev: Any) -> str:
    t = int(dev.type)
    if t & cl.device_type.GPU:
        return "GPU"
    if t & cl.device_type.ACCELERATOR:
        return "accelerator"
    if t & cl.device_type.CPU:
        return "CPU"
    return "other"


__all__ = ["INSTALL_HINT", "OpenCLBuildError", "OpenCLUnavailable", "cl", "device_type_name",
           "opencl_errors", "require_opencl"]
