"""Latency from raising an AbortFlag to the running native scan returning.

For each kernel, N times: a thread starts a whole-nonce-space scan; once that thread has
spent some CPU time inside the scan, the flag is raised and the clock runs until the scan
call has returned in the worker thread.  Reports the distribution per kernel (the kernels
look at the flag every ABORT_STRIDE nonces).  tests/test_native.py checks the behaviour
(stops early, exact progress); this script measures how fast.

    python benchmarks/abort_latency.py [--tries 50] [--impl NAME] [--json]
"""
from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable

import _common  # noqa: F401  (path setup)
from _common import percentile

from sgm import _native


def cpu_clock_of(thread: threading.Thread) -> Callable[[], float]:
    """CPU seconds used by `thread` (its own clock on Linux; elsewhere the process's CPU
    time less the calling thread's)."""
    clock_id = getattr(time, "pthread_getcpuclockid", None)
    if clock_id is not None and thread.ident is not None:
        cid = clock_id(thread.ident)
        return lambda: time.clock_gettime(cid)
    return lambda: time.process_time() - time.thread_time()


def one_abort(impl: str, inside_cpu_s: float) -> float:
    ms, tail = _native.sha256_midstate(bytes(64)), bytes(12)
    flag = _native.AbortFlag()
    entering = threading.Event()
    box: dict[str, object] = {}

    def run() -> None:
        entering.set()
        box["res"] = _native.scan(ms, tail, 0, 1 << 32, 0, impl=impl, abort=flag)
        box["end"] = time.perf_counter()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    entering.wait()
    clock = cpu_clock_of(worker)
    cpu0 = clock()
    while worker.is_alive() and clock() - cpu0 < inside_cpu_s:
        time.sleep(0.001)
    raised = time.perf_counter()
    flag.set()
    worker.join()
    res, end = box.get("res"), box.get("end")
    if not (isinstance(res, _native.ScanResult) and res.aborted and res.scanned > 0
            and isinstance(end, float)):
        raise SystemExit(f"{impl}: the scan was not aborted mid-way: {res!r}")
    return end - raised


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tries", type=int, default=50)
    p.add_argument("--impl", action="append", help="only this kernel (repeatable)")
    p.add_argument("--inside", type=float, default=0.01, metavar="SECONDS",
                   help="CPU time the scan runs before the flag is raised (default 0.01)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    impls = a.impl or _native.available_implementations()
    out: dict[str, object] = {"tries": a.tries, "abort_stride": _native.ABORT_STRIDE, "impls": {}}
    for impl in impls:
        ms = [one_abort(impl, a.inside) * 1e3 for _ in range(a.tries)]
        row = {"p50_ms": percentile(ms, 0.5), "p90_ms": percentile(ms, 0.9),
               "p99_ms": percentile(ms, 0.99), "max_ms": max(ms), "min_ms": min(ms)}
        out["impls"][impl] = row  # type: ignore[index]
        if not a.json:
            print(f"{impl:>10}: {a.tries} aborts: min {row['min_ms']:.3f} ms, "
                  f"p50 {row['p50_ms']:.3f} ms, p90 {row['p90_ms']:.3f} ms, "
                  f"p99 {row['p99_ms']:.3f} ms, max {row['max_ms']:.3f} ms")
    if a.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
