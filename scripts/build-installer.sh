#!/usr/bin/env bash
# Build sgm's self-contained Linux bundle: dist/sgm-VERSION-linux-ARCH.tar.gz holding the
# executables `sgm` and `sgm-gui` (one shared _internal/ folder with Python, sgm's native
# extensions and OpenCL kernels, PySide6, pyqtgraph, numpy, pyopencl and the PoCL runtime),
# a .desktop entry and a PNG icon.  The bundle needs neither the source tree nor Python.
#
#   bash scripts/build-installer.sh [--dist DIR] [--work DIR]
#
# Run after `bash scripts/setup.sh` (its .venv has PyInstaller from the `installer` extra and
# PoCL from the `test` extra); PYTHON=/path/to/python picks another environment.
#   --dist DIR   where the .tar.gz goes (default: dist/)
#   --work DIR   scratch space: the staged install, PyInstaller's build folders and the
#                unpacked bundle (default: build/installer/)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-$ROOT/.venv/bin/python}
DIST=$ROOT/dist
WORK=$ROOT/build/installer

die() { echo "build-installer: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --dist) [ $# -ge 2 ] || die "--dist needs a folder"; DIST=$2; shift 2 ;;
        --work) [ $# -ge 2 ] || die "--work needs a folder"; WORK=$2; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $1 (usage: bash scripts/build-installer.sh [--dist DIR] [--work DIR])" ;;
    esac
done
mkdir -p "$DIST" "$WORK"
DIST=$(cd "$DIST" && pwd)
WORK=$(cd "$WORK" && pwd)

[ -x "$PY" ] || die "no Python at $PY: run 'bash scripts/setup.sh' first (or set PYTHON=...)"
"$PY" - <<'EOF' || die "the build environment is incomplete: run 'bash scripts/setup.sh' (extras gui, installer, test)"
import importlib.util, sys
missing = [m for m in ("PyInstaller", "PySide6", "pyqtgraph", "numpy", "pyopencl",
                       "pocl_binary_distribution", "platformdirs", "Cython", "setuptools")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"build-installer: missing from {sys.prefix}: {', '.join(missing)}")
EOF

VERSION=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
ARCH=$(uname -m)
NAME=sgm-$VERSION-linux-$ARCH
start=$(date +%s)

# 1. sgm as the wheel would install it (compiled extensions, sgm/kernels/*.cl, sgm_gui from
#    gui/), into a staging folder that PyInstaller puts first on its path -- so the bundle
#    gets the packaged layout, not the editable source tree that .venv points at.
STAGE=$WORK/stage
rm -rf "$STAGE"
echo "build-installer: installing sgm $VERSION into $STAGE" >&2
"$PY" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
    --target "$STAGE" "$ROOT" || die "building sgm failed (see pip's output above)"
[ -f "$STAGE/sgm_gui/app.py" ] || die "gui/app.py is missing: the bundle's sgm-gui needs sgm_gui.app:main"

# 2. the icon, drawn by the app's own code (no binary asset in the repository)
ICON=$WORK/sgm-gui.png
PYTHONPATH=$STAGE QT_QPA_PLATFORM=offscreen "$PY" packaging/export_icon.py "$ICON" 256 \
    || die "rendering the icon failed"

# 3. PyInstaller: onedir, two executables over one _internal/ (packaging/sgm.spec)
echo "build-installer: PyInstaller (packaging/sgm.spec)" >&2
rm -rf "$WORK/pyi-dist"
SGM_STAGE=$STAGE "$PY" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$WORK/pyi-dist" --workpath "$WORK/pyi-build" packaging/sgm.spec \
    || die "PyInstaller failed (see its output above)"

BUNDLE=$WORK/pyi-dist/$NAME
mv "$WORK/pyi-dist/sgm" "$BUNDLE"
cp packaging/sgm-gui.desktop "$BUNDLE/sgm-gui.desktop"
cp packaging/install-desktop-entry.sh "$BUNDLE/install-desktop-entry.sh"
chmod +x "$BUNDLE/install-desktop-entry.sh"
cp "$ICON" "$BUNDLE/sgm-gui.png"
cp LICENSE "$BUNDLE/LICENSE"

# 4. smoke check from outside the tree with a bare environment: the frozen CLI starts, finds
#    its native kernels and PoCL's OpenCL device through the bundled ICD loader
check=$(cd "$WORK" && env -i PATH=/usr/bin:/bin HOME="${HOME:-/tmp}" "$BUNDLE/sgm" devices --json) \
    || die "the bundled 'sgm devices' failed"
printf '%s' "$check" | "$PY" -c '
import json, sys
info = json.load(sys.stdin)
kinds = [d["kind"] for d in info["devices"]]
if "cpu" not in kinds:
    sys.exit("build-installer: the bundled sgm sees no CPU device")
if "opencl" not in kinds:
    sys.exit("build-installer: the bundled sgm sees no OpenCL device (PoCL not found: "
             + str(info.get("opencl_unavailable_reason")) + ")")
print("build-installer: bundled sgm devices: "
      + ", ".join(d["name"] + " (" + d["description"] + ")" for d in info["devices"]), file=sys.stderr)
' || exit 1

# 5. the archive
ARCHIVE=$DIST/$NAME.tar.gz
tar -C "$WORK/pyi-dist" -czf "$ARCHIVE.tmp" "$NAME"
mv "$ARCHIVE.tmp" "$ARCHIVE"
echo "build-installer: $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1); unpacked $(du -sh "$BUNDLE" | cut -f1)) in $(( $(date +%s) - start )) s" >&2
echo "$ARCHIVE"
