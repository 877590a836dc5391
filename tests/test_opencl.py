"""The OpenCL hash core (kernels/sha256d.cl + sgm/devices/opencl/) on a real OpenCL
runtime -- PoCL's CPU device in CI: the kernel against hashlib, real block headers, the top
of the nonce space, result-buffer overflow, the program cache, the command line, mining
beside the CPU, and an OpenCL error that stops one device while mining goes on.

There is no silent skip: without an OpenCL runtime every test here fails and says what to
install.  One compiled program is shared by the tests (module fixture + on-disk cache).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sgm import _native
from sgm.devices import DEFAULT_DEVICES, check_device_selection, opencl as ocl
from sgm.devices.opencl import runtime as ocl_runtime
from sgm.hashing import bits_to_target, nbits_to_target
from tests.conftest import load_vectors, wait_until

ROOT = Path(__file__).resolve().parents[1]
GENESIS = bytes.fromhex(
    "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b2"
    "7ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c")
GENESIS_NONCE = 2083236893
MAX_TARGET = (1 << 256) - 1


def sha256d_value(header76: bytes, nonce: int) -> int:
    h = hashlib.sha256(hashlib.sha256(header76 + struct.pack("<I", nonce)).digest()).digest()
    return int.from_bytes(h, "little")


def expected(header: bytes, start: int, count: int, target: int) -> list[int]:
    return [n for n in range(start, start + count) if sha256d_value(header[:76], n) <= target]


def require_runtime() -> tuple:
    found, reason = ocl.discover()
    if not found:
        pytest.fail(f"the OpenCL tests need an OpenCL runtime and found none ({reason}). "
                    "Install one: pip install 'pyopencl[pocl]' (PoCL's CPU device; "
                    "bash scripts/setup.sh does this) or a GPU's OpenCL driver.", pytrace=False)
    return ocl.first_device()


@pytest.fixture(scope="module")
def cl_device():
    return require_runtime()


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> ocl.ProgramCache:
    return ocl.ProgramCache(tmp_path_factory.mktemp("opencl-cache"))


@pytest.fixture(scope="module")
def scanner(cl_device, cache) -> ocl.OpenCLScanner:
    _, dev = cl_device
    sc = ocl.OpenCLScanner(dev, cache=cache)
    sc.calibrate(0.02)
    return sc


def scan(sc: ocl.OpenCLScanner, header: bytes, start: int, count: int, target: int):
    return sc.scan_range(_native.sha256_midstate(header[:64]), header[64:76], start, count,
                         target)


# ------------------------------------------------------------------------- the kernel
def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & 0xFFFFFFFF


# SHA-256 written out here from FIPS 180-4, independently of the code under test
_K = [int((p ** (1 / 3) % 1) * 2**32) for p in
      (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61)]


def test_precompute_matches_an_independent_model():
    """The host's nonce-free words against a straight SHA-256 schedule/round model: rounds
    0..2 of block 2, round 3 without W3, h + K + W of rounds 4..6, the schedule words."""
    M = 0xFFFFFFFF
    bsig0 = lambda x: _rotr(x, 2) ^ _rotr(x, 13) ^ _rotr(x, 22)      # noqa: E731
    bsig1 = lambda x: _rotr(x, 6) ^ _rotr(x, 11) ^ _rotr(x, 25)      # noqa: E731
    ssig0 = lambda x: _rotr(x, 7) ^ _rotr(x, 18) ^ (x >> 3)          # noqa: E731
    ssig1 = lambda x: _rotr(x, 17) ^ _rotr(x, 19) ^ (x >> 10)        # noqa: E731
    assert _K[0] == 0x428a2f98 and _K[17] == 0xefbe4786
    for seed in range(5):
        rng = random.Random(seed)
        header = bytes(rng.getrandbits(8) for _ in range(80))
        ms = _native.sha256_midstate(header[:64])
        args = ocl.precompute(ms, header[64:76])
        assert len(args) == 27 and all(0 <= a < 1 << 32 for a in args)
        assert args[26] == 1     # `one`: the NVIDIA build's multiplier for additions as IMADs
        assert args[:8] == struct.unpack("<8I", ms)
        w = list(struct.unpack(">3I", header[64:76])) + [0, 0x80000000] + [0] * 10 + [640]
        a, b, c, d, e, f, g, h = struct.unpack("<8I", ms)
        for i in range(3):
            t1 = (h + bsig1(e) + ((e & f) ^ (~e & g)) + _K[i] + w[i]) & M
            t2 = (bsig0(a) + ((a & b) ^ (a & c) ^ (b & c))) & M
            h, g, f, e, d, c, b, a = g, f, e, (d + t1) & M, c, b, a, (t1 + t2) & M
        assert args[8:13] == (a, b, c, e, f)
        t1_3 = (h + bsig1(e) + ((e & f) ^ (~e & g)) + _K[3]) & M        # W3 = nonce left out
        assert args[13] == (t1_3 + bsig0(a) + ((a & b) ^ (a & c) ^ (b & c))) & M
        assert args[14] == (d + t1_3) & M
        assert args[15:18] == ((g + _K[4] + w[4]) & M, (f + _K[5]) & M, (e + _K[6]) & M)
        w[3] = 0   # the nonce, excluded from every precomputed word
        for i in range(16, 18):
            w.append((ssig1(w[i - 2]) + w[i - 7] + ssig0(w[i - 15]) + w[i - 16]) & M)
        w16, w17, k16, k17, w18p, w19p, p31, p32 = args[18:26]
        assert (w16, w17) == (w[16], w[17])
        assert k16 == (_K[16] + w16) & M and k17 == (_K[17] + w17) & M
        # W18 = s1(W16) + W11 + s0(W3) + W2; W19 = s1(W17) + W12 + s0(W4) + W3
        assert w18p == (ssig1(w16) + w[2]) & M
        assert w19p == (ssig1(w17) + ssig0(0x80000000)) & M
        assert p31 == (ssig0(w16) + 640) & M and p32 == (ssig0(w17) + w16) & M


@pytest.mark.parametrize("seed", range(6))
def test_kernel_matches_hashlib_on_random_headers_and_easy_targets(scanner, seed):
    """Targets easier than difficulty 1 (the top word non-zero): the kernel pre-filters on
    the top word, the host decides on all 256 bits -- exactly hashlib's answer."""
    rng = random.Random(seed)
    header = bytes(rng.getrandbits(8) for _ in range(80))
    # 1 nonce in 2**bits to 2**(bits+1) meets it; the lower words are random
    bits = rng.choice([2, 4, 6, 8])
    target = (1 << (255 - bits)) | rng.getrandbits(255 - bits)
    count = rng.randrange(3000, 12000)
    start = rng.randrange(0, (1 << 32) - count)
    job = scan(scanner, header, start, count, target)
    assert job.done == count and job.bad == []
    assert job.nonces == expected(header, start, count, target)
    assert job.nonces, "the target was meant to be met a few times"


