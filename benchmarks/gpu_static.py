"""What an NVIDIA GPU would make of sgm's OpenCL kernel, without a GPU.

Runs the shared report tool (`gpu-kernel-report.sh`: clang's NVPTX target, then NVIDIA's
own assembler `ptxas` and `nvdisasm`) on kernels/sha256d.cl with the build options the host
gives a GPU (sgm/devices/opencl/program.py, `choose_geometry`), and prints registers, spills, the
machine-instruction mix, integer ALU-pipe ops and IMADs per nonce, and the throughput
ceilings the tool derives for H100 / H200 / RTX 4090.

Not part of CI: the tool downloads NVIDIA's tools (pip) and clang (apt) the first time.

    python benchmarks/gpu_static.py                      # sm_90, the default GPU options
    python benchmarks/gpu_static.py --arch sm_90 --arch sm_89 --arch sm_80
    python benchmarks/gpu_static.py --against HEAD~1     # also the kernel of a git revision
    python benchmarks/gpu_static.py --write benchmarks/results/gpu_static.json
    python benchmarks/gpu_static.py -D SGM_NO_ASM        # extra defines (the portable code)

--write stores the figures (with the kernel source's SHA-256) where benchmarks/opencl_gpu.sh
finds them on a GPU machine, which cannot run the tool (no network there).  Two modes for
that machine, which read the stored figures and never run the tool:

    python benchmarks/gpu_static.py --device-build       # build on each OpenCL GPU here and
                                                         # print its compiler's log (NVIDIA:
                                                         # registers and spills from ptxas)
    python benchmarks/gpu_static.py --measured BENCH.json  # `sgm bench --device opencl --json`
                                                         # beside each device's ceiling

The ceiling of a device is the stored model for its architecture with the device's own
multiprocessor count and clock: min(SMs x 64 x clock / ALU-pipe ops, SMs x 128 x clock /
instructions) nonces/s (the tool's model: 64 integer-ALU lanes and 128 issue lanes per SM
and clock on sm_80..sm_90).
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (puts the checkout first on sys.path)

ROOT = Path(__file__).resolve().parents[1]
KERNEL = ROOT / "kernels" / "sha256d.cl"
TOOL_ENV = "SGM_GPU_REPORT"
TOOL_DEFAULT = ROOT.parent / "shared" / "tools" / "gpu-kernel-report.sh"
#: the issue's goal for sm_90 (ALU-pipe ops per nonce)
GOAL_ALU_OPS = 2000


@dataclass
class Ceiling:
    gpu: str
    ghs: float              # the lower of the two bounds
    bound: str              # "ALU pipe" or "issue"
    alu_ghs: float
    issue_ghs: float


@dataclass
class Report:
    kernel: str
    kernel_sha256: str
    options: str
    arch: str
    nonces_per_item: int
    registers: int
    spill_store_bytes: int
    spill_load_bytes: int
    instructions_per_nonce: float
    mix: dict[str, int]                  # the tool's 8 most frequent opcodes (per work-item)
    alu_ops_per_nonce: int
    imad_per_nonce: int
    ceilings: list[Ceiling] = field(default_factory=list)


def default_gpu_options() -> tuple[str, int]:
    """(build options, nonces per work-item) the host gives a GPU: its own choice for a
    device of type GPU, with the SGM_OPENCL_* overrides of this shell ignored."""
    from sgm.devices import opencl as ocl

    cl = ocl.require_opencl()

    class _Gpu:       # what choose_geometry reads of a device
        type = cl.device_type.GPU
        max_work_group_size = 1024
        preferred_vector_width_int = 1

    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("SGM_OPENCL_")}
    try:
        vw, ws, builtins = ocl.choose_geometry(_Gpu())
    finally:
        os.environ.update(saved)
    # the same string as OpenCLScanner.options
    return f"-D VECTOR_WIDTH={vw} -D WORKSIZE={ws} -D USE_BUILTINS={int(builtins)}", vw


def find_tool(explicit: str | None) -> Path:
    path = Path(explicit or os.environ.get(TOOL_ENV) or TOOL_DEFAULT)
    if not path.is_file():
        raise SystemExit(f"gpu-kernel-report.sh not found at {path}: pass --tool PATH or set "
                         f"{TOOL_ENV}")
    return path


def parse(text: str) -> dict[str, Any]:
    """The tool's stdout -> figures (raises on an unexpected shape: no silent zeros)."""
    head = re.search(r"for (sm_\d+): (\S+) registers, spill stores/loads (\S+)/(\S+) bytes", text)
    instr = re.search(r"machine instructions (\d+) per work-item \((\d+) nonce\(s\)\): (.*)", text)
    pipes = re.search(r"integer ALU-pipe ops per nonce (\d+); IMAD \(FMA pipe\) per nonce (\d+)",
                      text)
    if not (head and instr and pipes):
        raise RuntimeError(f"unexpected output of the report tool:\n{text}")
    if "?" in head.group(2, 3, 4):
        raise RuntimeError(f"ptxas reported no register/spill figures:\n{text}")
    mix = {m.group(1): int(m.group(2)) for m in re.finditer(r"([A-Z0-9_.]+) (\d+)", instr.group(3))}
    ceilings = [Ceiling(m.group(1).strip(), float(m.group(2)), m.group(3), float(m.group(4)),
                        float(m.group(5)))
                for m in re.finditer(r"ceiling (.+?)\s*:\s*([\d.]+) GH/s \((.+?)-bound; "
                                     r"ALU pipe ([\d.]+), issue ([\d.]+)\)", text)]
    npi = int(instr.group(2))
    return {"arch": head.group(1), "registers": int(head.group(2)),
            "spill_store_bytes": int(head.group(3)), "spill_load_bytes": int(head.group(4)),
            "nonces_per_item": npi, "instructions_per_nonce": int(instr.group(1)) / npi,
            "mix": mix, "alu_ops_per_nonce": int(pipes.group(1)),
            "imad_per_nonce": int(pipes.group(2)), "ceilings": ceilings}


