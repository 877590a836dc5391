#!/usr/bin/env bash
# Build everything sgm needs on a fresh Debian machine (Python 3.11, root): system packages,
# a virtual environment in .venv with the Python dependencies, and sgm itself (editable, so
# the Cython extensions are compiled into the source tree).  Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(build-essential python3-dev python3-venv libsimde-dev openssl
    # the desktop app (Qt's offscreen and xcb platforms, a font) and its screenshots under
    # a virtual screen with a window manager
    libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3 fonts-dejavu-core
    libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0
    libxcb-render-util0 libxcb-image0 libxcb-xkb1 xvfb xauth openbox)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing system packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# the build requirements of pyproject.toml [build-system] (the build below runs without isolation)
.venv/bin/python -m pip install -q --disable-pip-version-check -U pip "setuptools>=77" "Cython>=3.0"
.venv/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation -e ".[test,gui,installer]"
# the Bitcoin SV node the solo-mining tests mine against (into .tools/, ignored by git)
bash scripts/install-test-node.sh
echo "setup: ready ($(.venv/bin/python -c 'import sgm._native as n; print("kernels:", ", ".join(n.available_implementations()))'))" >&2
# OpenCL: the test extra brings pyopencl with PoCL's CPU device (no GPU needed); a GPU's
# vendor driver is found through its ICD file in /etc/OpenCL/vendors
echo "setup: opencl: $(.venv/bin/python -c 'from sgm.devices import detect_opencl; f, r = detect_opencl(); print(", ".join(f"{d.name} {d.description}" for d in f) or r)')" >&2
