"""The native SHA-256d core: every kernel agrees with hashlib, finds real block nonces,
honours its edges and refuses bad input with a message that names the argument."""
from __future__ import annotations

import random
import struct
import threading
import time
from collections.abc import Callable

import pytest

from sgm import _native
from tests.conftest import sha256d

IMPLS = _native.available_implementations()
TARGET_MAX = (1 << 256) - 1


def nbits_target(bits: int) -> int:
    exp, mant = bits >> 24, bits & 0x007FFFFF
    return mant << (8 * (exp - 3)) if exp > 3 else mant >> (8 * (3 - exp))


def hash_value(header76: bytes, nonce: int) -> int:
    """sha256d of header76+nonce read as Bitcoin reads it: a little-endian 256-bit number."""
    return int.from_bytes(sha256d(header76 + struct.pack("<I", nonce)), "little")


def reference_hits(header76: bytes, start: int, count: int, target: int) -> list[int]:
    return [n for n in range(start, start + count) if hash_value(header76, n) <= target]


def prepared(header: bytes) -> tuple[bytes, bytes]:
    return _native.sha256_midstate(header[:64]), header[64:76]


def test_the_build_reports_its_kernels_and_a_fastest_default():
    built = _native.all_implementations()
    assert "scalar" in built
    assert IMPLS and set(IMPLS) <= set(built)
    # the default is the kernel measured fastest on this CPU
    default = _native.default_implementation()
    measured = _native.calibration()
    assert default in IMPLS
    if measured:  # empty when SGM_IMPL forced the choice
        assert default == max(measured, key=measured.get)
        assert set(measured) <= set(IMPLS)
    for name in IMPLS:
        assert _native.implementation_lanes(name) >= 1


def test_midstate_matches_the_aux_vectors():
    from tests.conftest import load_vectors

    cases = [v for v in load_vectors("aux_vectors.json")["vectors"] if v["kind"] == "midstate"]
    assert cases
    for v in cases:
        first64 = (
            struct.pack("<I", int(v["version"], 16))
            + b"".join(
                bytes.fromhex(v["prevhash_stratum"])[i : i + 4][::-1] for i in range(0, 32, 4)
            )
            + bytes.fromhex(v["merkle_root_internal"])[:28]
        )
        assert _native.sha256_midstate(first64).hex() == v["expected_midstate_words_le_hex"]


@pytest.mark.parametrize("impl", IMPLS)
def test_random_headers_and_targets_agree_with_hashlib(impl):
    """10,000 random headers, each a short window with a random target: easy targets (above
    difficulty 1, many hits), hard ones, and targets sitting exactly on a hash."""
    rng = random.Random(0x5EED + len(impl))
    lanes = _native.implementation_lanes(impl)
    checked_hits = 0
    for i in range(10_000):
        header = rng.randbytes(80)
        start = rng.randrange(1 << 32)
        count = min(rng.randrange(1, 3 * lanes + 2), (1 << 32) - start)
        kind = i % 4
        if kind == 0:  # easy: a random target with the top 0..8 bits cleared
            target = rng.getrandbits(256) >> rng.randrange(0, 9)
        elif kind == 1:  # hard: difficulty-1-like and beyond
            target = rng.getrandbits(256) >> rng.randrange(32, 80)
        else:  # exactly on (kind 2) or just below (kind 3) the hash of one nonce in the window
            nonce = start + rng.randrange(count)
            target = hash_value(header[:76], nonce) - (kind == 3)
        ms, tail = prepared(header)
        res = _native.scan(ms, tail, start, count, target, impl=impl)
        expect = reference_hits(header[:76], start, count, target)
        assert res.nonces == expect, (i, header.hex(), start, count, hex(target))
        assert res.scanned == count and res.complete and res.impl == impl
        checked_hits += len(expect)
    assert checked_hits > 5_000  # the easy targets really produced hits to compare


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
def test_every_real_block_header_is_found_in_its_window(impl, header_vectors):
    """A 2^20-nonce window around each real block's nonce: at the block's own nBits target the
    scan returns that nonce and nothing else, and its hash is the block hash."""
    for v in header_vectors:
        header = bytes.fromhex(v["header_hex"])
        nonce = v["nonce"]
        start = min(max(0, nonce - (1 << 19)), (1 << 32) - (1 << 20))
        ms, tail = prepared(header)
        res = _native.scan(ms, tail, start, 1 << 20, nbits_target(int(v["nbits"], 16)), impl=impl)
        assert res.nonces == [nonce], v["name"]
        digest = _native.sha256d_final_state(ms, tail, nonce)
        assert digest[::-1].hex() == v["block_hash"]
        assert digest == sha256d(header)