def run_report(tool: Path, kernel: Path, options: str, arch: str, npi: int,
               label: str | None = None) -> Report:
    env = dict(os.environ, ARCH=arch, NONCES_PER_ITEM=str(npi))
    proc = subprocess.run(["bash", str(tool), str(kernel), *options.split()], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the report tool failed ({proc.returncode}) for {arch} {options}:\n"
                         f"{proc.stdout}{proc.stderr}")
    fig = parse(proc.stdout)
    source = kernel.read_bytes()
    return Report(kernel=label or str(kernel.relative_to(ROOT)),
                  kernel_sha256=hashlib.sha256(source).hexdigest(), options=options, **fig)


def show(r: Report) -> None:
    mix = ", ".join(f"{k} {v}" for k, v in r.mix.items())
    print(f"{r.kernel} [{r.options}] for {r.arch}:")
    print(f"  {r.registers} registers, spills {r.spill_store_bytes}/{r.spill_load_bytes} bytes "
          f"(stores/loads)")
    print(f"  {r.instructions_per_nonce:.0f} machine instructions per nonce: {mix}")
    print(f"  integer ALU-pipe ops per nonce {r.alu_ops_per_nonce}; IMAD (FMA pipe) per nonce "
          f"{r.imad_per_nonce}")
    for c in r.ceilings:
        print(f"  ceiling {c.gpu:10s} {c.ghs:6.2f} GH/s ({c.bound}-bound; ALU pipe "
              f"{c.alu_ghs:.2f}, issue {c.issue_ghs:.2f})")


FIGURES = ROOT / "benchmarks" / "results" / "gpu_static.json"
ALU_LANES, ISSUE_LANES = 64, 128      # per SM and clock (the tool's model)


def kernel_sha256() -> str:
    return hashlib.sha256(KERNEL.read_bytes()).hexdigest()


