"""Compute devices: what this machine offers and the narrow interface they implement."""
from __future__ import annotations

import logging
import os
import platform
from dataclasses import dataclass, field

from sgm import _native

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceInfo:
    """One device found on this machine (before any mining starts)."""

    name: str
    kind: str  # "cpu" | "opencl"
    description: str
    compute_units: int
    implementations: list[str] = field(default_factory=list)
    default_impl: str = ""


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


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
    """OpenCL devices, or ([], reason) when there are none."""
    try:
        import pyopencl as cl  # type: ignore[import-not-found]
    except ImportError:
        return [], "pyopencl is not installed (pip install 'sgm[opencl]')"
    try:
        platforms = cl.get_platforms()
    except Exception as exc:  # pyopencl raises LogicError/RuntimeError without an ICD
        return [], f"no OpenCL platform: {exc}"
    found: list[DeviceInfo] = []
    for p_index, plat in enumerate(platforms):
        for d_index, dev in enumerate(plat.get_devices()):
            found.append(
                DeviceInfo(
                    name=f"opencl{p_index}.{d_index}",
                    kind="opencl",
                    description=f"{dev.name.strip()} ({plat.name.strip()})",
                    compute_units=int(dev.max_compute_units),
                    implementations=["opencl"],
                    default_impl="opencl",
                )
            )
    return found, None if found else "OpenCL platforms have no devices"