@pytest.mark.parametrize("impl", IMPLS)
def test_edges(impl):
    header = bytes(range(80))
    ms, tail = prepared(header)
    # count 0: nothing scanned, nothing found
    res = _native.scan(ms, tail, 5, 0, TARGET_MAX, impl=impl)
    assert res.nonces == [] and res.scanned == 0 and res.complete
    # a range ending exactly at 2^32 - 1, with a target easy enough to hit
    target = TARGET_MAX >> 3
    res = _native.scan(ms, tail, (1 << 32) - 37, 37, target, impl=impl)
    assert res.nonces == reference_hits(header[:76], (1 << 32) - 37, 37, target)
    assert res.nonces and res.nonces[-1] <= 0xFFFFFFFF and res.scanned == 37
    res = _native.scan(ms, tail, 0xFFFFFFFF, 1, TARGET_MAX, impl=impl)
    assert res.nonces == [0xFFFFFFFF]
    # target 0: no hash is 0, nothing found
    res = _native.scan(ms, tail, 0, 5000, 0, impl=impl)
    assert res.nonces == [] and res.scanned == 5000 and res.complete
    # target 2^256-1: every nonce, up to the result cap, which is reported, and resumable
    res = _native.scan(ms, tail, 1000, 1000, TARGET_MAX, impl=impl, max_results=300)
    assert res.truncated and not res.aborted
    assert res.nonces == list(range(1000, 1300)) and res.scanned == 300
    rest = _native.scan(ms, tail, 1000 + res.scanned, 1000 - res.scanned, TARGET_MAX, impl=impl)
    assert rest.nonces == list(range(1300, 2000)) and rest.complete


def test_the_default_result_cap_is_documented_and_reported():
    ms, tail = prepared(bytes(80))
    res = _native.scan(ms, tail, 0, _native.DEFAULT_MAX_RESULTS + 10, TARGET_MAX)
    assert res.truncated and len(res.nonces) == _native.DEFAULT_MAX_RESULTS
    assert res.scanned == _native.DEFAULT_MAX_RESULTS


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        (dict(midstate=b"\0" * 31), ValueError, "midstate"),
        (dict(midstate="00" * 32), TypeError, "midstate"),
        (dict(tail=b"\0" * 13), ValueError, "tail"),
        (dict(tail=None), TypeError, "tail"),
        (dict(start=-1), ValueError, "start"),
        (dict(start=1 << 32), ValueError, "start"),
        (dict(start=1.5), TypeError, "start"),
        (dict(count=-1), ValueError, "count"),
        (dict(count=(1 << 32) + 1), ValueError, "count"),
        (dict(start=10, count=(1 << 32) - 9), ValueError, "start + count"),
        (dict(target=-1), ValueError, "target"),
        (dict(target=1 << 256), ValueError, "target"),
        (dict(target="ff"), TypeError, "target"),
        (dict(target=True), TypeError, "target"),
        (dict(impl="no-such-kernel"), ValueError, "impl"),
        (dict(impl=3), TypeError, "impl"),
        (dict(max_results=0), ValueError, "max_results"),
    ],
)
def test_bad_arguments_are_refused_by_name(kwargs, exc, name):
    args = dict(midstate=b"\0" * 32, tail=b"\0" * 12, start=0, count=10, target=1)
    args.update(kwargs)
    impl = args.pop("impl", None)
    max_results = args.pop("max_results", _native.DEFAULT_MAX_RESULTS)
    with pytest.raises(exc, match=name.replace("+", r"\+")):
        _native.scan(**args, impl=impl, max_results=max_results)
    with pytest.raises(ValueError, match="block"):
        _native.sha256_midstate(b"\0" * 63)


def test_a_kernel_this_cpu_lacks_is_refused_clearly():
    missing = [n for n in _native.all_implementations() if n not in IMPLS]
    for name in missing:
        with pytest.raises(ValueError, match="not supported by this CPU"):
            _native.scan(b"\0" * 32, b"\0" * 12, 0, 1, 1, impl=name)
    assert set(IMPLS) | set(missing) == set(_native.all_implementations())


def test_require_implementation_names_what_is_available(monkeypatch):
    """One check for every caller (CLI, miner config, CPU device): a usable name comes back,
    None means the default, and the two refusals say which case it is and what to use."""
    assert _native.require_implementation(None) == _native.default_implementation()
    for name in IMPLS:
        assert _native.require_implementation(name) == name
    with pytest.raises(ValueError, match="'nope' is unknown; built: .*available on this CPU: ") as e:
        _native.require_implementation("nope")
    assert all(n in str(e.value) for n in _native.all_implementations())
    with pytest.raises(TypeError, match="str"):
        _native.require_implementation(3)  # type: ignore[arg-type]
    # a built kernel this CPU lacks (simulated: the fastest one is taken off the list)
    lacking, rest = IMPLS[0], IMPLS[1:]
    monkeypatch.setattr(_native, "available_implementations", lambda: list(rest))
    with pytest.raises(ValueError, match=f"{lacking!r} is built but not supported by this CPU; "
                       f"available: {', '.join(rest)}$"):
        _native.require_implementation(lacking)


