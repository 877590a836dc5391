"""sgm's command line (the contract in docs: `sgm`, `sgm bench`, `sgm scan`, `sgm devices`).

Exit codes: 0 clean stop, 2 usage or configuration error (message on stderr), 1 other failure.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from sgm import _native
from sgm.cli_args import UsageError, nonce_count, positive_float, positive_int, u32

SUBCOMMANDS = ("bench", "scan", "devices", "pool", "farm")


def _implementation(name: str | None, source: str) -> str:
    """The CPU kernel `name` names (None: the default), or a UsageError naming `source`."""
    try:
        return _native.require_implementation(name)
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}") from None


# --------------------------------------------------------------------------- bench
def _bench_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sgm bench",
        description="Raw hash rate of each implementation beside a hashlib SHA-256 reference "
        "measured in the same run (ratio = hashes/s * 128 / reference bytes/s).",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--impl", help="only this CPU implementation")
    p.add_argument("--device", choices=["cpu", "opencl"], default="cpu")
    p.add_argument("--threads", type=positive_int, help="only this thread count "
                   "(default: every count from 1 to the number of cores)")
    p.add_argument("--seconds", type=positive_float, default=1.0,
                   help="length of one measurement (default 1.0)")
    p.add_argument("--repeats", type=positive_int, default=3,
                   help="measurements per figure; the median is reported (default 3)")
    p.add_argument("--save-default", action="store_true",
                   help="calibrate the CPU kernels again and keep the fastest as the default "
                   "for this CPU and build (see sgm devices)")
    return p


def cmd_bench(argv: Sequence[str]) -> int:
    from sgm.bench import format_bench, run_bench
    from sgm.devices import cpu_count

    args = _bench_parser().parse_args(argv)
    if args.save_default:
        from sgm._native import choice

        choice.calibrate(save=True)
        print(f"default CPU kernel: {choice.explain()}", file=sys.stderr, flush=True)
    if args.device == "opencl":
        return _bench_opencl(args)
    if args.impl is not None:
        impls = [_implementation(args.impl, "--impl")]
    else:
        impls = _native.available_implementations()
    threads = [args.threads] if args.threads else list(range(1, cpu_count() + 1))
    progress = None if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    result = run_bench(impls, threads, seconds=args.seconds, repeats=args.repeats,
                       progress=progress)
    if args.json:
        print(json.dumps(result))
    else:
        print(format_bench(result))
    return 0


def _bench_opencl(args: argparse.Namespace) -> int:
    """`sgm bench --device opencl`: every OpenCL device, same JSON as the CPU runs."""
    from sgm.bench import format_bench, run_opencl_bench
    from sgm.devices import detect_opencl

    if args.impl is not None:
        raise UsageError("--impl names a CPU kernel; it does not go with --device opencl")
    if args.threads:  # PoCL's CPU device: how many threads it runs (GPUs ignore it)
        os.environ["POCL_MAX_PTHREAD_COUNT"] = str(args.threads)
    devices, reason = detect_opencl()
    if not devices:
        raise UsageError(f"--device opencl: no OpenCL device available: {reason}")
    progress = None if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    result = run_opencl_bench(seconds=args.seconds, repeats=args.repeats, progress=progress)
    print(json.dumps(result) if args.json else format_bench(result))
    return 0


# --------------------------------------------------------------------------- scan
def _scan_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sgm scan",
        description="Scan nonces START..START+COUNT-1 of an 80-byte header (its own nonce field "
        "is ignored) and print each nonce whose sha256d meets the target, one decimal number per "
        "line, ascending.  A range past 4294967295 is an error (no wrapping).",
    )
    p.add_argument("header", metavar="HEADER_HEX", help="the 80-byte block header, 160 hex digits")
    p.add_argument("--start", type=u32, required=True)
    p.add_argument("--count", type=nonce_count, required=True)
    tg = p.add_mutually_exclusive_group()
    tg.add_argument("--target", metavar="HEX64",
                    help="target as 64 hex digits, big-endian as block explorers show it "
                    "(default: the header's own nBits)")
    tg.add_argument("--difficulty", type=positive_float,
                    help="pool difficulty (1 = 0x00000000FFFF << 208)")
    ig = p.add_mutually_exclusive_group()
    ig.add_argument("--impl", help="CPU implementation (default: the fastest available)")
    ig.add_argument("--device", choices=["cpu", "opencl"], default="cpu")
    return p


def cmd_scan(argv: Sequence[str]) -> int:
    from sgm.hashing import difficulty_to_target, nbits_to_target

    args = _scan_parser().parse_args(argv)
    text = args.header.strip()
    if len(text) != 160:
        raise UsageError(f"HEADER_HEX must be 160 hex digits (80 bytes), got {len(text)} characters")
    try:
        header = bytes.fromhex(text)
    except ValueError:
        raise UsageError("HEADER_HEX is not valid hex") from None
    if args.start + args.count > _native.NONCE_SPACE:
        raise UsageError(f"--start {args.start} + --count {args.count} runs past nonce "
                         "4294967295 (wrapping is not allowed)")
    if args.target is not None:
        t = args.target.strip().lower().removeprefix("0x")
        if len(t) != 64:
            raise UsageError(f"--target must be 64 hex digits, got {len(t)}")
        try:
            target = int(t, 16)
        except ValueError:
            raise UsageError("--target is not valid hex") from None
    elif args.difficulty is not None:
        target = difficulty_to_target(args.difficulty)
    else:
        try:
            target = nbits_to_target(int.from_bytes(header[72:76], "little"))
        except ValueError as exc:
            raise UsageError(f"the header's nBits gives no target: {exc}") from None
    if args.device == "opencl":
        return _scan_opencl(header, args.start, args.count, target)
    impl = _implementation(args.impl, "--impl")
    midstate = _native.sha256_midstate(header[:64])
    tail = header[64:76]
    start, left = args.start, args.count
    out = sys.stdout
    while True:
        res = _native.scan(midstate, tail, start, left, target, impl=impl)
        for n in res.nonces:
            out.write(f"{n}\n")
        start += res.scanned
        left -= res.scanned
        if left == 0 or res.scanned == 0 and not res.truncated:
            break
    out.flush()
    return 0


def _scan_opencl(header: bytes, start: int, count: int, target: int) -> int:
    """`sgm scan --device opencl`: the first OpenCL device (a GPU when there is one)."""
    from sgm.devices.opencl import OpenCLScanner, OpenCLUnavailable, first_device

    try:
        info, dev = first_device()
        scanner = OpenCLScanner(dev)
    except OpenCLUnavailable as exc:
        raise UsageError(f"--device opencl: {exc}") from None
    midstate = _native.sha256_midstate(header[:64])
    if count:
        job = scanner.scan_range(midstate, header[64:76], start, count, target)
        sys.stdout.write("".join(f"{n}\n" for n in job.nonces))
        if job.bad:
            print(f"sgm: warning: {info.name} reported {len(job.bad)} nonce(s) that fail the "
                  "CPU re-check (left out)", file=sys.stderr)
    sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------- devices
def cmd_devices(argv: Sequence[str]) -> int:
    from sgm.devices import detect_cpu, detect_opencl

    p = argparse.ArgumentParser(prog="sgm devices",
                                description="The devices and implementations on this machine.")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from sgm._native import choice

    cpu = detect_cpu()
    opencl, reason = detect_opencl()
    tuned = _gpu_tuning() if opencl else {}
    features = _native.cpu_features()
    why = choice.explain()
    if args.json:
        devices = []
        for d in [cpu, *opencl]:
            entry = {"name": d.name, "kind": d.kind, "description": d.description,
                     "compute_units": d.compute_units,
                     "implementations": d.implementations,
                     "default_impl": d.default_impl, "used_by_default": d.used_by_default}
            if d.kind == "cpu":
                entry["default_impl_reason"] = why
            if d.kind == "opencl":
                entry.update(platform=d.platform, type=d.device_type,
                             driver_version=d.driver_version)
                if d.name in tuned:
                    entry["tuning"] = tuned[d.name]
            devices.append(entry)
        print(json.dumps({
            "devices": devices,
            "cpu_features": features,
            "implementations_built": _native.all_implementations(),
            "opencl_unavailable_reason": reason,
        }))
        return 0
    print(f"{cpu.name}  cpu     {cpu.description}, {cpu.compute_units} core(s)")
    print(f"        implementations: {', '.join(cpu.implementations)} "
          f"(default {cpu.default_impl}; built: {', '.join(_native.all_implementations())})")
    print(f"        default kernel: {why}")
    print(f"        features: {', '.join(k for k, v in features.items() if v) or 'none'}")
    for d in opencl:
        use = "used by default" if d.used_by_default else \
            f"used when asked for (--devices opencl or {d.name})"
        print(f"{d.name}  opencl  {d.description}")
        if d.name in tuned:
            print(f"        kernel geometry: {tuned[d.name]}")
        print(f"        {d.device_type}, {d.compute_units} compute units, platform {d.platform}, "
              f"driver {d.driver_version}; {use}")
    if not opencl:
        print(f"opencl: none ({reason})")
    return 0


# --------------------------------------------------------------------------- pool
def cmd_pool(argv: Sequence[str]) -> int:
    from sgm.pool.cli import cmd_pool as run

    return run(argv)


def cmd_farm(argv: Sequence[str]) -> int:
    from sgm.ops.farm import cmd_farm as run

    return run(argv)


# --------------------------------------------------------------------------- version
def version_text() -> str:
    """`sgm --version`: the release, the Python and the CPU kernels this build has."""
    from sgm import __version__

    return (f"sgm {__version__} (Python {sys.version.split()[0]}; CPU kernels: "
            f"{', '.join(_native.available_implementations())})")


def _gpu_tuning() -> dict[str, str]:
    """What the kernel's geometry is on each OpenCL GPU (tuned at first use and kept)."""
    from sgm.devices.opencl import discover, tuning

    found, _ = discover()
    return {info.name: tuning.describe(dev) for info, dev in found if info.device_type == "GPU"}


# --------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--version"], ["-V"]):
        print(version_text())
        return 0
    try:
        if os.environ.get("SGM_IMPL"):
            _implementation(os.environ["SGM_IMPL"], "environment variable SGM_IMPL")
        if argv and argv[0] in SUBCOMMANDS:
            handler = {"bench": cmd_bench, "scan": cmd_scan, "devices": cmd_devices,
                       "pool": cmd_pool, "farm": cmd_farm}[argv[0]]
            return handler(argv[1:])
        from sgm.miner_cli import cmd_mine

        return cmd_mine(argv)
    except UsageError as exc:
        sub = argv[0] if argv and argv[0] in SUBCOMMANDS else ""
        print(f"sgm: error: {exc}\nusage: see 'sgm {sub + ' ' if sub else ''}--help'",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