@pytest.mark.slow   # 5-10 s a case on PoCL, nearly all of it building the program
@pytest.mark.parametrize("vector_width, worksize, builtins",
                         [(1, 256, True),      # what a GPU gets
                          (4, 32, True), (2, 16, False)])
def test_other_build_options_match_hashlib_too(cl_device, cache, vector_width, worksize,
                                               builtins):
    _, dev = cl_device
    sc = ocl.OpenCLScanner(dev, cache=cache, vector_width=vector_width, worksize=worksize,
                           builtins=builtins)
    assert f"-D USE_BUILTINS={int(builtins)}" in sc.options
    rng = random.Random(vector_width)
    header = bytes(rng.getrandbits(8) for _ in range(80))
    target = (1 << 251) | rng.getrandbits(251)
    start = (1 << 32) - 6001                  # ends at the last nonce, no whole work-group
    job = scan(sc, header, start, 6001, target)
    assert job.nonces == expected(header, start, 6001, target) and job.nonces
    assert scan(sc, GENESIS, GENESIS_NONCE - 3000, 5000,
                nbits_to_target(0x1d00ffff)).nonces == [GENESIS_NONCE]


@pytest.mark.parametrize("vector_width", [1, 8])
def test_the_nvidia_builds_arithmetic_matches_hashlib(cl_device, cache, vector_width):
    """NVIDIA's build turns each addition into x * one + y (an IMAD) with `one` a kernel
    argument; SGM_FMA_MODEL is that arithmetic in portable C, so PoCL checks that the host
    passes one = 1 in the argument the kernel reads it from (the inline PTX itself needs
    NVIDIA's compiler)."""
    _, dev = cl_device
    source = "#define SGM_FMA_MODEL 1\n" + ocl.kernel_path().read_text(encoding="utf-8")
    sc = ocl.OpenCLScanner(dev, cache=cache, vector_width=vector_width, source=source)
    rng = random.Random(100 + vector_width)
    header = bytes(rng.getrandbits(8) for _ in range(80))
    target = (1 << 250) | rng.getrandbits(250)
    start = rng.randrange(0, (1 << 32) - 5000)
    job = scan(sc, header, start, 5000, target)
    assert job.bad == [] and job.nonces == expected(header, start, 5000, target) and job.nonces
    assert scan(sc, GENESIS, GENESIS_NONCE - 2000, 4000,
                nbits_to_target(0x1d00ffff)).nonces == [GENESIS_NONCE]


