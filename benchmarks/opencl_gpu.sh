#!/usr/bin/env bash
# One prepared run of the OpenCL core on a machine with a GPU (e.g. an NVIDIA H100/H200),
# within 5 minutes, every step under its own time limit:
#   1. the machine: GPU name, driver, clocks (nvidia-smi), CPU, Python
#   2. sgm devices
#   3. the kernel built on each GPU with the host's options; NVIDIA's compiler log
#      (-cl-nv-verbose: registers, spills) -- benchmarks/gpu_static.py --device-build
#   4. tests/test_opencl.py (on the first GPU)
#   5. sgm bench --device opencl, and each device's rate beside the static ceiling of the
#      kernel on that GPU: measured / ceiling (benchmarks/gpu_static.py --measured, from the
#      figures stored in benchmarks/results/gpu_static.json)
#   6. the CPU and the GPU(s) mining the embedded pool together for 20 s: every share
#      accepted, no hardware error, every device hashing, each OpenCL device finding shares
# It ends with one PASS/FAIL line per step (exit status 1 if any failed).  Without a GPU it
# runs the same steps on whatever OpenCL device there is (PoCL's CPU device).
# Run from anywhere; it works in the repository root.
#
# The machine needs Python 3.11 with numpy, pyopencl, platformdirs and pytest importable,
# and sgm's extensions built (sgm/_native/*.so).  Where it cannot reach a package index,
# prepare them beside the checkout first and bring them along:
#     python -m pip install --target .gpu-deps pyopencl platformdirs pytest pytest-timeout hypothesis
#     python setup.py build_ext --inplace
# (then carry .gpu-deps and sgm/_native/*.so).  PYTHON=... picks the interpreter.
#
# pyopencl finds a vendor driver through an ICD file (/etc/OpenCL/vendors/*.icd).  When no
# platform shows up, this script looks for NVIDIA's libnvidia-opencl.so.1 and points a
# private ICD file at it (OCL_ICD_VENDORS).
set -uo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
BUDGET=${SGM_GPU_CHECK_BUDGET:-290}          # seconds for all steps together
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif .venv/bin/python -c "" 2>/dev/null; then PY=.venv/bin/python
else PY=python3; fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
[ -d .gpu-deps ] && export PYTHONPATH="$PYTHONPATH:$PWD/.gpu-deps"
export SGM_VECTORS=${SGM_VECTORS:-$PWD/../shared/vectors}
[ -d "$SGM_VECTORS" ] || export SGM_VECTORS=$PWD/tests/data
WORK=$(mktemp -d)
export PY WORK
trap 'rm -rf "$WORK"' EXIT
RESULTS=()
FAILED=0

# step NAME LIMIT_S COMMAND...: run it under the smaller of its limit and what is left of
# the budget; record PASS/FAIL
step() {
    local name=$1 limit=$2; shift 2
    local left=$((BUDGET - (SECONDS - START)))
    [ "$limit" -gt "$left" ] && limit=$left
    echo; echo "== $name (limit ${limit} s)"
    if [ "$limit" -lt 5 ]; then
        RESULTS+=("FAIL  $name: no time left in the ${BUDGET} s budget"); FAILED=1; return
    fi
    local t0=$SECONDS rc
    if declare -F "$1" >/dev/null; then   # a function of this script: in a child bash
        timeout --kill-after=5 "$limit" bash -c '"$@"' _ "$@"; rc=$?
    else
        timeout --kill-after=5 "$limit" "$@"; rc=$?
    fi
    if [ $rc -eq 0 ]; then RESULTS+=("PASS  $name ($((SECONDS - t0)) s)")
    elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then RESULTS+=("FAIL  $name: over ${limit} s"); FAILED=1
    else RESULTS+=("FAIL  $name: exit $rc ($((SECONDS - t0)) s)"); FAILED=1; fi
}

echo "== machine"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total,pci.bus_id \
        --format=csv 2>/dev/null || nvidia-smi -L
else
    echo "(no nvidia-smi)"
fi
echo "CPU: $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
"$PY" -V

