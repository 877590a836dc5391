"""packaging/sgm-gui.desktop passes desktop-file-validate (it failed on Version=1.5 and two
main categories).  desktop-file-utils is installed by scripts/setup.sh."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ENTRY = Path(__file__).resolve().parents[2] / "packaging" / "sgm-gui.desktop"


def test_the_desktop_entry_is_valid():
    tool = shutil.which("desktop-file-validate")
    assert tool, "desktop-file-validate is missing: run scripts/setup.sh (desktop-file-utils)"
    r = subprocess.run([tool, str(ENTRY)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), r.stdout + r.stderr