def test_kernel_exact_at_a_target_equal_to_a_hash(scanner):
    """<= is exact in all 256 bits: the target equal to a hash includes it, one less not."""
    rng = random.Random(11)
    header = bytes(rng.getrandbits(8) for _ in range(80))
    start, count = 5000, 3000
    values = sorted(sha256d_value(header[:76], n) for n in range(start, start + count))
    pick = values[40]
    assert scan(scanner, header, start, count, pick).nonces == expected(header, start, count, pick)
    assert len(scan(scanner, header, start, count, pick).nonces) == 41
    assert len(scan(scanner, header, start, count, pick - 1).nonces) == 40


def test_kernel_hard_target_finds_nothing_where_nothing_is(scanner):
    """A difficulty >= 1 target (top word zero) over a random range: no nonce, as the
    native scalar kernel says for the same range."""
    rng = random.Random(3)
    header = bytes(rng.getrandbits(8) for _ in range(80))
    target = nbits_to_target(0x1d00ffff)
    count = 1 << 18
    job = scan(scanner, header, 1 << 20, count, target)
    native = _native.scan(_native.sha256_midstate(header[:64]), header[64:76], 1 << 20, count,
                          target, impl="scalar")
    assert job.done == count and job.nonces == native.nonces == []


def test_every_real_block_header_is_found_in_a_window_around_its_nonce(scanner):
    """Every real header of the test data: the window around the real nonce gives exactly
    the real nonce at the block's own target, and its hash is the block hash."""
    headers = load_vectors("headers.json")["headers"]
    assert len(headers) >= 10
    for v in headers:
        header = bytes.fromhex(v["header_hex"])
        nonce = v["nonce"]
        target = nbits_to_target(int(v["nbits"], 16))
        start = max(0, nonce - 40_000)
        count = min(80_000, (1 << 32) - start)
        job = scan(scanner, header, start, count, target)
        assert job.nonces == [nonce], v["name"]
        digest = _native.sha256d_final_state(_native.sha256_midstate(header[:64]),
                                             header[64:76], nonce)
        assert digest[::-1].hex() == v["block_hash"], v["name"]


def test_a_range_ending_at_the_last_nonce(scanner):
    rng = random.Random(5)
    header = bytes(rng.getrandbits(8) for _ in range(80))
    target = rng.getrandbits(250)
    for count in (1, 7, 12345):   # also counts that are no multiple of a work-group's nonces
        start = (1 << 32) - count
        job = scan(scanner, header, start, count, target)
        assert job.done == count
        assert job.nonces == expected(header, start, count, target)
    top = scan(scanner, header, (1 << 32) - 4096, 4096, MAX_TARGET)
    assert top.nonces == list(range((1 << 32) - 4096, 1 << 32))


