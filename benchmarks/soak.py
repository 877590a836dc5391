"""Soak: mine the embedded pool (its fault-injecting mode, sgm.pool.faults) for a while
with a new job every second and faults injected at random, and report whether anything
leaks, drifts or goes missing:

    RSS after warm-up and at the end, shares found / accepted / rejected / stale (refused
    by the pool, or never sent) / unanswered, duplicates, hardware errors, the pool's own
    books (invalid shares: should be 0), disconnects, reconnects and the longest reconnect
    gap (every disconnect must be recovered within the client's back-off bound), the
    longest gap in hashing, and whether the miner's counts add up.

    .venv/bin/python benchmarks/soak.py --minutes 10
    .venv/bin/python benchmarks/soak.py --seconds 60 --json /tmp/soak.json

Exit status 1 when a check fails (invalid or duplicate shares at the pool, hardware
errors, counts that do not add up, a disconnect not recovered).
"""
from __future__ import annotations

import argparse
import collections
import ctypes
import ctypes.util
import gc
import json
import logging
import random
import sys
import threading
import time
import tracemalloc
from typing import Any

import _common  # noqa: F401  (path setup)
from _common import rss_bytes

from sgm.miner import Miner, MinerConfig, PoolConfig
from sgm.pool.faults import FaultPoolThread, LedgerCheck, random_fault
from sgm.pool.records import (
    DUPLICATE,
    INVALID_VERSION_BITS,
    LOW_DIFFICULTY,
    MALFORMED,
    NOT_SUBSCRIBED,
    OTHER,
    UNAUTHORIZED,
)

INVALID = (LOW_DIFFICULTY, DUPLICATE, MALFORMED, INVALID_VERSION_BITS, OTHER, UNAUTHORIZED,
           NOT_SUBSCRIBED)
#: the client's settings in the soak: quick to notice a silent pool, quick to come back
BACKOFF_MAX = 5.0
IDLE_TIMEOUT = 4.0
HANDSHAKE_TIMEOUT = 5.0
#: what a busy machine may add to a reconnect beyond the back-off bound
SLACK = 30.0


def _type_counts() -> collections.Counter[str]:
    """Live objects the garbage collector tracks, by type name (after a full collection)."""
    gc.collect()
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


_libc: ctypes.CDLL | None = None


