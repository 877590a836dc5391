"""The command-line contract: `sgm scan`, `sgm bench`, `sgm devices` (exact output shapes,
exit codes 0 / 2)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sgm import _native

ROOT = Path(__file__).resolve().parents[1]
GENESIS = (
    "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b2"
    "7ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c"
)
GENESIS_NONCE = 2083236893


def sgm(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "sgm", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def test_scan_prints_the_genesis_nonce_and_nothing_else():
    r = sgm("scan", GENESIS, "--start", str(GENESIS_NONCE - 300_000), "--count", "600000")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{GENESIS_NONCE}\n"


def test_scan_with_an_explicit_target_and_a_difficulty_agree(header_vectors):
    from sgm.hashing import difficulty_to_target, nbits_to_target, sha256d

    header = bytes.fromhex(GENESIS)
    target = 1 << 250  # about 1/64 of nonces
    a = sgm("scan", GENESIS, "--start", "1000", "--count", "4000", "--target", f"{target:064x}")
    assert a.returncode == 0, a.stderr
    got = [int(x) for x in a.stdout.split()]
    expect = [n for n in range(1000, 5000)
              if int.from_bytes(sha256d(header[:76] + n.to_bytes(4, "little")), "little") <= target]
    assert got == expect and len(got) > 20
    b = sgm("scan", GENESIS, "--start", "1000", "--count", "4000", "--difficulty", "0.0001")
    t2 = difficulty_to_target(0.0001)
    assert [int(x) for x in b.stdout.split()] == [
        n for n in range(1000, 5000)
        if int.from_bytes(sha256d(header[:76] + n.to_bytes(4, "little")), "little") <= t2]
    assert nbits_to_target(0x1D00FFFF) == 0xFFFF << 208


@pytest.mark.parametrize("impl", _native.available_implementations())
def test_scan_honours_impl(impl):
    r = sgm("scan", GENESIS, "--start", str(GENESIS_NONCE - 5), "--count", "10", "--impl", impl)
    assert r.returncode == 0 and r.stdout.split() == [str(GENESIS_NONCE)]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["scan", "zz" * 80, "--start", "0", "--count", "1"], "not valid hex"),
        (["scan", GENESIS[:-2], "--start", "0", "--count", "1"], "160 hex digits"),
        (["scan", GENESIS, "--start", "-1", "--count", "1"], "--start"),
        (["scan", GENESIS, "--start", "4294967295", "--count", "2"], "wrapping"),
        (["scan", GENESIS, "--start", "0", "--count", "1", "--target", "ff"], "64 hex digits"),
        (["scan", GENESIS, "--start", "0", "--count", "1", "--target", "g" * 64], "not valid hex"),
        (["scan", GENESIS, "--start", "0", "--count", "1", "--difficulty", "0"], "--difficulty"),
        (["scan", GENESIS, "--start", "0", "--count", "1", "--impl", "nope"], "nope"),
        (["scan", GENESIS, "--count", "1"], "--start"),
        (["bench", "--impl", "nope"], "nope"),
        (["bench", "--threads", "0"], "--threads"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(args, fragment):
    r = sgm(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert fragment in r.stderr
    assert r.stdout == ""


def test_bench_json_has_the_contract_keys_and_a_consistent_ratio():
    impl = _native.default_implementation()
    r = sgm("bench", "--json", "--impl", impl, "--threads", "1", "--seconds", "0.2",
            "--repeats", "3")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    ref = out["reference"]
    assert ref["what"] == "hashlib sha256, large buffer" and ref["bytes_per_s"] > 1e6
    [run] = out["runs"]
    assert run["device"] == "cpu" and run["impl"] == impl and run["threads"] == 1
    assert run["hashes_per_s"] > 1e5
    assert run["ratio"] == pytest.approx(run["hashes_per_s"] * 128 / ref["bytes_per_s"])


def test_devices_lists_the_cpu_and_its_kernels():
    r = sgm("devices", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    cpu = [d for d in out["devices"] if d["kind"] == "cpu"]
    assert cpu and cpu[0]["implementations"] == _native.available_implementations()
    assert cpu[0]["compute_units"] >= 1
    text = sgm("devices")
    assert text.returncode == 0 and _native.default_implementation() in text.stdout


def test_sgm_impl_environment_variable_forces_the_default_kernel():
    forced = _native.available_implementations()[-1]
    env = dict(os.environ, PYTHONPATH=str(ROOT), SGM_IMPL=forced)
    r = subprocess.run([sys.executable, "-m", "sgm", "devices", "--json"], capture_output=True,
                       text=True, env=env, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    cpu = [d for d in json.loads(r.stdout)["devices"] if d["kind"] == "cpu"][0]
    assert cpu["default_impl"] == forced
    env["SGM_IMPL"] = "no-such-kernel"
    r = subprocess.run([sys.executable, "-m", "sgm", "devices"], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and "SGM_IMPL" in r.stderr and "no-such-kernel" in r.stderr


def test_the_command_line_modules_import_on_their_own():
    """sgm.miner_cli and sgm.cli share their argument types through sgm.cli_args: each
    imports alone, and neither pulls in the other at import time."""
    code = ("import sys, importlib; m = importlib.import_module(sys.argv[1]); "
            "print(sorted(k for k in sys.modules if k in ('sgm.cli', 'sgm.miner_cli')))")
    for module, loaded in [("sgm.miner_cli", ["sgm.miner_cli"]), ("sgm.cli", ["sgm.cli"])]:
        r = subprocess.run([sys.executable, "-c", code, module], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == repr(loaded)


def test_pool_flags_pair_each_o_with_its_u_and_p_for_sgm_and_sgm_gui():
    from sgm.cli_args import UsageError, pool_flags

    assert pool_flags(["a", "b", "c"], ["u1", "u2"], ["p1"]) == [
        ("a", "u1", "p1"), ("b", "u2", "p1"), ("c", "u2", "p1")]
    assert pool_flags(["a"], [], []) == [("a", "", "x")]
    assert pool_flags([], [], []) == []
    with pytest.raises(UsageError, match="more -u/-p than -o"):
        pool_flags(["a"], ["u1", "u2"], [])
    with pytest.raises(UsageError, match="without -o"):
        pool_flags([], ["u"], [])
