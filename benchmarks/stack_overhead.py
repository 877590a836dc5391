"""How much of the raw kernel speed survives the whole mining stack.

Alternates, in one run: the raw rate (`sgm bench`'s measurement: N threads calling the
native scan back to back) and the full miner (scheduler, queue, telemetry, re-checks,
Stratum client and the embedded pool over a real socket) with the share difficulty set so
shares arrive about 10 times a second.  Reports each side's median and the ratio.

    python benchmarks/stack_overhead.py [--threads N] [--seconds S] [--repeats R] [--json]
"""
from __future__ import annotations

import argparse
import json
import time

import _common  # noqa: F401  (path setup)
from _common import median

from sgm import _native
from sgm.bench import measure_scan
from sgm.devices import cpu_count
from sgm.miner import Miner, MinerConfig


def stack_rate(threads: int, seconds: float, share_rate: float, raw: float) -> tuple[float, float]:
    difficulty = max(1e-9, raw / share_rate / 2**32)
    miner = Miner(MinerConfig(threads=threads, local_jobs=None, local_job_interval=30.0,
                              local_difficulty=difficulty))
    miner.start()
    try:
        time.sleep(1.0)  # warm-up: first job, batch sizes settle
        tel = miner.telemetry
        h0, a0, t0 = tel.total.hashes, tel.total.accepted, time.perf_counter()
        time.sleep(seconds)
        h1, a1, t1 = tel.total.hashes, tel.total.accepted, time.perf_counter()
    finally:
        miner.stop()
    return (h1 - h0) / (t1 - t0), (a1 - a0) / (t1 - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=cpu_count())
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--share-rate", type=float, default=10.0)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    impl = _native.default_implementation()
    raws, stacks, shares = [], [], []
    for _ in range(a.repeats):
        raws.append(measure_scan(impl, a.threads, a.seconds))
        rate, srate = stack_rate(a.threads, a.seconds, a.share_rate, raws[-1])
        stacks.append(rate)
        shares.append(srate)
    ratios = [s / r for s, r in zip(stacks, raws, strict=True)]
    out = {"impl": impl, "threads": a.threads, "raw_hashes_per_s": median(raws),
           "stack_hashes_per_s": median(stacks), "ratio": median(ratios),
           "ratios": ratios, "shares_per_s": median(shares)}
    if a.json:
        print(json.dumps(out))
    else:
        print(f"kernel {impl}, {a.threads} thread(s), {a.repeats} alternating runs of {a.seconds:g} s")
        print(f"raw   (sgm bench): {out['raw_hashes_per_s'] / 1e6:8.2f} MH/s (median)")
        print(f"stack (mining)   : {out['stack_hashes_per_s'] / 1e6:8.2f} MH/s (median), "
              f"{out['shares_per_s']:.1f} shares/s")
        print(f"stack / raw      : {out['ratio']:.4f} (median of {', '.join(f'{r:.4f}' for r in ratios)})")


if __name__ == "__main__":
    main()
