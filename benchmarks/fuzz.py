"""Fuzz the parsers that read what others send: the Stratum message parser and session
(sgm.stratum.messages / protocol.feed), the getblocktemplate parser (sgm.solo.template),
the config file loader (sgm.miner_cli) and the cgminer API request parser
(sgm.ops.cgminer_api).  The targets are those of the suite's short pass
(tests/fuzz_targets.py); this runs many more inputs and reports per target:

    inputs, refused (the documented error), accepted, crashes (anything else), hangs (an
    input that took longer than --hang seconds), the slowest input and the time taken.

    .venv/bin/python benchmarks/fuzz.py                      # 100,000 inputs per target
    .venv/bin/python benchmarks/fuzz.py --examples 2000 --targets stratum template

Exit status 1 when any target crashed or hung.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
import traceback
from typing import Any

import _common  # noqa: F401  (path setup)
from hypothesis import HealthCheck, Phase, given, settings

from tests.fuzz_targets import Target, targets


class Hang(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Hang()


def run_target(target: Target, examples: int, hang_s: float) -> dict[str, Any]:
    crashes: list[str] = []
    hangs: list[str] = []
    count = 0
    slowest = 0.0
    slowest_cpu = 0.0

    @settings(max_examples=examples, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(target.strategy)
    def fuzz(value: Any) -> None:
        nonlocal count, slowest, slowest_cpu
        count += 1
        t0, c0 = time.perf_counter(), time.process_time()
        signal.setitimer(signal.ITIMER_REAL, hang_s)
        try:
            target.run(value)
        except Hang:
            hangs.append(repr(value)[:300])
        except Exception:  # noqa: BLE001 - every crash is recorded, the run goes on
            if len(crashes) < 20:
                crashes.append(f"{repr(value)[:300]}\n{traceback.format_exc(limit=4)}")
            else:
                crashes.append("...")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        slowest = max(slowest, time.perf_counter() - t0)
        slowest_cpu = max(slowest_cpu, time.process_time() - c0)

    start = time.perf_counter()
    fuzz()
    elapsed = time.perf_counter() - start
    return {"target": target.name, "inputs": count, "refused": target.refused,
            "accepted": target.accepted, "crashes": len(crashes), "hangs": len(hangs),
            "slowest_ms": round(slowest * 1e3, 2), "slowest_cpu_ms": round(slowest_cpu * 1e3, 2),
            "seconds": round(elapsed, 1),
            "inputs_per_s": round(count / elapsed, 1) if elapsed else 0.0,
            "crash_samples": crashes[:5], "hang_samples": hangs[:5]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=100_000, help="inputs per target")
    ap.add_argument("--targets", nargs="*", help="names (default: all)")
    # wall-clock: on a shared, loaded box a 5 s limit fired inside hypothesis's own code
    ap.add_argument("--hang", type=float, default=30.0,
                    help="seconds (wall clock) an input may take before it counts as a hang")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    # the parsers log every refusal at WARNING: that is their job, not news here
    logging.disable(logging.CRITICAL)
    signal.signal(signal.SIGALRM, _alarm)
    chosen = [t for t in targets() if not args.targets or t.name in args.targets]
    results = []
    for target in chosen:
        r = run_target(target, args.examples, args.hang)
        results.append(r)
        print(f"{r['target']:<12} {r['inputs']:>8} inputs  {r['refused']:>8} refused  "
              f"{r['accepted']:>8} accepted  {r['crashes']} crashes  {r['hangs']} hangs  "
              f"slowest {r['slowest_ms']} ms ({r['slowest_cpu_ms']} ms CPU)  {r['seconds']} s "
              f"({r['inputs_per_s']}/s)",
              flush=True)
        for sample in r["crash_samples"] + r["hang_samples"]:
            print("   ", sample.replace("\n", "\n    "))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 1 if any(r["crashes"] or r["hangs"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
