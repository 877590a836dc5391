"""The OpenCL hash core: its rate beside sgm's native kernels, and what its host thread costs.

1. Rate.  For each OpenCL device: nonces/s over pipelined launches.  A CPU device (PoCL)
   is measured at every thread count from 1 to the number of cores (POCL_MAX_PTHREAD_COUNT,
   one subprocess each), interleaved with the native kernels at the same thread count, so a
   noisy machine moves both sides alike; each figure is the median of --repeats runs, as
   nonces/s and as nonces per CPU-second of the process (what a machine shared with other
   work distorts least).
2. Host thread.  sgm mines its embedded pool with the OpenCL device(s) only for --mine
   seconds; the device's host thread CPU time / wall time is the share of one core it costs
   (the thread sleeps until a launch should be done, then polls its event).
3. Job switch.  A clean job -> every device (one CPU thread and the OpenCL devices) has
   started a batch of it, --switches times.

    python benchmarks/opencl.py [--seconds 1] [--repeats 5] [--mine 10] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import _common  # noqa: F401

from sgm import _native
from sgm.bench import measure_opencl, measure_scan, scanner_impl
from sgm.devices import cpu_count, cpu_model, opencl as ocl


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _measured(fn) -> tuple[float, float]:
    """(nonces/s, nonces per CPU-second of the whole process) of one measurement: the
    second is what a shared, noisy machine distorts least."""
    c0, t0 = _cpu_seconds(), time.perf_counter()
    rate = fn()
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    return rate, rate * wall / max(cpu, 1e-9)


def rates_here(seconds: float, repeats: int, native: list[str]) -> list[dict]:
    """Every OpenCL device in this process, beside the native kernels at its thread count
    (measurements interleaved, medians reported)."""
    out = []
    for info, dev in ocl.discover()[0]:
        sc = ocl.OpenCLScanner(dev)
        sc.calibrate(0.3)
        threads = info.compute_units
        samples: dict[str, list[float]] = {"opencl": []}
        per_cpu: dict[str, list[float]] = {"opencl": []}
        shares = []
        for _ in range(repeats):
            box = {}

            # the defaults bind this iteration's scanner and box (the call happens at once)
            def run_ocl(sc: ocl.OpenCLScanner = sc, box: dict = box) -> float:
                box["rate"], box["share"] = measure_opencl(sc, seconds)
                return box["rate"]

            rate, eff = _measured(run_ocl)
            samples["opencl"].append(rate)
            per_cpu["opencl"].append(eff)
            shares.append(box["share"])
            if info.device_type == "CPU":
                for impl in native:
                    rate, eff = _measured(lambda impl=impl, threads=threads: measure_scan(impl, threads, seconds))
                    samples.setdefault(impl, []).append(rate)
                    per_cpu.setdefault(impl, []).append(eff)
        med = {k: statistics.median(v) for k, v in samples.items()}
        eff_med = {k: statistics.median(v) for k, v in per_cpu.items()}
        out.append({
            "device": info.name, "description": info.description, "type": info.device_type,
            "driver": info.driver_version, "threads": threads, "impl": scanner_impl(sc),
            "launch_size": sc.launch_size, "launch_ms": sc.launch_s * 1e3,
            "profiled_kernel_ms": sc.profiled_kernel_s * 1e3,
            "opencl_hps": med["opencl"],
            "native_hps": {k: v for k, v in med.items() if k != "opencl"},
            "ratio_to_native": {k: med["opencl"] / v for k, v in med.items() if k != "opencl"},
            "host_cpu_share_scan": statistics.median(shares),
            "opencl_per_cpu_s": eff_med["opencl"],
            "native_per_cpu_s": {k: v for k, v in eff_med.items() if k != "opencl"},
            "ratio_per_cpu_s": {k: eff_med["opencl"] / v for k, v in eff_med.items()
                                if k != "opencl"},
            "samples": samples,
        })
        sc.close()
    return out


def host_thread_cost(seconds: float) -> list[dict]:
    """Mine the embedded pool with the OpenCL devices only; each host thread's CPU share."""
    from sgm.miner import Miner, MinerConfig

    miner = Miner(MinerConfig(device_kinds=("opencl",), local_jobs=None,
                              local_job_interval=3600, local_difficulty_bits=32))
    miner.start()
    try:
        time.sleep(seconds)
    finally:
        miner.stop()
    s = miner.summary()
    rows = []
    for dev in miner.devices:
        d = next(x for x in s["devices"] if x["name"] == dev.name)
        rows.append({"device": dev.name, "hashrate": d["hashrate"],
                     "host_cpu_share": dev.host_cpu_share, "host_cpu_s": dev.host_cpu_s,
                     "wall_s": dev.host_wall_s, "launches": dev.scanner.launches,
                     "dropped": dev.scanner.dropped, "score": dev.score,
                     "launch_size": dev.scanner.launch_size,
                     "launch_ms": dev.scanner.launch_s * 1e3, "batch_size": d["batch_size"]})
    return rows