def test_result_buffer_overflow_is_reported_and_no_candidate_is_lost(cl_device, cache):
    _, dev = cl_device
    sc = ocl.OpenCLScanner(dev, cache=cache, capacity=16)
    ms = _native.sha256_midstate(GENESIS[:64])
    # one raw launch: its counter says how many candidates there were, beyond the capacity
    job = sc.job(ms, GENESIS[64:76], 1000, 500, MAX_TARGET)
    sc.fill(job, depth=1)
    launch = sc.inflight[0]
    assert sc.wait(launch)
    assert int(launch.slot.prefix[0]) == 500 > sc.capacity
    sc.drop(job)
    # a scan: the overflow is counted and the range rescanned in pieces, nothing dropped
    rng = random.Random(9)
    target = rng.getrandbits(253)   # about 1/8 of the nonces
    full = sc.scan_range(ms, GENESIS[64:76], 70_000, 3000, target)
    assert full.overflows >= 1 and sc.overflows >= full.overflows
    assert full.nonces == expected(GENESIS, 70_000, 3000, target)


# ------------------------------------------------------------------------- program cache
def test_program_cache_reuses_rebuilds_on_change_and_survives_corruption(cl_device, tmp_path,
                                                                         caplog):
    _, dev = cl_device
    cache = ocl.ProgramCache(tmp_path)
    source = ocl.kernel_path().read_text()
    first = ocl.OpenCLScanner(dev, cache=cache, source=source)
    assert first.program_origin == "built"
    [entry] = list(tmp_path.glob("*.clbin"))
    again = ocl.OpenCLScanner(dev, cache=cache, source=source)
    assert again.program_origin == "cache"

    changed = source + "\n/* a changed kernel source */\n"
    other = ocl.OpenCLScanner(dev, cache=cache, source=changed)
    assert other.program_origin == "built"          # new key: compiled from source
    assert len(list(tmp_path.glob("*.clbin"))) == 2

    rng = random.Random(1)
    target = rng.getrandbits(250)
    want = expected(GENESIS, 0, 2000, target)
    # a flipped byte fails the checksum; a well-formed file whose binary the driver
    # refuses fails to load: both are rebuilt (with a warning), neither is fatal
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    garbage = b"not a program binary" * 10
    for corrupt in (None, ocl.ProgramCache.MAGIC + hashlib.sha256(garbage).digest() + garbage):
        if corrupt is not None:
            entry.write_bytes(corrupt)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sgm.devices.opencl"):
            sc = ocl.OpenCLScanner(dev, cache=cache, source=source)
        assert sc.program_origin == "rebuilt"
        assert any("unusable" in r.getMessage() for r in caplog.records)
        assert scan(sc, GENESIS, 0, 2000, target).nonces == want
        assert ocl.OpenCLScanner(dev, cache=cache, source=source).program_origin == "cache"


def test_the_cache_key_covers_device_driver_source_and_options(cl_device):
    _, dev = cl_device
    key = ocl.ProgramCache.key
    assert key(dev, "a", "-D X=1") == key(dev, "a", "-D X=1")
    assert key(dev, "a", "-D X=1") != key(dev, "b", "-D X=1")
    assert key(dev, "a", "-D X=1") != key(dev, "a", "-D X=2")


def test_a_kernel_that_does_not_build_leaves_that_device_out_with_one_line(cl_device, tmp_path,
                                                                           caplog):
    with caplog.at_level(logging.ERROR, logger="sgm.devices.opencl"):
        devices = ocl.make_devices(("opencl",), source="__kernel void broken( {",
                                   cache=ocl.ProgramCache(tmp_path))
    assert devices == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) >= 1 and all("cannot use it" in r.getMessage() for r in errors)
    assert all("\n" not in r.getMessage() for r in errors)


def test_the_kernel_file_is_found_in_a_checkout_and_shipped_in_the_wheel(tmp_path):
    path = ocl.kernel_path()
    assert path == ROOT / "kernels" / "sha256d.cl"          # the source of truth
    # building the package copies kernels/*.cl to sgm/kernels/, where an installed sgm
    # finds it first
    r = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib",
                        str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    shipped = tmp_path / "sgm" / "kernels" / "sha256d.cl"
    assert shipped.read_bytes() == path.read_bytes()
    assert ocl.kernel_path(tmp_path / "sgm") == shipped
    with pytest.raises(ocl.OpenCLBuildError, match="sha256d.cl not found"):
        ocl.kernel_path(tmp_path / "elsewhere" / "sgm")