def load_figures(path: Path) -> dict[str, dict[str, Any]]:
    """{arch: report} from a --write file; says so when the kernel changed since."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    figures = {r["arch"]: r for r in doc["reports"]}
    stale = sorted(a for a, r in figures.items() if r["kernel_sha256"] != kernel_sha256())
    if stale:
        print(f"WARNING: {path} was made for another kernels/sha256d.cl ({', '.join(stale)}); "
              f"rerun python benchmarks/gpu_static.py --write {path} where the tool can run")
    return figures


def nv_arch(dev: Any) -> str | None:
    """sm_XY of an NVIDIA device (cl_nv_device_attribute_query), else None."""
    try:
        return f"sm_{int(dev.compute_capability_major_nv)}{int(dev.compute_capability_minor_nv)}"
    except Exception:  # noqa: BLE001 - not NVIDIA, or a driver without the extension
        return None


def device_ceiling(dev: Any, figures: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The model's ceiling (nonces/s) for one pyopencl device, or None without a model
    (not an NVIDIA GPU, or no figures for an architecture at or below its own)."""
    arch = nv_arch(dev)
    if arch is None or not figures:
        return None
    below = sorted((a for a in figures if int(a[3:]) <= int(arch[3:])), key=lambda a: int(a[3:]))
    if not below:
        return None
    fig = figures[below[-1]]
    sms, clock_hz = int(dev.max_compute_units), int(dev.max_clock_frequency) * 1e6
    alu = sms * ALU_LANES * clock_hz / fig["alu_ops_per_nonce"]
    issue = sms * ISSUE_LANES * clock_hz / fig["instructions_per_nonce"]
    return {"arch": arch, "figures_arch": below[-1], "sms": sms, "clock_mhz": clock_hz / 1e6,
            "alu_ops_per_nonce": fig["alu_ops_per_nonce"], "ceiling_hps": min(alu, issue),
            "bound": "ALU pipe" if alu <= issue else "issue"}


def device_build() -> int:
    """Build the kernel on every OpenCL GPU here with the host's options and print the
    compiler's log (-cl-nv-verbose on NVIDIA: ptxas' registers and spills).  When the build
    fails, try the portable code (-D SGM_NO_ASM) and say whether that builds.  1 if a
    device could not build the kernel as the host builds it, else 0."""
    from sgm.devices import opencl as ocl

    cl = ocl.require_opencl()
    found, reason = ocl.discover()
    gpus = [(i, d) for i, d in found if i.device_type == "GPU"]
    if not gpus:
        print(f"no OpenCL GPU here ({reason or 'only ' + ', '.join(i.description for i, _ in found)})")
        return 0
    source = KERNEL.read_text(encoding="utf-8")
    status = 0
    for info, dev in gpus:
        vw, ws, builtins = ocl.choose_geometry(dev)
        options = f"-D VECTOR_WIDTH={vw} -D WORKSIZE={ws} -D USE_BUILTINS={int(builtins)}"
        verbose = " -cl-nv-verbose" if nv_arch(dev) else ""
        ctx = cl.Context([dev])
        print(f"{info.name} {info.description}, driver {info.driver_version}, "
              f"arch {nv_arch(dev) or '?'}: building with {options}{verbose}")
        try:
            prg = cl.Program(ctx, source).build(options=options + verbose)
            log_text = prg.get_build_info(dev, cl.program_build_info.LOG)
            print("  built; compiler log:\n    " + "\n    ".join(
                (log_text or "(empty)").strip().splitlines()))
            if re.search(r"[1-9]\d* bytes spill", log_text or ""):
                print("  WARNING: the compiler reports spills")
        except cl.Error as exc:
            status = 1
            print(f"  BUILD FAILED: {str(exc).strip()[:2000]}")
            try:
                cl.Program(ctx, source).build(options=options + " -D SGM_NO_ASM" + verbose)
                print("  the portable code (-D SGM_NO_ASM) builds: the inline PTX is what "
                      "this compiler rejects")
            except cl.Error as exc2:
                print(f"  the portable code fails too: {str(exc2).strip()[:500]}")
    return status


