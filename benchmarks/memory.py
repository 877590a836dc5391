"""Memory over a long mining run: RSS sampled every few seconds while the miner mines its
embedded pool with shares arriving about 10 times a second and a new job every few seconds.
Reports the RSS growth after a warm-up (goal: < 2 MB over 10 minutes).

    python benchmarks/memory.py [--minutes 10] [--warmup 60] [--json]
"""
from __future__ import annotations

import argparse
import json
import time

import _common  # noqa: F401
from _common import rss_bytes

from sgm import _native
from sgm.bench import measure_scan
from sgm.devices import cpu_count
from sgm.miner import Miner, MinerConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=60.0, help="seconds before the baseline sample")
    p.add_argument("--interval", type=float, default=5.0)
    p.add_argument("--job-interval", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=cpu_count())
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    raw = measure_scan(_native.default_implementation(), a.threads, 1.0)
    miner = Miner(MinerConfig(threads=a.threads, local_jobs=None,
                              local_job_interval=a.job_interval,
                              local_difficulty=max(1e-9, raw / 10.0 / 2**32)))
    sub = miner.subscribe(maxsize=1000)  # a subscriber that never reads: must stay bounded
    miner.start()
    samples: list[tuple[float, int]] = []
    t0 = time.monotonic()
    try:
        while (now := time.monotonic() - t0) < a.minutes * 60:
            samples.append((now, rss_bytes()))
            time.sleep(a.interval)
    finally:
        miner.stop()
        sub.close()
    after = [(t, r) for t, r in samples if t >= a.warmup]
    base = after[0][1] if after else samples[0][1]
    growth = after[-1][1] - base if after else 0
    peak = max(r for _, r in after) - base if after else 0
    half_t = (after[0][0] + after[-1][0]) / 2 if after else 0
    second = [(t, r) for t, r in after if t >= half_t]
    second_half = second[-1][1] - second[0][1] if len(second) > 1 else 0
    s = miner.summary()
    out = {"minutes": a.minutes, "warmup_s": a.warmup, "rss_start_mb": samples[0][1] / 2**20,
           "rss_baseline_mb": base / 2**20, "rss_end_mb": samples[-1][1] / 2**20,
           "growth_mb": growth / 2**20, "peak_over_baseline_mb": peak / 2**20,
           "second_half_growth_mb": second_half / 2**20,
           "accepted": s["accepted"], "hashes": s["hashes"], "dropped_events": sub.dropped}
    print(json.dumps(out) if a.json else
          f"{a.minutes:g} min: RSS {out['rss_baseline_mb']:.1f} MB after {a.warmup:g} s warm-up -> "
          f"{out['rss_end_mb']:.1f} MB at the end (growth {out['growth_mb']:+.2f} MB, peak "
          f"{out['peak_over_baseline_mb']:+.2f} MB; second half {out['second_half_growth_mb']:+.2f} MB); "
          f"{s['accepted']} shares accepted")


if __name__ == "__main__":
    main()
