"""The extension is built for baseline x86-64: SHA / AVX / AVX-512 instructions appear only
inside the kernels that the CPUID dispatch guards, so a build runs on any x86-64 CPU."""
from __future__ import annotations

import platform
import re
import shutil
import subprocess
from collections import Counter

import pytest

from sgm._native import _sha256d

GATED = {"sgm_scan_shani", "sgm_scan_shani_sse", "sgm_scan_avx2", "sgm_scan_avx512"}


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                    reason="x86-64 only: other architectures build the portable kernel alone")
def test_isa_specific_instructions_only_in_gated_kernels():
    objdump = shutil.which("objdump")
    assert objdump, "objdump is missing: apt-get install binutils (part of build-essential)"
    out = subprocess.run([objdump, "-d", "--no-show-raw-insn", _sha256d.__file__],
                         capture_output=True, text=True, check=True).stdout
    where: Counter[str] = Counter()
    fn = ""
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            fn = m.group(1).split(".")[0]  # drop .constprop/.isra suffixes
            continue
        parts = line.split("\t")
        if len(parts) >= 2 and re.match(r"(v[a-z]|sha256)", parts[1].strip()):
            where[fn] += 1
    assert where, "no SIMD instructions at all: the kernels were not compiled in"
    outside = {f: n for f, n in where.items() if f not in GATED}
    assert not outside, f"ISA-specific instructions outside the gated kernels: {outside}"
    assert {"sgm_scan_avx2", "sgm_scan_shani"} <= set(where)