def measured(bench_json: Path, figures_path: Path) -> int:
    """Each OpenCL device of a `sgm bench --device opencl --json` run beside its ceiling."""
    from sgm.devices import opencl as ocl

    bench = json.loads(bench_json.read_text(encoding="utf-8"))
    figures = load_figures(figures_path) if figures_path.is_file() else {}
    if not figures:
        print(f"no stored figures at {figures_path}: no ceilings")
    devices = {info.name: (info, dev) for info, dev in ocl.discover()[0]}
    for run in bench["runs"]:
        if run.get("device") != "opencl":
            continue
        info, dev = devices[run["name"]]
        rate = run["hashes_per_s"]
        line = (f"{run['name']} {info.description}, driver {info.driver_version}, "
                f"{info.device_type}, {run['impl']}: measured {rate / 1e9:.4f} GH/s")
        c = device_ceiling(dev, figures)
        if c is None:
            print(f"{line}; no static ceiling (the model is for NVIDIA GPUs, sm_80..sm_90)")
            continue
        print(f"{line}; static ceiling {c['ceiling_hps'] / 1e9:.2f} GH/s ({c['arch']}: "
              f"{c['sms']} SMs x {c['clock_mhz']:.0f} MHz, {c['alu_ops_per_nonce']} ALU-pipe "
              f"ops/nonce from the {c['figures_arch']} figures, {c['bound']}-bound); "
              f"measured / ceiling = {rate / c['ceiling_hps']:.3f}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", action="append", help="sm_90 (H100/H200), sm_89 (RTX 40xx), "
                   "sm_80 (A100); repeatable (default sm_90)")
    p.add_argument("--against", metavar="REV", help="also report the kernel of this git revision")
    p.add_argument("-D", dest="defines", action="append", default=[], metavar="NAME[=VALUE]",
                   help="an extra define for the build (repeatable)")
    p.add_argument("--tool", help=f"the report tool (default ${TOOL_ENV} or {TOOL_DEFAULT})")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--write", metavar="PATH", help="also store the figures as JSON in PATH")
    p.add_argument("--device-build", action="store_true",
                   help="build on each OpenCL GPU here and print its compiler's log")
    p.add_argument("--measured", metavar="BENCH_JSON", type=Path,
                   help="each device of `sgm bench --device opencl --json` beside its ceiling")
    p.add_argument("--figures", metavar="PATH", type=Path, default=FIGURES,
                   help=f"stored figures for --measured (default {FIGURES.relative_to(ROOT)})")
    a = p.parse_args()
    if a.device_build:
        return device_build()
    if a.measured:
        return measured(a.measured, a.figures)
    tool = find_tool(a.tool)
    options, npi = default_gpu_options()
    options = " ".join([options, *(f"-D {d}" for d in a.defines)])
    archs = a.arch or ["sm_90"]
    reports = [run_report(tool, KERNEL, options, arch, npi) for arch in archs]
    before: list[Report] = []
    if a.against:
        old_source = subprocess.run(["git", "show", f"{a.against}:kernels/sha256d.cl"],
                                    cwd=ROOT, capture_output=True, check=True).stdout
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "sha256d.cl"
            path.write_bytes(old_source)
            before = [run_report(tool, path, options, arch, npi,
                                 label=f"kernels/sha256d.cl@{a.against}") for arch in archs]
    doc = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
           "tool": str(tool), "goal_alu_ops_per_nonce_sm_90": GOAL_ALU_OPS,
           "reports": [asdict(r) for r in reports]}
    if before:
        doc["against"] = {"revision": a.against, "reports": [asdict(r) for r in before]}
    if a.write:
        Path(a.write).parent.mkdir(parents=True, exist_ok=True)
        Path(a.write).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    if a.json:
        print(json.dumps(doc, indent=2))
        return 0
    for r in before:
        show(r)
    for r in reports:
        show(r)
    for old, new in zip(before, reports, strict=True) if before else ():
        print(f"{new.arch}: ALU-pipe ops/nonce {old.alu_ops_per_nonce} -> {new.alu_ops_per_nonce}"
              f" ({new.alu_ops_per_nonce - old.alu_ops_per_nonce:+d}), registers "
              f"{old.registers} -> {new.registers}, spills {old.spill_store_bytes} -> "
              f"{new.spill_store_bytes} bytes")
    for r in reports:
        if r.arch == "sm_90":
            ok = r.alu_ops_per_nonce <= GOAL_ALU_OPS and r.spill_store_bytes == 0
            print(f"goal (sm_90: <= {GOAL_ALU_OPS} ALU-pipe ops/nonce, no spills): "
                  f"{'met' if ok else 'NOT met'}")
    if a.write:
        print(f"written: {a.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