platforms() { "$PY" -c 'import pyopencl as cl; print(len(cl.get_platforms()))' 2>/dev/null || echo 0; }
if [ "$(platforms)" = "0" ]; then
    lib=$(ldconfig -p 2>/dev/null | awk '/libnvidia-opencl.so.1/ {print $NF; exit}')
    [ -z "$lib" ] && lib=$(find / -name 'libnvidia-opencl.so.1' 2>/dev/null | head -1)
    if [ -n "$lib" ]; then
        echo "$lib" > "$WORK/nvidia.icd"
        export OCL_ICD_VENDORS=$WORK
        echo "registered $lib through OCL_ICD_VENDORS=$WORK"
    fi
fi

step "sgm devices" 30 "$PY" -m sgm devices
step "kernel build on each GPU (compiler log)" 60 "$PY" benchmarks/gpu_static.py --device-build
step "OpenCL tests" 120 "$PY" -m pytest -q tests/test_opencl.py -p no:cacheprovider

bench() {
    "$PY" -m sgm bench --device opencl --seconds 2 --repeats 3 --json > "$WORK/bench.json" &&
    "$PY" - "$WORK/bench.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
for r in b["runs"]:
    print(f"{r['name']} {r['description']}: {r['hashes_per_s'] / 1e6:.2f} MH/s ({r['impl']}, "
          f"samples {', '.join(f'{s / 1e6:.2f}' for s in r['samples'])} MH/s; launch "
          f"{r['launch_size']} nonces = {r['launch_ms']:.2f} ms, device-timed "
          f"{r['profiled_kernel_ms']:.2f} ms; host thread {100 * r['host_cpu_share']:.1f}% of a core)")
PY
    "$PY" benchmarks/gpu_static.py --measured "$WORK/bench.json"
}
export -f bench
step "sgm bench --device opencl, measured / static ceiling" 60 bench

mine() {
    # the GPUs when there are any (an OpenCL CPU device would only share the CPU's cores),
    # else every OpenCL device; a share difficulty for ~40 shares in 20 s at the bench's rate
    local kinds bits
    kinds=$("$PY" -c 'from sgm.devices import opencl as o
print("cpu,opencl-gpu" if any(i.device_type == "GPU" for i, _ in o.discover()[0]) else "cpu,opencl")')
    bits=$("$PY" - "$WORK/bench.json" <<'PY'
import json, math, sys
try:
    rate = sum(r["hashes_per_s"] for r in json.load(open(sys.argv[1]))["runs"])
except (OSError, ValueError, KeyError):
    rate = 1e7
print(max(16, min(40, int(math.log2(max(rate, 1e6) * 20 / 40)))))
PY
)
    echo "devices $kinds, share difficulty $bits bits, 20 s"
    "$PY" -m sgm --devices "$kinds" --difficulty "$bits" --time-limit 20 -q \
        --summary-json "$WORK/mine.json" > /dev/null || return 1
    "$PY" - "$WORK/mine.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"all devices: {s['hashrate'] / 1e6:.2f} MH/s over {s['elapsed_s']:.1f} s, accepted "
      f"{s['accepted']}, rejected {s['rejected']}, stale {s['stale']}, hw errors {s['hw_errors']}")
problems = []
for d in s["devices"]:
    print(f"  {d['name']} ({d['kind']}, {d['impl']}): {d['hashrate'] / 1e6:.2f} MH/s, accepted "
          f"{d['accepted']}, hw errors {d['hw_errors']}, batch {d['batch_size']}")
    if d["hashes"] <= 0:
        problems.append(f"{d['name']} hashed nothing")
    if d["kind"] == "opencl" and d["accepted"] <= 0:
        problems.append(f"{d['name']} found no accepted share")
kinds = {d["kind"] for d in s["devices"]}
if kinds != {"cpu", "opencl"}:
    problems.append(f"mined with {sorted(kinds)}, not the CPU and OpenCL together")
if s["rejected"] or s["hw_errors"] or s["accepted"] <= 0:
    problems.append("rejected shares, hardware errors or no accepted share")
print("; ".join(problems) if problems else "every share accepted, every device hashing")
sys.exit(1 if problems else 0)
PY
}
export -f mine
step "CPU + OpenCL mining together" 60 mine

echo
echo "== summary ($((SECONDS - START)) s)"
printf '%s\n' "${RESULTS[@]}"
exit $FAILED
