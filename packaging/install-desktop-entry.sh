#!/usr/bin/env bash
# Add sgm to the desktop's application menu for the current user: writes
# ~/.local/share/applications/sgm-gui.desktop pointing at this unpacked bundle and installs
# the icon under ~/.local/share/icons.  Run it again after moving the bundle.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
ICONS=$DATA/icons/hicolor/256x256/apps
mkdir -p "$DATA/applications" "$ICONS"
cp "$HERE/sgm-gui.png" "$ICONS/sgm-gui.png"
# Exec must be an absolute path (the bundle is not on PATH); %-escapes are not needed here
sed -e "s|^Exec=.*|Exec=\"$HERE/sgm-gui\"|" -e "s|^Icon=.*|Icon=$ICONS/sgm-gui.png|" \
    "$HERE/sgm-gui.desktop" > "$DATA/applications/sgm-gui.desktop"
echo "installed $DATA/applications/sgm-gui.desktop"
