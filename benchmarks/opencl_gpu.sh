#!/usr/bin/env bash
# One prepared run of the OpenCL core on a machine with a GPU (e.g. an NVIDIA H100/H200):
# lists the OpenCL devices, runs the OpenCL tests, `sgm bench --device opencl` and
# benchmarks/opencl.py, and prints everything.  Run from the repository root.
#
# The machine needs Python 3.11 with numpy, pyopencl, platformdirs and pytest importable,
# and sgm's extensions built (sgm/_native/*.so).  Where it cannot reach a package index,
# prepare them beside the checkout first and bring them along:
#     python -m pip install --target .gpu-deps pyopencl platformdirs pytest pytest-timeout hypothesis
#     python setup.py build_ext --inplace
# (then carry .gpu-deps and sgm/_native/*.so).
#
# pyopencl finds a vendor driver through an ICD file (/etc/OpenCL/vendors/*.icd).  When no
# platform shows up, this script looks for NVIDIA's libnvidia-opencl.so.1 and points a
# private ICD file at it (OCL_ICD_VENDORS).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
[ -d .gpu-deps ] && export PYTHONPATH="$PYTHONPATH:$PWD/.gpu-deps"
export SGM_VECTORS=${SGM_VECTORS:-$PWD/../shared/vectors}
[ -d "$SGM_VECTORS" ] || export SGM_VECTORS=$PWD/tests/data

echo "== machine"; nvidia-smi -L 2>/dev/null || echo "(no nvidia-smi)"
grep -m1 "model name" /proc/cpuinfo; nproc; "$PY" -V

platforms() { "$PY" -c 'import pyopencl as cl; print(len(cl.get_platforms()))' 2>/dev/null || echo 0; }
if [ "$(platforms)" = "0" ]; then
    lib=$(ldconfig -p 2>/dev/null | awk '/libnvidia-opencl.so.1/ {print $NF; exit}')
    [ -z "$lib" ] && lib=$(find / -name 'libnvidia-opencl.so.1' 2>/dev/null | head -1)
    if [ -n "$lib" ]; then
        vendors=$(mktemp -d)
        echo "$lib" > "$vendors/nvidia.icd"
        export OCL_ICD_VENDORS=$vendors
        echo "== registered $lib through OCL_ICD_VENDORS=$vendors"
    fi
fi

echo "== sgm devices"; "$PY" -m sgm devices
echo "== OpenCL tests"; "$PY" -m pytest -q tests/test_opencl.py -p no:cacheprovider
echo "== sgm bench --device opencl"
"$PY" -m sgm bench --device opencl --seconds 2 --repeats 3 --json
echo "== benchmarks/opencl.py"
"$PY" benchmarks/opencl.py --seconds 2 --repeats 3 --mine 15
echo "== a GPU and the CPU mining together (embedded pool, 20 s)"
"$PY" -m sgm --time-limit 20 --difficulty 32 -q --summary-json /dev/stdout
