"""The kernel's geometry tuned on the device it runs on.

At first use on a GPU, a small grid of work-group sizes (64 ... 512) and vector widths (1, 2)
is timed for a fraction of a second each; the fastest is kept beside the compiled programs
(the program cache directory), keyed by the device, its driver and the kernel source, and
every later start uses it.  ``sgm devices`` says what was chosen.  SGM_OPENCL_VECTOR /
SGM_OPENCL_WORKSIZE or explicit arguments still win.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from sgm.devices.opencl.program import ProgramCache, kernel_path
from sgm.devices.opencl.runtime import OpenCLBuildError, opencl_errors

log = logging.getLogger(__name__)

FORMAT = 1
WORKSIZES = (64, 128, 256, 512)
VECTOR_WIDTHS = (1, 2)
#: Seconds each geometry is timed (after its warm-up launch).
TUNE_SECONDS = 0.15


def tuning_path(cache: ProgramCache, dev: Any, source: str) -> Path:
    """Where the tuning of ``dev`` for this kernel source lives."""
    plat = dev.platform
    ident = {"platform": plat.name, "platform_version": plat.version, "vendor": dev.vendor,
             "device": dev.name, "device_version": dev.version, "driver": dev.driver_version,
             "source_sha256": hashlib.sha256(source.encode()).hexdigest()}
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:40]
    return cache.directory / f"tuning-{key}.json"


def load(cache: ProgramCache, dev: Any, source: str) -> dict[str, Any] | None:
    """The kept tuning of ``dev``, or None (none yet, or unreadable)."""
    try:
        data = json.loads(tuning_path(cache, dev, source).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    vw, ws = data.get("vector_width"), data.get("worksize")
    if vw not in VECTOR_WIDTHS or not isinstance(ws, int) or ws < 1:
        return None
    return data


def grid(dev: Any) -> list[tuple[int, int]]:
    """(vector width, work-group size) pairs this device can run."""
    max_ws = int(dev.max_work_group_size)
    return [(vw, ws) for vw in VECTOR_WIDTHS for ws in WORKSIZES if ws <= max_ws]


def tune(dev: Any, cache: ProgramCache | None = None, source: str | None = None,
         seconds: float = TUNE_SECONDS,
         pairs: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    """Time each geometry on ``dev``, keep the fastest and return the record."""
    from sgm.devices.opencl.scanner import OpenCLScanner  # the scanner asks us, not back

    cache = cache or ProgramCache()
    if source is None:
        source = kernel_path().read_text(encoding="utf-8")
    results = []
    failures: tuple[type[BaseException], ...] = (OpenCLBuildError, ValueError, *opencl_errors())
    for vw, ws in pairs or grid(dev):
        entry: dict[str, Any] = {"vector_width": vw, "worksize": ws}
        try:
            sc = OpenCLScanner(dev, vector_width=vw, worksize=ws, cache=cache, source=source,
                               tune=False)
            try:
                entry["hashes_per_s"] = sc.calibrate(seconds)
            finally:
                sc.close()
        except failures as exc:
            entry["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        results.append(entry)
    ok = [r for r in results if "hashes_per_s" in r]
    if not ok:
        raise OpenCLBuildError("no geometry could be timed: " +
                               "; ".join(f"{r['vector_width']}x{r['worksize']}: {r['error']}"
                                         for r in results))
    best = max(ok, key=lambda r: float(r["hashes_per_s"]))
    record = {"format": FORMAT, "device": str(dev.name).strip(),
              "vector_width": best["vector_width"], "worksize": best["worksize"],
              "hashes_per_s": best["hashes_per_s"], "results": results,
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _save(tuning_path(cache, dev, source), record)
    log.info("%s: tuned the kernel: vector width %d, work-group size %d (%.4g H/s)",
             record["device"], best["vector_width"], best["worksize"], best["hashes_per_s"])
    return record


def _save(path: Path, record: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tuning-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)
        os.replace(tmp, path)
    except OSError as exc:   # a read-only cache: the next start tunes again
        log.info("OpenCL tuning not kept (%s)", exc)


def describe(dev: Any, cache: ProgramCache | None = None) -> str:
    """One line for ``sgm devices``: the kept tuning, or that there is none yet."""
    cache = cache or ProgramCache()
    try:
        source = kernel_path().read_text(encoding="utf-8")
    except OpenCLBuildError as exc:
        return f"kernel source missing: {exc}"
    data = load(cache, dev, source)
    if data is None:
        return "not tuned yet (a GPU is tuned at first use and the pick kept)"
    return (f"tuned {data.get('measured_at', '?')}: vector width {data['vector_width']}, "
            f"work-group size {data['worksize']} "
            f"({float(data.get('hashes_per_s', 0)) / 1e6:.1f} MH/s)")


__all__ = ["describe", "grid", "load", "tune", "tuning_path"]