def malloc_trim() -> bool:
    """Ask glibc to hand free heap pages back to the system (glibc only; False elsewhere).
    An RSS that falls back after this was allocator slack, not live objects."""
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        if name is None:
            return False
        _libc = ctypes.CDLL(name)
    trim = getattr(_libc, "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True


class MemoryTrace:
    """tracemalloc snapshots and gc type counts at warm-up end and at the end: where the
    Python heap grew between them (file:line, size and block-count differences) and which
    object types became more numerous."""

    def __init__(self, frames: int = 12) -> None:
        self.frames = frames
        self._snap: tracemalloc.Snapshot | None = None
        self._types: collections.Counter[str] = collections.Counter()
        self.traced_warm = 0

    def start(self) -> None:
        """Trace from the start of the run: a block allocated before tracing and freed
        after warm-up is invisible to tracemalloc, so a structure that only churns (the
        oldest entry out, a new one in) would look like growth."""
        tracemalloc.start(self.frames)

    def warm(self) -> None:
        self._types = _type_counts()
        self._snap = tracemalloc.take_snapshot()
        self.traced_warm = tracemalloc.get_traced_memory()[0]

    def report(self, top: int = 15) -> dict[str, Any]:
        if self._snap is None or not tracemalloc.is_tracing():
            return {}
        gc.collect()
        traced_end = tracemalloc.get_traced_memory()[0]
        end = tracemalloc.take_snapshot()
        overhead = tracemalloc.get_tracemalloc_memory()
        tracemalloc.stop()
        # tracemalloc's own frames and this module's bookkeeping are noise here
        drop = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
        end, warm = end.filter_traces(drop), self._snap.filter_traces(drop)
        sites = end.compare_to(warm, "lineno")
        files = end.compare_to(warm, "filename")
        stacks = end.compare_to(warm, "traceback")
        types = _type_counts()
        types.subtract(self._types)
        self._snap = None
        return {
            "traced_growth_mb": round((traced_end - self.traced_warm) / 2**20, 3),
            "tracemalloc_overhead_mb": round(overhead / 2**20, 2),
            "sites": [f"{g.size_diff / 1024:+.1f} KiB {g.count_diff:+d} blocks  {g.traceback}"
                      for g in sites[:top]],
            "files": [f"{g.size_diff / 1024:+.1f} KiB {g.count_diff:+d} blocks  {g.traceback}"
                      for g in files[:top]],
            "stacks": [[f"{g.size_diff / 1024:+.1f} KiB {g.count_diff:+d} blocks"]
                       + g.traceback.format()
                       for g in stacks[:5]],
            "object_types": [f"{name} {n:+d}" for name, n in types.most_common(15) if n > 0],
        }


class HashWatch:
    """Samples the miner's hash count and keeps the longest time it stood still."""

    def __init__(self, miner: Miner, every: float = 0.1) -> None:
        self.miner, self.every = miner, every
        self.longest = 0.0
        #: when the longest gap began (monotonic)
        self.longest_from = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-hashwatch", daemon=True)

    def start(self) -> HashWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        last_hashes, since = -1, time.monotonic()
        while not self._stop.wait(self.every):
            hashes = int(self.miner.telemetry.snapshot()["hashes"])
            now = time.monotonic()
            if hashes != last_hashes:
                last_hashes, since = hashes, now
            if now - since > self.longest:
                self.longest, self.longest_from = now - since, since

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def soak(seconds: float, *, threads: int = 1, difficulty_bits: int = 20, fault_every: float = 8.0,
         seed: int | None = None, warmup: float | None = None,
         trace_memory: bool = False, trim: bool = False) -> dict[str, Any]:
    rng = random.Random(seed)
    warmup = min(60.0, seconds / 4) if warmup is None else warmup
    pool = FaultPoolThread(difficulty_bits=difficulty_bits, jobs=None, job_interval=1.0).start()
    miner = Miner(MinerConfig(pools=[PoolConfig(pool.url, "soak", "x")], threads=threads,
                              device_kinds=("cpu",)))
    rss_start = rss_bytes()
    miner.start()
    client = miner.client
    assert client is not None
    client.backoff_max = BACKOFF_MAX
    client.idle_timeout = IDLE_TIMEOUT
    client.handshake_timeout = HANDSHAKE_TIMEOUT
    watch = HashWatch(miner).start()
    injected: list[tuple[float, str]] = []
    t0 = time.monotonic()
    rss_warm: int | None = None
    trace = MemoryTrace() if trace_memory else None
    if trace is not None:
        trace.start()
    #: (seconds since start, RSS MB) every minute at most, to tell a steady climb from a step
    rss_curve: list[tuple[float, float]] = []
    next_sample, sample_every = t0, min(60.0, max(10.0, seconds / 10))
    rss_warm_raw = rss_start
    next_fault = t0 + warmup + rng.expovariate(1 / fault_every)
    try:
        while (now := time.monotonic()) - t0 < seconds:
            if rss_warm is None and now - t0 >= warmup:
                rss_warm_raw = rss_bytes()
                if trim:
                    malloc_trim()
                rss_warm = rss_bytes()
                if trace is not None:
                    trace.warm()
            if now >= next_sample:
                rss_curve.append((round(now - t0), round(rss_bytes() / 2**20, 2)))
                next_sample += sample_every
            if now >= next_fault:
                name, options = random_fault(rng)
                try:
                    pool.inject(name, **options)
                    injected.append((round(now - t0, 1), name))
                except Exception as exc:  # noqa: BLE001 - reported, the soak goes on
                    injected.append((round(now - t0, 1), f"{name} failed: {exc}"))
                next_fault = time.monotonic() + rng.expovariate(1 / fault_every)
            time.sleep(0.2)
        # RSS at the end of the mining period: the checks below copy the pool's books
        # (the ledger's share log, the fault book) every 0.2 s, which raises the heap's
        # high-water mark by about 1 MB in the harness, not in the miner or the pool
        rss_end = rss_bytes()
        # the last fault may still be dropping the session: let the miner come back
        end_wait = time.monotonic() + BACKOFF_MAX + SLACK
        accepted_then = pool.stats.accepted
        while time.monotonic() < end_wait and not (
                pool.book.unrecovered == 0 and pool.stats.connections >= 1
                and pool.stats.accepted > accepted_then):
            time.sleep(0.2)
        recovered = pool.book.unrecovered == 0 and pool.stats.connections >= 1
        rss_after_checks = rss_bytes()
        rss_end_trimmed = rss_end
        if trim:
            malloc_trim()
            rss_end_trimmed = rss_bytes()
        memory = trace.report() if trace is not None else {}
        mined_s = time.monotonic() - t0
    finally:
        watch.stop()
        miner.stop(timeout=30.0)
        stats, book = pool.stats, pool.book
        pool.stop()
    summary = miner.summary()
    ledger = LedgerCheck.of(summary, miner.telemetry.snapshot())
    gaps = book.reconnect_gaps()
    invalid = {k: v for k, v in stats.rejected.items() if k in INVALID and v}
    faults: dict[str, int] = {}
    for _, name in injected:
        faults[name] = faults.get(name, 0) + 1
    rss_warm = rss_warm if rss_warm is not None else rss_start
    result: dict[str, Any] = {
        "seconds": round(mined_s, 1),
        "threads": threads, "difficulty_bits": difficulty_bits, "seed": seed,
        "rss_start_mb": round(rss_start / 2**20, 1),
        "rss_after_warmup_mb": round(rss_warm_raw / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
        "rss_growth_after_warmup_mb": round((rss_end - rss_warm_raw) / 2**20, 2),
        "rss_curve_mb": rss_curve,
        "rss_after_end_checks_mb": round(rss_after_checks / 2**20, 1),
        "jobs_issued": stats.jobs_issued,
        "hashes": summary["hashes"],
        "hashrate": round(summary["hashrate"]),
        "found": ledger.found,
        "accepted": ledger.accepted,
        "rejected": ledger.rejected,
        "rejected_reasons": summary["rejected_reasons"],
        "stale_refused": ledger.rejected_stale,
        "stale_dropped": summary["stale_dropped"],
        "unanswered": ledger.unanswered,
        "duplicates_suppressed": ledger.duplicates,
        "hw_errors": ledger.hw_errors,
        "counts_balance": ledger.balances,
        "pool_accepted": stats.accepted,
        "pool_rejected": dict(stats.rejected),
        "pool_invalid": invalid,
        "faults_injected": faults,
        "flipped_answers": book.flipped,
        "reordered_answers": book.reordered,
        "stale_by_fault": book.stale_by_fault,
        "disconnects": len(book.disconnects) - 1,        # less the miner's own stop
        "reconnects": len(book.connects) - 1,
        "recovered": recovered,
        "longest_reconnect_s": round(max(gaps), 2) if gaps else 0.0,
        "backoff_bound_s": BACKOFF_MAX,
        "longest_hashing_gap_s": round(watch.longest, 2),
        # what was injected from 10 s before the longest gap to its end (for the reader)
        "faults_near_longest_gap": [
            (at, name) for at, name in injected
            if watch.longest_from - t0 - 10 <= at <= watch.longest_from - t0 + watch.longest],
        "longest_gap_from_s": round(watch.longest_from - t0, 1),
    }
    if trim:
        # the raw growth (before any trim) and the growth between trimmed readings: what
        # malloc_trim gives back was allocator slack, what stays is memory in use
        result["rss_after_warmup_trimmed_mb"] = round(rss_warm / 2**20, 1)
        result["rss_end_after_trim_mb"] = round(rss_end_trimmed / 2**20, 1)
        result["rss_growth_after_trim_mb"] = round((rss_end_trimmed - rss_warm) / 2**20, 2)
    if memory:
        result["memory_trace"] = memory
    result["ok"] = bool(not invalid and ledger.hw_errors == 0 and ledger.balances and recovered
                        and result["longest_reconnect_s"] <= BACKOFF_MAX + SLACK)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, help="how long to mine (default 10)")
    ap.add_argument("--seconds", type=float, help="how long to mine, in seconds")
    ap.add_argument("--threads", type=int, default=1, help="CPU worker threads")
    ap.add_argument("--difficulty-bits", type=int, default=20)
    ap.add_argument("--fault-every", type=float, default=8.0,
                    help="mean seconds between injected faults")
    ap.add_argument("--seed", type=int, help="random seed of the fault schedule")
    ap.add_argument("--trace-memory", action="store_true",
                    help="also list where Python memory grew after warm-up (tracemalloc; slower)")
    ap.add_argument("--malloc-trim", action="store_true",
                    help="call glibc's malloc_trim(0) before the warm-up and end RSS readings "
                         "(tells allocator slack from live memory)")
    ap.add_argument("--warmup", type=float,
                    help="seconds before the warm-up RSS reading (default: a quarter of the run, "
                         "60 at most)")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    seconds = args.seconds if args.seconds is not None else 60.0 * (args.minutes or 10.0)
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = soak(seconds, threads=args.threads, difficulty_bits=args.difficulty_bits,
                  fault_every=args.fault_every, seed=args.seed, trace_memory=args.trace_memory,
                  trim=args.malloc_trim, warmup=args.warmup)
    for key, value in result.items():
        if key == "memory_trace":
            for name, part in value.items():
                if isinstance(part, list):
                    print(f"memory_trace.{name}:")
                    for line in part:
                        print("    " + (line if isinstance(line, str) else "\n    ".join(line)))
                else:
                    print(f"memory_trace.{name:<15} {part}")
            continue
        print(f"{key:<28} {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