def _cpu_clock_of(thread: threading.Thread) -> Callable[[], float]:
    """A clock of the CPU seconds `thread` has used: its own thread clock where the platform
    offers one (Linux), else the process's CPU time less the calling thread's."""
    clock_id = getattr(time, "pthread_getcpuclockid", None)
    if clock_id is not None and thread.ident is not None:
        cid = clock_id(thread.ident)
        return lambda: time.clock_gettime(cid)
    return lambda: time.process_time() - time.thread_time()


ABORT_BOUND_S = 5.0  # generous: the kernels look at the flag every ABORT_STRIDE nonces (~1 ms)


@pytest.mark.parametrize("impl", IMPLS)
def test_abort_stops_a_running_scan_early_and_reports_exact_progress(impl):
    """Raised from another thread while a whole-nonce-space scan (minutes of work) is
    running, the flag makes it return within seconds, marked aborted, and its ``scanned``
    is exact: resuming there finds exactly what one uninterrupted scan finds.

    How fast the scan stops is measured by benchmarks/abort_latency.py, not asserted here."""
    ms, tail = prepared(bytes(80))
    target = TARGET_MAX >> 8  # about 1 nonce in 256 is a hit
    flag = _native.AbortFlag()
    entering = threading.Event()
    box: dict = {}

    def run() -> None:
        entering.set()
        try:
            box["res"] = _native.scan(ms, tail, 0, 1 << 32, target, impl=impl, abort=flag,
                                      max_results=_native.MAX_RESULTS_LIMIT)
        except BaseException as exc:  # reported by the assertions below
            box["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    assert entering.wait(30)
    # Raise the flag only once the worker is inside the scan: it has burnt 50 ms of CPU
    # since announcing the call, which nothing but the kernel can do (argument checks take
    # microseconds; the main thread only sleeps here).
    worker_cpu = _cpu_clock_of(worker)
    cpu0 = worker_cpu()
    give_up = time.monotonic() + 60
    while worker.is_alive() and worker_cpu() - cpu0 < 0.05:
        assert time.monotonic() < give_up, "the scan never got CPU time"
        time.sleep(0.002)
    flag.set()
    worker.join(ABORT_BOUND_S)
    assert not worker.is_alive(), f"scan still running {ABORT_BOUND_S} s after the abort"
    assert "error" not in box, box.get("error")
    part = box["res"]
    assert part.aborted and not part.truncated and not part.complete
    # 0 < scanned: the flag went up after the scan began (a flag already up at the start
    # stops it before the first nonce); < 2^32: it stopped long before the end
    assert 0 < part.scanned < 1 << 32
    assert all(n < part.scanned for n in part.nonces)
    # exact progress: the aborted part plus a resumed scan from `scanned` (same flag,
    # cleared) together equal one uninterrupted scan over the same range
    n = part.scanned + (1 << 16)
    full = _native.scan(ms, tail, 0, n, target, impl=impl, max_results=_native.MAX_RESULTS_LIMIT)
    flag.clear()
    rest = _native.scan(ms, tail, part.scanned, n - part.scanned, target, impl=impl, abort=flag)
    assert full.complete and rest.complete
    assert part.nonces + rest.nonces == full.nonces
    assert len(part.nonces) >= 50 and len(rest.nonces) >= 50  # hits on both sides of the cut


def test_the_gil_is_released_while_a_scan_runs():
    """Another Python thread keeps running while one long native scan is in progress."""
    ms, tail = prepared(bytes(80))
    ticks = []
    stop = threading.Event()

    def python_work():
        while not stop.is_set():
            ticks.append(time.perf_counter())

    scan_box = {}

    def scanner():
        t0 = time.perf_counter()
        _native.scan(ms, tail, 0, 1 << 22, 0)
        scan_box["span"] = (t0, time.perf_counter())

    other = threading.Thread(target=python_work)
    other.start()
    worker = threading.Thread(target=scanner)
    worker.start()
    worker.join()
    stop.set()
    other.join()
    t0, t1 = scan_box["span"]
    during = [t for t in ticks if t0 < t < t1]
    # a scan holding the GIL would freeze the other thread for its whole length
    assert during and (during[-1] - during[0]) > 0.5 * (t1 - t0)
