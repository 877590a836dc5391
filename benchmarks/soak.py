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
         trace_memory: bool = False) -> dict[str, Any]:
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
    traced_warm: tracemalloc.Snapshot | None = None
    growth_sites: list[str] = []
    next_fault = t0 + warmup + rng.expovariate(1 / fault_every)
    try:
        while (now := time.monotonic()) - t0 < seconds:
            if rss_warm is None and now - t0 >= warmup:
                rss_warm = rss_bytes()
                if trace_memory:
                    tracemalloc.start(8)
                    traced_warm = tracemalloc.take_snapshot()
            if now >= next_fault:
                name, options = random_fault(rng)
                try:
                    pool.inject(name, **options)
                    injected.append((round(now - t0, 1), name))
                except Exception as exc:  # noqa: BLE001 - reported, the soak goes on
                    injected.append((round(now - t0, 1), f"{name} failed: {exc}"))
                next_fault = time.monotonic() + rng.expovariate(1 / fault_every)
            time.sleep(0.2)
        # the last fault may still be dropping the session: let the miner come back
        end_wait = time.monotonic() + BACKOFF_MAX + SLACK
        accepted_then = pool.stats.accepted
        while time.monotonic() < end_wait and not (
                pool.book.unrecovered == 0 and pool.stats.connections >= 1
                and pool.stats.accepted > accepted_then):
            time.sleep(0.2)
        recovered = pool.book.unrecovered == 0 and pool.stats.connections >= 1
        rss_end = rss_bytes()
        if trace_memory and tracemalloc.is_tracing():
            grown = tracemalloc.take_snapshot().compare_to(traced_warm, "lineno")
            growth_sites = [f"{g.size_diff / 1024:+.0f} KiB {g.count_diff:+d} blocks  {g.traceback}"
                            for g in grown[:8]]
            tracemalloc.stop()
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
        "rss_after_warmup_mb": round(rss_warm / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
        "rss_growth_after_warmup_mb": round((rss_end - rss_warm) / 2**20, 2),
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
    if trace_memory:
        result["python_growth_sites"] = growth_sites
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
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    seconds = args.seconds if args.seconds is not None else 60.0 * (args.minutes or 10.0)
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = soak(seconds, threads=args.threads, difficulty_bits=args.difficulty_bits,
                  fault_every=args.fault_every, seed=args.seed, trace_memory=args.trace_memory)
    for key, value in result.items():
        print(f"{key:<28} {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