def switch_latency(switches: int) -> dict[str, dict[str, float]]:
    """Clean job -> each device (CPU and OpenCL) started a batch of it: p50/p90/max in ms
    (the host side; a GPU starts it once the launches already queued are done)."""
    import asyncio
    import random

    from _common import percentile

    from sgm.miner import Miner, MinerConfig

    miner = Miner(MinerConfig(threads=1, device_kinds=("cpu", "opencl"), local_jobs=None,
                              local_job_interval=3600, local_difficulty_bits=40))
    miner.start()
    lat: dict[str, list[float]] = {}
    try:
        while miner.scheduler.current_job is None:
            time.sleep(0.01)
        time.sleep(0.5)
        for _ in range(switches):
            time.sleep(random.uniform(0.02, 0.08))
            gen = miner.scheduler.queue.generation
            t0 = time.perf_counter()
            asyncio.run_coroutine_threadsafe(miner.local_pool.new_job(clean=True), miner._loop)
            deadline = t0 + 5
            while time.perf_counter() < deadline:
                starts = {d.name: d.last_batch_start for d in miner.devices}
                if all(g > gen for g, _ in starts.values()):
                    for name, (_, t) in starts.items():
                        lat.setdefault(name, []).append((t - t0) * 1e3)
                    break
                time.sleep(0.0002)
    finally:
        miner.stop()
    return {name: {"p50_ms": percentile(v, 0.5), "p90_ms": percentile(v, 0.9), "max_ms": max(v)}
            for name, v in lat.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--mine", type=float, default=10.0, help="seconds of mining (0: skip)")
    p.add_argument("--native", default="avx2,sha-ni", help="native kernels to compare with")
    p.add_argument("--switches", type=int, default=40, help="clean-job switches (0: skip)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    native = [i for i in a.native.split(",") if i in _native.available_implementations()]
    if a.child:
        print(json.dumps(rates_here(a.seconds, a.repeats, native)))
        return
    found, reason = ocl.discover()
    if not found:
        raise SystemExit(f"no OpenCL device: {reason}")
    rates: list[dict] = []
    cpu_devices = any(i.device_type == "CPU" for i, _ in found)
    counts = range(1, cpu_count() + 1) if cpu_devices else [None]
    for t in counts:
        env = dict(os.environ)
        if t is not None:
            env["POCL_MAX_PTHREAD_COUNT"] = str(t)
        r = subprocess.run([sys.executable, __file__, "--child", "--seconds", str(a.seconds),
                            "--repeats", str(a.repeats), "--native", ",".join(native)],
                           capture_output=True, text=True, env=env, check=True)
        for row in json.loads(r.stdout):
            if t is None or row["type"] == "CPU" or t == counts[-1]:
                rates.append(row)
    cost = host_thread_cost(a.mine) if a.mine > 0 else []
    switch = switch_latency(a.switches) if a.switches > 0 else {}
    result = {"cpu": cpu_model(), "cores": cpu_count(), "rates": rates, "host_thread": cost,
              "job_switch": switch}
    if a.json:
        print(json.dumps(result, indent=2))
        return
    print(f"CPU: {result['cpu']}, {result['cores']} core(s)")
    for row in rates:
        nat = "  ".join(f"{k} {v / 1e6:.2f} MH/s (ratio {row['ratio_to_native'][k]:.2f}; "
                        f"per CPU-second {row['ratio_per_cpu_s'][k]:.2f})"
                        for k, v in row["native_hps"].items())
        print(f"{row['device']} {row['type']} {row['impl']} threads {row['threads']}: "
              f"{row['opencl_hps'] / 1e6:.2f} MH/s; {nat}; launch {row['launch_size']} nonces "
              f"= {row['launch_ms']:.1f} ms")
    for row in cost:
        print(f"mining: {row['device']} {row['hashrate'] / 1e6:.2f} MH/s, host thread "
              f"{100 * row['host_cpu_share']:.2f}% of a core ({row['host_cpu_s']:.2f} s CPU in "
              f"{row['wall_s']:.1f} s, {row['launches']} launches of ~{row['launch_ms']:.1f} ms, "
              f"{row['dropped']} dropped unread)")
    for name, q in switch.items():
        print(f"clean job -> {name} hashing it: p50 {q['p50_ms']:.2f} ms, p90 {q['p90_ms']:.2f} ms, "
              f"max {q['max_ms']:.2f} ms")


if __name__ == "__main__":
    main()
