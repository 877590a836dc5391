"""Latency from a clean job's arrival to every device hashing it.

The embedded pool (in the miner's own process, over a real socket) issues a clean job; the
clock starts just before the pool writes mining.notify and stops when the last device has
started a batch of the new job.  Repeated N times with random pauses between switches so
devices are mid-batch when the job arrives.  Reports the distribution.

    python benchmarks/job_switch.py [--switches 200] [--threads N] [--json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import time

import _common  # noqa: F401
from _common import percentile

from sgm.devices import cpu_count
from sgm.miner import Miner, MinerConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--switches", type=int, default=200)
    p.add_argument("--threads", type=int, default=cpu_count())
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    miner = Miner(MinerConfig(threads=a.threads, local_jobs=None, local_job_interval=3600,
                              local_difficulty_bits=40))
    miner.start()
    lat: list[float] = []
    try:
        while miner.scheduler.current_job is None:
            time.sleep(0.01)
        time.sleep(0.5)
        for _ in range(a.switches):
            time.sleep(random.uniform(0.02, 0.08))
            gen_before = miner.scheduler.queue.generation
            t0 = time.perf_counter()
            asyncio.run_coroutine_threadsafe(miner.local_pool.new_job(clean=True), miner._loop)
            deadline = t0 + 5
            while True:
                starts = [d.last_batch_start for d in miner.devices]
                if all(g > gen_before for g, _ in starts):
                    lat.append(max(t for _, t in starts) - t0)
                    break
                if time.perf_counter() > deadline:
                    raise SystemExit("a device never picked up the new job")
                time.sleep(0.0002)
    finally:
        miner.stop()
    ms = [x * 1e3 for x in lat]
    out = {"switches": len(ms), "threads": a.threads, "p50_ms": percentile(ms, 0.5),
           "p90_ms": percentile(ms, 0.9), "p99_ms": percentile(ms, 0.99), "max_ms": max(ms),
           "min_ms": min(ms)}
    if a.json:
        print(json.dumps(out))
    else:
        print(f"{out['switches']} clean-job switches, {a.threads} device(s): "
              f"min {out['min_ms']:.2f} ms, p50 {out['p50_ms']:.2f} ms, p90 {out['p90_ms']:.2f} ms, "
              f"p99 {out['p99_ms']:.2f} ms, max {out['max_ms']:.2f} ms")


if __name__ == "__main__":
    main()
