"""Write the app icon as a PNG for the bundle's .desktop entry (run by
scripts/build-installer.sh with the staged sgm_gui first on sys.path).

The icon is drawn in code (sgm_gui.icon) so the repository holds no binary assets; this
renders it once at build time.  Usage: python export_icon.py OUT.png [SIZE]
"""
from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: export_icon.py OUT.png [SIZE]", file=sys.stderr)
        return 2
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no display needed at build time
    from sgm_gui.icon import render_icon_png

    render_icon_png(argv[0], int(argv[1]) if len(argv) == 2 else 256)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
