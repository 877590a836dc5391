"""How much hashing survives a flood of shares through the whole share path.

Alternates, in one run: the raw rate (``sgm bench``'s measurement: N threads calling the
native scan back to back with the default kernel) and ``sgm`` as a user runs it on its
embedded pool with easy shares (``sgm -t N --devices cpu --jobs 1 --duration S
--difficulty BITS``: 12 bits is about 15,000 shares a second at full speed on 2 cores), and
reports each side's median, the ratio, the shares per second and the pool's verdicts (every
share found should be accepted: none rejected, none lost).

    python benchmarks/share_flood.py [--bits 12] [--seconds 20] [--repeats 3] [--json]

Goal (issue "the hot loop all native"): ratio >= 0.9 with 12-bit shares.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import _common  # noqa: F401  (path setup)
from _common import median

from sgm import _native
from sgm.bench import measure_scan

ROOT = Path(__file__).resolve().parents[1]


def mine(threads: int, seconds: float, bits: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "summary.json"
        r = subprocess.run([sys.executable, "-m", "sgm", "-t", str(threads), "--devices", "cpu",
                            "--jobs", "1", "--duration", str(seconds), "--difficulty", str(bits),
                            "--summary-json", str(out)],
                           cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120)
        if r.returncode != 0:
            raise RuntimeError(f"sgm failed ({r.returncode}): {r.stderr[-2000:]}")
        s = json.loads(out.read_text())
        s["lines"] = len(r.stdout.splitlines())
        return s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bits", type=int, default=12)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    impl = _native.default_implementation()
    raws, runs = [], []
    for _ in range(a.repeats):
        raws.append(measure_scan(impl, a.threads, min(a.seconds, 5.0)))
        runs.append(mine(a.threads, a.seconds, a.bits))
    ratios = [s["hashrate"] / r for s, r in zip(runs, raws, strict=True)]
    shares = [s["accepted"] / s["elapsed_s"] for s in runs]
    out = {"impl": impl, "threads": a.threads, "bits": a.bits,
           "raw_hashes_per_s": median(raws),
           "sgm_hashes_per_s": median([s["hashrate"] for s in runs]),
           "ratio": median(ratios), "ratios": ratios, "accepted_per_s": median(shares),
           "rejected": sum(s["rejected"] for s in runs),
           "stale": sum(s["stale"] for s in runs),
           "unanswered": sum(s.get("unanswered", 0) for s in runs),
           "lines": median([s["lines"] for s in runs])}
    if a.json:
        print(json.dumps(out))
        return
    print(f"kernel {impl}, {a.threads} thread(s), {a.bits}-bit shares, {a.repeats} alternating "
          f"runs of {a.seconds:g} s")
    print(f"raw (sgm bench) : {out['raw_hashes_per_s'] / 1e6:8.2f} MH/s (median)")
    print(f"sgm (mining)    : {out['sgm_hashes_per_s'] / 1e6:8.2f} MH/s (median), "
          f"{out['accepted_per_s']:.0f} accepted shares/s, {out['lines']:.0f} lines printed")
    print(f"sgm / raw       : {out['ratio']:.3f} (median of "
          f"{', '.join(f'{r:.3f}' for r in ratios)})")
    print(f"rejected {out['rejected']}, stale {out['stale']}, unanswered {out['unanswered']} "
          f"(all runs)")


if __name__ == "__main__":
    main()