def test_without_pyopencl_everything_says_what_to_install(monkeypatch):
    monkeypatch.setattr(ocl_runtime, "cl", None)
    found, reason = ocl.discover()
    assert found == [] and "pip install" in reason and "pocl" in reason
    with pytest.raises(ocl.OpenCLUnavailable, match="pip install"):
        ocl.require_opencl()
    assert ocl.make_devices(("cpu", "opencl-gpu")) == []     # the default: quietly none


# ------------------------------------------------------------------------- selection
def test_device_selection_rules(cl_device):
    info, _ = cl_device
    check_device_selection(DEFAULT_DEVICES)
    check_device_selection(("cpu", "opencl"))
    check_device_selection(("opencl0.0",))
    for bad in (("gpu",), (), ("opencl0",), ("cuda",)):
        with pytest.raises(ValueError, match="--devices"):
            check_device_selection(bad)
    everything, _ = ocl.select(("opencl",))
    assert info.name in [i.name for i, _ in everything]
    default, _ = ocl.select(DEFAULT_DEVICES)
    assert all(i.device_type == "GPU" for i, _ in default)   # never PoCL by default
    by_name, warnings = ocl.select((info.name, "opencl9.9"))
    assert [i.name for i, _ in by_name] == [info.name]
    assert any("opencl9.9" in w for w in warnings)
    for i, _ in everything:
        assert i.used_by_default == (i.device_type == "GPU")


