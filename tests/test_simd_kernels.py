"""The SIMD scan kernels (AVX2, AVX-512F) against the scalar reference and hashlib.

The AVX-512 kernel cannot run natively on a CPU without AVX-512F, so the primary check
compiles both SIMD kernels on top of SIMDe (portable implementations of the intrinsics,
Debian package libsimde-dev) with tests/native/simde_avx512_check.c and compares them with
the scalar kernel on thousands of random headers, targets, ranges and caps.  Where the CPU
has the instructions, the real kernels are also run through sgm._native.scan and checked
against hashlib.
"""
from __future__ import annotations

import os
import random
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tests.conftest import sha256d

ROOT = Path(__file__).resolve().parents[1]
INCLUDE = ROOT / "sgm" / "_native" / "include"
CHECK_SRC = ROOT / "tests" / "native" / "simde_avx512_check.c"
SIMDE_TEST = "test_simd_kernels_via_simde"
SIMDE_HINT = (
    "SIMDe headers (simde/x86/avx512.h) not found: apt-get install libsimde-dev "
    "(or point SIMDE_INCLUDE_DIR at the folder that holds simde/)"
)
RANDOM_CASES = 1500
TARGET_MAX = (1 << 256) - 1
GENESIS = bytes.fromhex(
    "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a"
    "7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c"
)
GENESIS_NONCE = 2083236893
DIFF1_TARGET = 0xFFFF << 208


def _compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not cc:
        pytest.fail("no C compiler (gcc) found to build the SIMDe kernel check", pytrace=False)
    return cc


def _simde_flags(cc: str, tmp_path: Path) -> list[str]:
    """-I flags that make <simde/x86/avx512.h> visible, or fail with the install hint."""
    extra = os.environ.get("SIMDE_INCLUDE_DIR")
    flags = [f"-I{extra}"] if extra else []
    probe = tmp_path / "probe.c"
    probe.write_text("#include <simde/x86/avx512.h>\nint main(void) { return 0; }\n")
    r = subprocess.run([cc, "-E", *flags, str(probe), "-o", os.devnull],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"{SIMDE_HINT}\n{r.stderr.strip()[-500:]}", pytrace=False)
    return flags


@pytest.mark.slow  # ~15 s, nearly all of it compiling the SIMDe headers
def test_simd_kernels_via_simde(tmp_path):
    """Both SIMD kernels, compiled on SIMDe, agree with sgm_scan_scalar in every field."""
    cc = _compiler()
    flags = _simde_flags(cc, tmp_path)
    exe = tmp_path / "simde_avx512_check"
    build = subprocess.run(
        [cc, "-O1", "-Wno-psabi", f"-I{INCLUDE}", *flags, str(CHECK_SRC), "-o", str(exe)],
        capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, f"building {CHECK_SRC.name} failed:\n{build.stderr[-4000:]}"
    run = subprocess.run([str(exe), str(RANDOM_CASES), "0x5eed5eed"],
                         capture_output=True, text=True, timeout=600)
    out = run.stdout
    assert run.returncode == 0 and "SUMMARY: PASS" in out, f"SIMDe kernel check failed:\n{out[-6000:]}"
    for name in ("avx512", "avx2"):
        m = re.search(rf"^PASS {name}: (\d+)/(\d+) cases", out, re.M)
        assert m, f"no PASS line for {name}:\n{out[-3000:]}"
        agreed, total = int(m.group(1)), int(m.group(2))
        assert agreed == total >= RANDOM_CASES, out


# ---------------------------------------------------------------- native runs

def _hash_value(header76: bytes, nonce: int) -> int:
    return int.from_bytes(sha256d(header76 + struct.pack("<I", nonce)), "little")


def _native_or_skip(impl: str, feature: str):
    from sgm import _native

    if not _native.cpu_features()[feature]:
        pytest.skip(f"CPU lacks {'AVX-512F' if feature == 'avx512f' else 'AVX2'}; "
                    f"kernel verified through SIMDe in test {SIMDE_TEST}")
    assert impl in _native.available_implementations()
    return _native


def _check_native_kernel(impl: str, feature: str) -> None:
    native = _native_or_skip(impl, feature)
    rng = random.Random(0x51D)

    # known answer: the genesis block's nonce at the difficulty-1 target
    ms, tail = native.sha256_midstate(GENESIS[:64]), GENESIS[64:76]
    r = native.scan(ms, tail, GENESIS_NONCE - 1000, 2001, DIFF1_TARGET, impl=impl)
    assert r.nonces == [GENESIS_NONCE] and r.scanned == 2001 and r.complete

    for case in range(60):
        header76 = rng.randbytes(76)
        ms, tail = native.sha256_midstate(header76[:64]), header76[64:76]
        count = rng.randrange(0, 1500)
        start = rng.choice([0, rng.randrange(1 << 32), (1 << 32) - count])
        start = min(start, (1 << 32) - count)
        kind = case % 4
        if kind == 0:
            target = TARGET_MAX >> rng.randrange(0, 6)     # easy: many hits
        elif kind == 1:
            target = rng.getrandbits(256) >> rng.randrange(0, 40)
        elif kind == 2:   # top word equal to a real hash's: the scalar re-check decides
            n = start + (rng.randrange(count) if count else 0)
            target = max(0, _hash_value(header76, n & 0xFFFFFFFF) + rng.choice([-1, 0, 1]))
            target = min(target, TARGET_MAX)
        else:
            target = rng.getrandbits(208)                  # harder than difficulty 1
        want = [n for n in range(start, start + count) if _hash_value(header76, n) <= target]
        got = native.scan(ms, tail, start, count, target, impl=impl)
        assert got.nonces == want, (impl, case, start, count, hex(target))
        assert got.scanned == count and got.complete

        # a cap that cuts the scan short: same stopping point as the scalar kernel
        if want:
            cap = rng.randrange(1, len(want) + 1)
            got = native.scan(ms, tail, start, count, target, impl=impl, max_results=cap)
            ref = native.scan(ms, tail, start, count, target, impl="scalar", max_results=cap)
            assert (got.nonces, got.scanned, got.truncated) == \
                (ref.nonces, ref.scanned, ref.truncated), (impl, case, cap)


def test_avx512_kernel_native_matches_hashlib():
    _check_native_kernel("avx512", "avx512f")


def test_avx2_kernel_native_matches_hashlib():
    _check_native_kernel("avx2", "avx2")
