"""Which OpenCL devices this machine has, and which a --devices selection names."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sgm.devices import DeviceInfo, DeviceSelectionError
from sgm.devices.opencl import runtime
from sgm.devices.opencl.program import KERNEL_FILE
from sgm.devices.opencl.runtime import (
    INSTALL_HINT,
    OpenCLBuildError,
    OpenCLUnavailable,
    device_type_name,
    opencl_errors,
)

if TYPE_CHECKING:
    from sgm.devices.opencl.device import OpenCLDevice

log = logging.getLogger(__name__)


def discover() -> tuple[list[tuple[DeviceInfo, Any]], str | None]:
    """Every OpenCL device on every platform: [(info, pyopencl.Device)], or ([], reason)."""
    if runtime.cl is None:
        return [], f"pyopencl is not installed ({INSTALL_HINT})"
    try:
        platforms = runtime.cl.get_platforms()
    except Exception as exc:  # noqa: BLE001 - LogicError/RuntimeError without an ICD
        return [], f"no OpenCL platform ({exc}); {INSTALL_HINT}"
    found: list[tuple[DeviceInfo, Any]] = []
    problems: list[str] = []
    for p_index, plat in enumerate(platforms):
        try:
            devs = plat.get_devices()
        except Exception as exc:  # noqa: BLE001 - a platform without devices raises
            problems.append(f"{plat.name.strip()}: {exc}")
            continue
        for d_index, dev in enumerate(devs):
            kind = device_type_name(dev)
            found.append((DeviceInfo(
                name=f"opencl{p_index}.{d_index}",
                kind="opencl",
                description=f"{dev.name.strip()} ({plat.name.strip()})",
                compute_units=int(dev.max_compute_units),
                implementations=[KERNEL_FILE],
                default_impl=KERNEL_FILE,
                platform=plat.name.strip(),
                device_type=kind,
                driver_version=str(dev.driver_version).strip(),
                used_by_default=kind == "GPU",
            ), dev))
    if found:
        return found, None
    return [], "OpenCL platforms have no devices" + (f" ({'; '.join(problems)})" if problems else "")


def select(selection: Iterable[str]) -> tuple[list[tuple[DeviceInfo, Any]], list[str]]:
    """The OpenCL devices a --devices selection names, and warnings to show.

    ``opencl``: every OpenCL device; ``opencl-gpu``: every OpenCL GPU (the default, with
    ``cpu``); ``openclP.D``: that device.  An OpenCL CPU device (PoCL) is used only when
    asked for by ``opencl`` or its name.
    """
    sel = list(selection)
    wanted_all = "opencl" in sel
    wanted_gpus = "opencl-gpu" in sel
    names = [s for s in sel if s.startswith("opencl") and s not in ("opencl", "opencl-gpu")]
    if not (wanted_all or wanted_gpus or names):
        return [], []
    found, reason = discover()
    warnings: list[str] = []
    if not found:
        if wanted_all or names:
            warnings.append(f"opencl: no device ({reason})")
        else:
            log.debug("opencl: no GPU (%s)", reason)
        return [], warnings
    known = {info.name for info, _ in found}
    for n in names:
        if n not in known:
            warnings.append(f"opencl: no device named {n} (found: {', '.join(sorted(known))})")
    chosen = [(info, dev) for info, dev in found
              if wanted_all or info.name in names or (wanted_gpus and info.used_by_default)]
    return chosen, warnings


def make_devices(selection: Iterable[str], **options: Any) -> list[OpenCLDevice]:
    """OpenCLDevice objects for a selection; a device whose kernel does not build is
    left out with one log line."""
    chosen, warnings = select(selection)
    names = [s for s in selection if s.startswith("opencl") and s not in ("opencl", "opencl-gpu")]
    missing = [n for n in names if n not in {info.name for info, _ in chosen}]
    if missing:   # asked for by name: a typo must not quietly mine without that device
        found = sorted(info.name for info, _ in discover()[0])
        raise DeviceSelectionError(f"--devices: no OpenCL device named {', '.join(missing)} "
                                   f"(found: {', '.join(found) or 'none'}; see sgm devices)")
    for w in warnings:
        log.warning("%s", w)
    from sgm.devices.opencl.device import OpenCLDevice  # the device knows discovery, not back

    devices = []
    errors: tuple[type[BaseException], ...] = (OpenCLBuildError, ValueError, *opencl_errors())
    for info, dev in chosen:
        try:
            devices.append(OpenCLDevice(info.name, dev, description=info.description, **options))
        except errors as exc:
            log.error("%s (%s): cannot use it: %s", info.name, info.description,
                      str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return devices


def first_device(prefer_gpu: bool = True) -> tuple[DeviceInfo, Any]:
    """The OpenCL device `sgm scan`/`sgm bench` use first: a GPU when there is one."""
    found, reason = discover()
    if not found:
        raise OpenCLUnavailable(f"no OpenCL device: {reason}")
    if prefer_gpu:
        gpus = [f for f in found if f[0].device_type == "GPU"]
        if gpus:
            return gpus[0]
    return found[0]
