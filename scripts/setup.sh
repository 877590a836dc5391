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
    libxcb-render-util0 libxcb-image0 libxcb-xkb1 xvfb xauth openbox
    # tests/gui/test_desktop_entry.py checks packaging/sgm-gui.desktop with it
    desktop-file-utils)
# another apt (unattended-upgrades, a second setup) may hold the dpkg lock: wait for it
# this long instead of failing at once with apt's raw error
APT_LOCK_WAIT_S=${APT_LOCK_WAIT_S:-600}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing system packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt_opts=(-o "DPkg::Lock::Timeout=$APT_LOCK_WAIT_S")
    if ! apt-get "${apt_opts[@]}" update -qq || \
            ! apt-get "${apt_opts[@]}" install -y -qq "${missing[@]}" >/dev/null; then
        echo "setup: installing ${missing[*]} failed (another package manager may have held" \
             "the lock for over ${APT_LOCK_WAIT_S} s; set APT_LOCK_WAIT_S to wait longer)" >&2
        exit 1
    fi
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
