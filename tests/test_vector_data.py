"""tests/data is the suite's own copy of the reference vectors: complete, and still the
verified facts it was copied as (its own stdlib-only verify.py re-derives every hash)."""
from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import DATA_DIR, VECTOR_FILES, load_vectors


def test_the_vector_copy_verifies_with_its_own_checker():
    r = subprocess.run([sys.executable, str(DATA_DIR / "verify.py"), str(DATA_DIR)],
                       capture_output=True, text=True, timeout=60)
    summary = r.stdout.strip().splitlines()[-1]
    m = re.fullmatch(r"(\d+) passed, (\d+) failed", summary)
    assert r.returncode == 0 and m and m.group(2) == "0", r.stdout + r.stderr
    headers = len(load_vectors("headers.json")["headers"])
    shares = len(load_vectors("stratum_shares.json")["shares"])
    assert int(m.group(1)) >= headers + shares and headers >= 17 and shares >= 6


def test_every_vector_file_has_its_provenance_beside_it():
    readme = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    for name in VECTOR_FILES:
        assert (DATA_DIR / name).is_file() and f"`{name}`" in readme
