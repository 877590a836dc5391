"""`sgm bench`: raw hash rate of every kernel beside a hashlib reference from the same run.

ratio = hashes_per_s * 128 / reference bytes_per_s, where 128 bytes is what one nonce
would cost (two 64-byte blocks) without any mining shortcut.  Each figure is the median of
several measurements, and the reference is re-measured between runs so a noisy machine
moves both sides alike.
"""
from __future__ import annotations

import hashlib
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sgm import _native
from sgm._native import NONCE_SPACE

if TYPE_CHECKING:   # the OpenCL device module needs pyopencl: imported only when used
    from sgm.devices.opencl import OpenCLScanner

#: Called with one line of progress text per measured run.
Progress = Callable[[str], None]
#: Called with each run's JSON object as soon as it is measured (its ratio is 0.0 until the
#: whole benchmark's reference median is known): a window shows rows as they come.
OnRun = Callable[[dict[str, Any]], None]

REFERENCE_WHAT = "hashlib sha256, large buffer"
_REF_BUFFER = bytes(range(256)) * (1 << 16)  # 16 MiB
_HEADER = bytes.fromhex(
    "0100000000000000000000000000000000000000000000000000000000000000"
    "000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa"
    "4b1e5e4a29ab5f49ffff001d1dac2b7c"
)


@dataclass
class BenchRun:
    device: str
    impl: str
    threads: int
    hashes_per_s: float
    ratio: float
    samples: list[float]


def measure_reference(seconds: float = 0.3) -> float:
    """hashlib SHA-256 throughput over a large buffer, bytes/s (one measurement)."""
    done = 0
    t0 = time.perf_counter()
    while True:
        hashlib.sha256(_REF_BUFFER).digest()
        done += len(_REF_BUFFER)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return done / elapsed


def measure_scan(impl: str, threads: int, seconds: float, chunk: int = 1 << 20) -> float:
    """Nonces/s of `threads` threads scanning with `impl` for about `seconds`."""
    midstate = _native.sha256_midstate(_HEADER[:64])
    tail = _HEADER[64:76]
    counts = [0] * threads
    stop = threading.Event()
    barrier = threading.Barrier(threads + 1)

    def worker(k: int) -> None:
        start = (k * (1 << 30)) & 0xFFFFFFFF
        barrier.wait()
        while not stop.is_set():
            res = _native.scan(midstate, tail, start, chunk, 0, impl=impl)
            counts[k] += res.scanned
            start = (start + chunk) % (NONCE_SPACE - chunk)

    pool = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in pool:
        t.join()
    return sum(counts) / (time.perf_counter() - t0)


def measure_opencl(scanner: OpenCLScanner, seconds: float) -> tuple[float, float]:
    """(nonces/s, host thread CPU share) of an OpenCLScanner over about `seconds` of
    pipelined launches (one exact range scan sized from the kernel's measured rate)."""
    midstate = _native.sha256_midstate(_HEADER[:64])
    tail = _HEADER[64:76]
    count = max(scanner.step, min(int(scanner.rate * seconds), NONCE_SPACE - (1 << 28)))
    cpu0, t0 = time.thread_time(), time.perf_counter()
    job = scanner.scan_range(midstate, tail, 0, count, 0)
    wall = time.perf_counter() - t0
    return job.done / wall, (time.thread_time() - cpu0) / wall


