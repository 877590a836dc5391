"""Compute devices: what this machine offers and the narrow interface they implement."""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field

from sgm import _native
from sgm._native.choice import cpu_model

log = logging.getLogger(__name__)


#: What --devices accepts besides device names (openclP.D): ``cpu`` (the native kernels),
#: ``opencl`` (every OpenCL device, CPU ones included), ``opencl-gpu`` (OpenCL GPUs only).
DEVICE_KINDS = ("cpu", "opencl", "opencl-gpu")
#: Without --devices: the CPU and every OpenCL GPU (an OpenCL CPU device such as PoCL runs
#: on the same cores as the native kernels, so it is used only when asked for).
DEFAULT_DEVICES = ("cpu", "opencl-gpu")
_OPENCL_NAME = re.compile(r"opencl\d+\.\d+")


class DeviceSelectionError(ValueError):
    """A --devices selection names a device this machine does not have (a usage error:
    the CLI exits 2, like for any other bad option)."""


def check_device_selection(selection: tuple[str, ...]) -> None:
    """ValueError naming what is wrong with a --devices selection."""
    bad = [s for s in selection if s not in DEVICE_KINDS and not _OPENCL_NAME.fullmatch(s)]
    if bad or not selection:
        raise ValueError(f"--devices: unknown device kind(s) {', '.join(bad) or '(none)'}; use "
                         f"{', '.join(DEVICE_KINDS)} or an OpenCL device name such as opencl0.0 "
                         "(see sgm devices)")


@dataclass(frozen=True)
class DeviceInfo:
    """One device found on this machine (before any mining starts)."""

    name: str
    kind: str  # "cpu" | "opencl"
    description: str
    compute_units: int
    implementations: list[str] = field(default_factory=list)
    default_impl: str = ""
    platform: str = ""              # OpenCL: the platform's name
    device_type: str = "CPU"        # OpenCL: "GPU" | "CPU" | "accelerator" | "other"
    driver_version: str = ""
    used_by_default: bool = True    # mined with when --devices is not given


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def detect_cpu() -> DeviceInfo:
    return DeviceInfo(
        name="cpu0",
        kind="cpu",
        description=cpu_model(),
        compute_units=cpu_count(),
        implementations=_native.available_implementations(),
        default_impl=_native.default_implementation(),
    )


def detect_opencl() -> tuple[list[DeviceInfo], str | None]:
    """OpenCL devices on every platform, or ([], reason) when there are none.

    A GPU is used by default; an OpenCL CPU device (PoCL) shares the cores with the native
    CPU kernels and is used only when asked for (``--devices opencl`` or its name).
    """
    from sgm.devices.opencl import discover

    found, reason = discover()
    return [info for info, _ in found], reason