def test_a_device_named_but_not_here_is_a_usage_error(cl_device):
    """A typo in --devices must not quietly mine without the device the user asked for."""
    info, _ = cl_device
    with pytest.raises(ValueError, match="no OpenCL device named opencl9.9"):
        ocl.make_devices(("cpu", "opencl9.9"))
    r = subprocess.run([sys.executable, "-m", "sgm", "--devices", "cpu,opencl9.9",
                        "--jobs", "1", "--duration", "1", "-q"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "no OpenCL device named opencl9.9" in r.stderr and info.name in r.stderr


def test_the_opencl_options_reach_the_miner_from_flags_and_the_config_file(tmp_path):
    from sgm.cli_args import UsageError
    from sgm.miner_cli import _parser, build_config

    cfg, _ = build_config(_parser().parse_args(["--opencl-kernel-time", "0.01",
                                                "--reserve-cpu-core"]))
    assert cfg.opencl_kernel_time == 0.01 and cfg.reserve_core_per_gpu
    path = tmp_path / "sgm.json"
    path.write_text(json.dumps({"opencl-kernel-time": 0.05, "reserve-cpu-core": True}))
    cfg, _ = build_config(_parser().parse_args(["-c", str(path)]))
    assert cfg.opencl_kernel_time == 0.05 and cfg.reserve_core_per_gpu
    cfg, _ = build_config(_parser().parse_args([]))
    assert cfg.opencl_kernel_time is None and not cfg.reserve_core_per_gpu
    with pytest.raises(UsageError, match="--opencl-kernel-time must be a number in"):   # out of 0.0005..1 s
        build_config(_parser().parse_args(["--opencl-kernel-time", "5"]))
    with pytest.raises(SystemExit):                          # argparse: not positive
        _parser().parse_args(["--opencl-kernel-time", "0"])


# ------------------------------------------------------------------------- the device
def make_job(bits: int):
    from sgm.jobs import Job

    notify = [
        "1", "9973803c689d114202d8fa6e7a812464ec5968614898bef00000000800000000",
        "02000000010000000000000000000000000000000000000000000000000000000000000000ffffffff25"
        "036e052500",
        "ffffffff02dbd4250000000000434104466d7fcae563e5cb09a0d1870bb580344804617879a14949cf2228"
        "5f1bae3f276728176c3c6431f8eeda4538dc37c865e2784f3a9e77d044f33e407797e1278aac00000000",
        [], "20000000", "1929ee8d", "6422ca0e", True,
    ]
    return Job.from_notify(notify, extranonce1="00000001", extranonce2_size=4,
                           target=bits_to_target(bits))


def test_device_under_the_scheduler_finds_verified_shares_and_loses_no_nonce(cl_device, cache):
    """Shares pass hashlib; after a disable every nonce handed out is either scanned or
    back in the queue (batches pulled ahead of time included)."""
    from sgm.hashing import meets_target, sha256d
    from sgm.scheduler import Scheduler
    from sgm.telemetry import Telemetry

    info, dev = cl_device
    shares = []
    tel = Telemetry()
    sched = Scheduler(tel, submit=lambda share, name: shares.append(share), batch_time=0.05)
    job = make_job(bits=14)
    sched.set_job(job)
    d = ocl.OpenCLDevice(info.name, dev, cache=cache, kernel_time=0.005)
    d.start(sched)
    try:
        assert wait_until(lambda: tel.device(d.name).batches >= 6 and len(shares) >= 10)
        d.set_enabled(False)
        assert wait_until(lambda: not d.hashing and not d._jobs)
        time.sleep(0.3)
        st = sched.queue.stats()
        assert st["handed_out"] - st["given_back"] == tel.device(d.name).hashes
        d.set_enabled(True)
        assert wait_until(lambda: tel.device(d.name).hashes > st["handed_out"] - st["given_back"])
    finally:
        d.stop()
    assert tel.snapshot()["hw_errors"] == 0
    for share in shares:
        header = job.header(bytes.fromhex(share.extranonce2), share.nonce_int)
        assert sha256d(header) == share.hash and meets_target(share.hash, job.target)
    assert d.host_wall_s > 0 and 0 <= d.host_cpu_share < 1


def test_a_clean_job_discards_the_batch_pulled_ahead(cl_device, cache):
    from sgm.scheduler import Scheduler
    from sgm.telemetry import Telemetry

    info, dev = cl_device
    tel = Telemetry()
    sched = Scheduler(tel, batch_time=0.05)
    sched.set_job(make_job(bits=30))
    d = ocl.OpenCLDevice(info.name, dev, cache=cache, kernel_time=0.005)
    d.start(sched)
    try:
        assert wait_until(lambda: tel.device(d.name).batches >= 3)
        gen = sched.set_job(make_job(bits=30))
        # the device's next batch is of the new job, not the stale one pulled ahead
        assert wait_until(lambda: d.last_batch_start[0] == gen, timeout=10)
    finally:
        d.stop()


def test_a_candidate_failing_the_cpu_recheck_is_a_hardware_error(cl_device, cache):
    """A nonce the device claims that is no candidate reaches the scheduler, whose hashlib
    re-check counts it as this device's hardware error and shrinks its batches."""
    from sgm.scheduler import Scheduler
    from sgm.telemetry import Telemetry

    info, dev = cl_device
    tel = Telemetry()
    sched = Scheduler(tel, batch_time=0.05)
    sched.set_job(make_job(bits=30))
    d = ocl.OpenCLDevice(info.name, dev, cache=cache, kernel_time=0.005)
    real_collect = d.scanner.collect

    def lying_collect(launch):     # as if the device returned a wrong nonce per batch
        real_collect(launch)
        if not launch.job.bad:
            launch.job.bad.append(launch.job.start)

    d.scanner.collect = lying_collect
    d.start(sched)
    try:
        assert wait_until(lambda: tel.snapshot()["hw_errors"] >= 3)
        assert d.sizer is not None and d.sizer.hw_penalty < 1
    finally:
        d.stop()
    assert tel.device(d.name).hw_errors >= 3


def test_reserve_core_per_gpu_runs_one_cpu_thread_fewer(monkeypatch):
    from sgm.devices import cpu_count
    from sgm.miner import Miner, MinerConfig

    class FakeGpu:
        device_type = "GPU"

    monkeypatch.setattr(ocl, "make_devices", lambda *a, **k: [FakeGpu()])
    n = cpu_count()
    plain = Miner(MinerConfig())._make_devices()
    assert sum(d.kind == "cpu" for d in plain if hasattr(d, "kind")) == n
    reserved = Miner(MinerConfig(reserve_core_per_gpu=True))._make_devices()
    assert sum(isinstance(d, FakeGpu) for d in reserved) == 1
    assert sum(getattr(d, "kind", "") == "cpu" for d in reserved) == max(1, n - 1)
    explicit = Miner(MinerConfig(threads=n, reserve_core_per_gpu=True))._make_devices()
    assert sum(getattr(d, "kind", "") == "cpu" for d in explicit) == n


@pytest.mark.slow
def test_an_opencl_error_mid_run_stops_that_device_alone(cl_device, caplog):
    from sgm.miner import Miner, MinerConfig

    info, _ = cl_device
    miner = Miner(MinerConfig(threads=1, device_kinds=("cpu", info.name), local_jobs=None,
                              local_job_interval=60, local_difficulty_bits=24))
    caplog.set_level(logging.ERROR, logger="sgm.devices.opencl")
    miner.start()
    try:
        gpu = miner.device(info.name)
        cpu = miner.device("cpu0")
        tel = miner.telemetry
        assert wait_until(lambda: tel.device(gpu.name).batches >= 2)
        back_before = miner.scheduler.queue.stats()["given_back"]

        def lost(*_a, **_k):
            raise ocl_runtime.cl.LogicError("clEnqueueNDRangeKernel failed: DEVICE_NOT_AVAILABLE "
                                    "(injected)")

        gpu.scanner._enqueue = lost
        assert wait_until(lambda: gpu.failure is not None and not gpu.enabled, timeout=10)
        hashed = tel.device(gpu.name).hashes
        cpu_before = tel.device(cpu.name).hashes
        assert wait_until(lambda: tel.device(cpu.name).hashes > cpu_before + 1_000_000)
        assert miner.running and cpu.enabled
        assert tel.device(gpu.name).hashes == hashed          # it stays stopped
        assert miner.scheduler.queue.stats()["given_back"] > back_before
        gpu.set_enabled(True)                                  # refused: it stays stopped
        assert not gpu.enabled
        snap = tel.snapshot()
        [g] = [d for d in snap["devices"] if d["name"] == info.name]
        assert g["enabled"] is False
    finally:
        miner.stop()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and
              r.name.startswith("sgm.devices")]
    assert len(errors) == 1 and info.name in errors[0].getMessage()
    assert "DEVICE_NOT_AVAILABLE" in errors[0].getMessage()
    summary = miner.summary()
    [g] = [d for d in summary["devices"] if d["name"] == info.name]
    assert g["enabled"] is False and g["kind"] == "opencl"
    assert summary["hw_errors"] == 0 and summary["rejected"] == 0


# ------------------------------------------------------------------------- command line
def sgm(*args: str, timeout: float = 180, env_extra: dict | None = None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "sgm", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


def test_sgm_scan_device_opencl_agrees_with_the_cpu(cl_device):
    g = GENESIS.hex()
    r = sgm("scan", g, "--start", str(GENESIS_NONCE - 100_000), "--count", "200000",
            "--device", "opencl")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{GENESIS_NONCE}\n"
    target = f"{1 << 248:064x}"
    a = sgm("scan", g, "--start", str((1 << 32) - 5000), "--count", "5000", "--target", target,
            "--device", "opencl")
    b = sgm("scan", g, "--start", str((1 << 32) - 5000), "--count", "5000", "--target", target)
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert a.stdout == b.stdout and a.stdout.count("\n") > 5


def test_sgm_bench_device_opencl_json(cl_device):
    r = sgm("bench", "--device", "opencl", "--json", "--seconds", "0.2", "--repeats", "1")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    ref = out["reference"]
    assert ref["what"] == "hashlib sha256, large buffer" and ref["bytes_per_s"] > 1e6
    assert out["runs"]
    for run in out["runs"]:
        assert run["device"] == "opencl" and run["impl"].startswith("sha256d.cl")
        assert run["threads"] >= 1 and run["hashes_per_s"] > 1e4
        assert run["ratio"] == pytest.approx(run["hashes_per_s"] * 128 / ref["bytes_per_s"])
        assert run["name"].startswith("opencl")


def test_sgm_devices_lists_each_opencl_device(cl_device):
    info, _ = cl_device
    r = sgm("devices", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    [d] = [d for d in out["devices"] if d["name"] == info.name]
    assert d["kind"] == "opencl" and d["type"] in ("GPU", "CPU", "accelerator", "other")
    assert d["platform"] and d["driver_version"] and d["compute_units"] >= 1
    assert d["used_by_default"] == (d["type"] == "GPU")
    text = sgm("devices").stdout
    assert info.name in text and "driver" in text and "compute units" in text


@pytest.mark.slow
def test_sgm_mines_with_cpu_and_opencl_together(cl_device, tmp_path):
    """The embedded pool, --devices cpu,opencl for a few seconds: every share accepted, no
    hardware error, and both kinds of device found shares."""
    out = tmp_path / "summary.json"
    # PoCL on one thread, the native kernel on the other core
    # 13-bit shares: any batch the nice-19 CPU worker finishes holds some, even when busy
    # processes leave it little time; and one job for the whole run, so a batch that a
    # starved worker finishes late still holds shares of a live job (with a new job every
    # few seconds they may all be stale, rightly)
    r = sgm("--devices", "cpu,opencl", "-t", "1", "--time-limit", "6", "--jobs", "1",
            "--duration", "60", "--difficulty", "13", "-q", "--summary-json", str(out),
            env_extra={"POCL_MAX_PTHREAD_COUNT": "1"})
    assert r.returncode == 0, r.stderr
    s = json.loads(out.read_text())
    assert s["accepted"] > 0 and s["rejected"] == 0 and s["hw_errors"] == 0
    kinds = {d["kind"] for d in s["devices"]}
    assert kinds == {"cpu", "opencl"}
    for d in s["devices"]:
        assert d["hashes"] > 0 and d["hw_errors"] == 0
        assert d["accepted"] > 0, (d["name"], s)


# ------------------------------------------------------------------------- tuning
def test_tuning_times_a_grid_keeps_the_fastest_and_a_new_scanner_uses_it(cl_device, tmp_path):
    """On a GPU this runs at first use; here PoCL's CPU device stands in, asked explicitly."""
    from sgm.devices.opencl import tuning

    _, dev = cl_device
    cache = ocl.ProgramCache(tmp_path)
    source = ocl.kernel_path().read_text(encoding="utf-8")
    assert tuning.load(cache, dev, source) is None
    assert "not tuned yet" in tuning.describe(dev, cache)
    pairs = [(1, 64), (2, 64), (1, 99999)]          # the last cannot run: kept as an error
    record = tuning.tune(dev, cache, source, seconds=0.05, pairs=pairs)
    timed = [r for r in record["results"] if "hashes_per_s" in r]
    assert len(timed) == 2 and any("error" in r for r in record["results"])
    best = max(timed, key=lambda r: r["hashes_per_s"])
    assert (record["vector_width"], record["worksize"]) == (best["vector_width"], best["worksize"])
    assert tuning.load(cache, dev, source)["worksize"] == 64
    assert "vector width" in tuning.describe(dev, cache)
    # a scanner that tunes takes the kept geometry (no second timing) and is still exact
    sc = ocl.OpenCLScanner(dev, cache=cache, source=source, tune=True)
    try:
        assert (sc.vector_width, sc.worksize) == (record["vector_width"], record["worksize"])
        assert sc.tuning == tuning.load(cache, dev, source)
        job = sc.scan_range(_native.sha256_midstate(GENESIS[:64]), GENESIS[64:76],
                            GENESIS_NONCE - 5000, 10_000, nbits_to_target(0x1D00FFFF))
    finally:
        sc.close()
    assert job.nonces == [GENESIS_NONCE]


def test_spills_in_nvidia_build_logs_are_read():
    from sgm.devices.opencl.program import spills

    log = ("ptxas info    : Used 40 registers, 384 bytes cmem[0]\n"
           "ptxas info    : Function properties for sgm_sha256d_scan\n"
           "    16 bytes stack frame, 12 bytes spill stores, 8 bytes spill loads\n")
    assert spills(log) == 20
    assert spills("ptxas info : 0 bytes stack frame, 0 bytes spill stores, 0 bytes spill "
                  "loads") == 0