def run_opencl_bench(seconds: float = 1.0, repeats: int = 3,
                     progress: Progress | None = None,
                     on_run: OnRun | None = None) -> dict[str, Any]:
    """Measure every OpenCL device `repeats` times: the contract's JSON object, each run
    with the device's name, geometry, launch size and kernel time besides."""
    from sgm.devices.opencl import OpenCLScanner, discover

    found, reason = discover()
    if not found:
        raise RuntimeError(f"no OpenCL device: {reason}")
    ref_samples = [measure_reference()]
    runs: list[dict[str, Any]] = []
    for info, dev in found:
        scanner = OpenCLScanner(dev)
        scanner.calibrate(min(0.2, seconds))
        samples, shares = [], []
        for _ in range(repeats):
            rate, share = measure_opencl(scanner, seconds)
            samples.append(rate)
            shares.append(share)
            ref_samples.append(measure_reference())
        runs.append({
            "device": "opencl", "impl": scanner_impl(scanner), "threads": info.compute_units,
            "hashes_per_s": statistics.median(samples), "ratio": 0.0, "samples": samples,
            "name": info.name, "description": info.description,
            "device_type": info.device_type, "driver_version": info.driver_version,
            "vector_width": scanner.vector_width, "worksize": scanner.worksize,
            "launch_size": scanner.launch_size, "launch_ms": scanner.launch_s * 1e3,
            "profiled_kernel_ms": scanner.profiled_kernel_s * 1e3,
            "host_cpu_share": statistics.median(shares),
            "program": scanner.program_origin,
        })
        if progress:
            progress(f"  {info.name} ({info.description}): "
                     f"{statistics.median(samples) / 1e6:8.2f} MH/s, launch {scanner.launch_size} "
                     f"nonces = {scanner.launch_s * 1e3:.1f} ms, host thread "
                     f"{100 * statistics.median(shares):.1f}% of a core")
        if on_run:
            on_run(dict(runs[-1]))
        scanner.close()
    reference = statistics.median(ref_samples)
    for r in runs:
        r["ratio"] = r["hashes_per_s"] * 128 / reference
    return {
        "reference": {"what": REFERENCE_WHAT, "bytes_per_s": reference, "samples": ref_samples},
        "runs": runs,
    }


def scanner_impl(scanner: OpenCLScanner) -> str:
    """How an OpenCL run names its kernel: file, vector width and work-group size."""
    return f"sha256d.cl/v{scanner.vector_width}/wg{scanner.worksize}"


def run_bench(
    impls: list[str],
    thread_counts: list[int],
    seconds: float = 1.0,
    repeats: int = 3,
    progress: Progress | None = None,
    on_run: OnRun | None = None,
) -> dict[str, Any]:
    """Measure every (impl, threads) `repeats` times; return the contract's JSON object."""
    ref_samples = [measure_reference()]
    runs: list[BenchRun] = []
    for impl in impls:
        # a short warm-up gets the clock and caches into a steady state
        measure_scan(impl, 1, min(0.2, seconds))
        for threads in thread_counts:
            samples = []
            for _ in range(repeats):
                samples.append(measure_scan(impl, threads, seconds))
                ref_samples.append(measure_reference())
            runs.append(BenchRun("cpu", impl, threads, statistics.median(samples), 0.0, samples))
            if progress:
                progress(f"  {impl:10s} {threads} thread(s): {statistics.median(samples) / 1e6:8.2f} MH/s")
            if on_run:
                on_run(asdict(runs[-1]))
    reference = statistics.median(ref_samples)
    for r in runs:
        r.ratio = r.hashes_per_s * 128 / reference
    return {
        "reference": {"what": REFERENCE_WHAT, "bytes_per_s": reference,
                      "samples": ref_samples},
        "runs": [asdict(r) for r in runs],
    }


def format_bench(result: dict[str, Any]) -> str:
    ref = result["reference"]["bytes_per_s"]
    lines = [
        f"reference: {REFERENCE_WHAT}: {ref / 1e9:.3f} GB/s "
        f"(= {ref / 128 / 1e6:.2f} M nonces/s at 128 bytes a nonce)",
        f"{'device':7s} {'impl':10s} {'threads':>7s} {'MH/s':>10s} {'ratio':>7s}",
    ]
    for r in result["runs"]:
        lines.append(
            f"{r['device']:7s} {r['impl']:10s} {r['threads']:7d} "
            f"{r['hashes_per_s'] / 1e6:10.2f} {r['ratio']:7.3f}"
        )
    return "\n".join(lines)
