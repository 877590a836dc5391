"""Which CPU kernel is the default: calibrated once per CPU model and build, then kept.

Measuring the kernels at every launch gave a different pick from run to run on the same
machine (they are close, and a busy machine skews a 20 ms sample by 45 %).  So the pick is
measured once -- several interleaved rounds per kernel, the median of each -- and kept in
the user cache directory under a key of the CPU model, its features and the build of the
native module; it is measured again only when that key changes or when asked
(``sgm bench --save-default``).  ``SGM_IMPL`` or ``--impl`` pin a kernel instead.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sgm._native import _sha256d

log = logging.getLogger(__name__)

CACHE_FILE = "kernel-choice.json"
FORMAT = 1
#: Rounds per kernel, interleaved, and the length of each.
ROUNDS = 5
ROUND_SECONDS = 0.02


def cache_dir() -> Path:
    """Where sgm keeps its per-machine state (``SGM_CACHE_DIR`` overrides it)."""
    forced = os.environ.get("SGM_CACHE_DIR")
    if forced:
        return Path(forced)
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("sgm", appauthor=False))
    except ImportError:
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sgm"


def cache_path() -> Path:
    return cache_dir() / CACHE_FILE


def cpu_model() -> str:
    """The CPU's model name (what /proc/cpuinfo says), for people and cache keys."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _build_id() -> str:
    """A digest of the compiled kernel module: a rebuild with other kernels or flags is a
    new build."""
    path = getattr(_sha256d, "__file__", None)
    if not path:
        return "unknown"
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return "unknown"
    return h.hexdigest()[:16]


def machine_key() -> dict[str, Any]:
    """What a calibration is valid for."""
    return {"cpu": cpu_model(), "features": _sha256d.cpu_features(),
            "build": _build_id(), "kernels": _sha256d.available_implementations()}


def measure(rounds: int = ROUNDS, seconds: float = ROUND_SECONDS) -> dict[str, float]:
    """hashes/s of every available kernel but the portable one: the median of ``rounds``
    interleaved rounds each (so a burst of load hits every kernel alike)."""
    names = _sha256d.available_implementations()
    candidates = [n for n in names if n != "scalar"] or names
    midstate, tail = bytes(32), bytes(12)
    samples: dict[str, list[float]] = {n: [] for n in candidates}
    for name in candidates:                      # warm up (page in, clocks up)
        _sha256d.scan(midstate, tail, 0, 1 << 14, 0, impl=name)
    for _ in range(rounds):
        for name in candidates:
            done = 0
            t0 = time.perf_counter()
            while True:
                done += _sha256d.scan(midstate, tail, done, 1 << 15, 0, impl=name).scanned
                elapsed = time.perf_counter() - t0
                if elapsed >= seconds:
                    break
            samples[name].append(done / elapsed)
    return {n: statistics.median(v) for n, v in samples.items()}


def load() -> dict[str, Any] | None:
    """The kept calibration, if it is valid for this machine and build."""
    try:
        data = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    if data.get("key") != machine_key():
        return None
    impl = data.get("impl")
    if not isinstance(impl, str) or impl not in _sha256d.available_implementations():
        return None
    return data


def calibrate(save: bool = True) -> dict[str, Any]:
    """Measure the kernels, pick the fastest, and keep the result (unless ``save`` is
    False).  Returns the record: impl, rates, measured_at, key, path."""
    rates = measure()
    impl = max(rates, key=rates.__getitem__)
    record = {"format": FORMAT, "impl": impl, "rates": rates,
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "key": machine_key()}
    if save:
        _save(record)
    _sha256d._reset_default(rates)
    return record


def save_choice(impl: str, rates: dict[str, float] | None = None) -> dict[str, Any]:
    """Keep ``impl`` as this CPU's default kernel because a person chose it (e.g. from
    benchmark figures); ``rates`` are the hashes/s they saw, kept for ``explain``.

    The running process's kernels keep theirs; a CPU device made after this (the next start
    of mining) uses ``impl``.  Raises ValueError for a kernel this CPU cannot run and
    OSError when the cache file cannot be written (a choice that silently held for one
    process only would look saved to the person who made it)."""
    if impl not in _sha256d.available_implementations():
        raise ValueError(f"kernel {impl!r} is not available on this CPU; available: "
                         f"{', '.join(_sha256d.available_implementations())}")
    kept = {str(k): float(v) for k, v in (rates or {}).items()}
    record = {"format": FORMAT, "impl": impl, "rates": kept,
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "key": machine_key(), "chosen_by": "user"}
    _write(record)
    _sha256d._reset_default(kept)
    return record


def _write(record: dict[str, Any]) -> None:
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".kernel-choice-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _save(record: dict[str, Any]) -> None:
    path = cache_path()
    try:
        _write(record)
    except OSError as exc:   # a read-only home: the pick holds for this process only
        log.debug("kernel choice not saved to %s: %s", path, exc)


def choose() -> str:
    """The default kernel: the kept calibration, or a new one (kept for next time)."""
    data = load()
    if data is not None:
        _sha256d._reset_default(data.get("rates") or {})
        return str(data["impl"])
    return str(calibrate(save=True)["impl"])


def explain(impl_option: str | None = None) -> str:
    """Why the CPU kernel in use is the one it is (for ``sgm devices`` and the summary)."""
    if impl_option:
        return f"{impl_option}: chosen with --impl"
    forced = os.environ.get("SGM_IMPL")
    if forced:
        return f"{forced}: pinned by SGM_IMPL"
    data = load()
    if data is None:
        return "not calibrated yet (measured at first use and kept)"
    rates = data.get("rates") or {}
    shown = ", ".join(f"{n} {r / 1e6:.1f} MH/s"
                      for n, r in sorted(rates.items(), key=lambda kv: -kv[1]))
    if data.get("chosen_by") == "user":
        return (f"{data['impl']}: chosen by the user on {data.get('measured_at', '?')}"
                + (f" (benchmark: {shown})" if shown else "")
                + f"; kept in {cache_path()}; recalibrate with sgm bench --save-default")
    return (f"{data['impl']}: fastest when calibrated on {data.get('measured_at', '?')} "
            f"({shown}; one thread); kept in {cache_path()}; "
            f"recalibrate with sgm bench --save-default")
