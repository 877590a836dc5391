"""sgm.jobs: real Stratum jobs must rebuild the exact headers and hashes of accepted shares."""
import struct
import threading
from dataclasses import replace

import pytest

from sgm import _native
from sgm._native import _queue
from sgm.bitcoin import merkle_root_from_branch
from sgm.hashing import DIFF1, difficulty_to_target, display_hash, hash_difficulty, nbits_to_target, sha256d
from sgm.jobs import MAX_MIDSTATES, Job, JobError, MidstateCache, build_header, make_share, word_swap
from tests.conftest import load_vectors as load, vectors_dir  # noqa: E402,F401

SHARES = load("stratum_shares.json")["shares"]
JOB_SHARES = [s for s in SHARES if s["notify"]["coinb1"] is not None]
AUX = load("aux_vectors.json")["vectors"]


def share_target(s: dict) -> int:
    if s.get("check_difficulty") is not None:
        return difficulty_to_target(s["check_difficulty"])
    return nbits_to_target(int(s["notify"]["nbits"], 16))


def job_of(s: dict) -> Job:
    n = s["notify"]
    params = [n["job_id"] or "vector", n["prevhash"], n["coinb1"], n["coinb2"], n["merkle_branch"],
              n["version"], n["nbits"], n["ntime"], bool(n["clean_jobs"])]
    mask = int(s["version_mask"], 16) if s.get("version_mask") else 0
    job = Job.from_notify(params, extranonce1=s["subscribe_result"]["extranonce1"],
                          extranonce2_size=s["subscribe_result"]["extranonce2_size"],
                          target=share_target(s), version_mask=mask)
    # the job's work space starts at the recorded share's extranonce2 (the queue enumerates
    # at most MAX_MIDSTATES midstates from extranonce2_start on)
    en2 = s["submit"]["extranonce2"]
    return replace(job, extranonce2_start=int(en2, 16)) if en2 else job


def submit_fields(s: dict) -> tuple[bytes, int, int | None]:
    sub = s["submit"]
    vb = int(sub["version_bits"], 16) if sub["version_bits"] else None
    return bytes.fromhex(sub["extranonce2"]), int(sub["nonce"], 16), vb


def test_vectors_are_present():
    assert len(JOB_SHARES) >= 5
    assert any(s["submit"]["version_bits"] for s in JOB_SHARES)


@pytest.mark.parametrize("s", JOB_SHARES, ids=lambda s: s["id"])
def test_share_vector_rebuilds_merkle_root_header_and_hash(s):
    job = job_of(s)
    en2, nonce, vb = submit_fields(s)
    assert job.merkle_root(en2).hex() == s["expected_merkle_root_internal"]
    assert f"{job.rolled_version(vb):08x}" == s["expected_rolled_version"]
    header = job.header(en2, nonce, vb)
    assert header.hex() == s["expected_header_hex"]
    digest = sha256d(header)
    assert display_hash(digest) == s["expected_hash"]
    assert hash_difficulty(digest) == s["expected_hash_difficulty"]
    assert int(s["expected_hash"], 16) <= job.target
    # neighbouring nonces do not meet the share target
    for other in (nonce - 1, nonce + 1):
        assert int.from_bytes(sha256d(job.header(en2, other & 0xFFFFFFFF, vb)), "little") > job.target


def test_coinbase_txid_matches_the_pool_log():
    s = next(s for s in JOB_SHARES if "coinbase_txid_internal_bytes_decimal" in s.get("source_asserted", {}))
    job = job_of(s)
    en2, _, _ = submit_fields(s)
    txid = sha256d(job.coinbase(en2))
    assert list(txid) == s["source_asserted"]["coinbase_txid_internal_bytes_decimal"]


def test_header_fields_vector_without_coinbase():
    s = next(s for s in SHARES if s["notify"]["coinb1"] is None)
    n, sub = s["notify"], s["submit"]
    hdr = build_header(int(n["version"], 16), word_swap(bytes.fromhex(n["prevhash"])),
                       bytes.fromhex(s["merkle_root_internal"]), int(sub["ntime"], 16),
                       int(n["nbits"], 16), int(sub["nonce"], 16))
    assert hdr.hex() == s["expected_header_hex"]
    assert display_hash(sha256d(hdr)) == s["expected_hash"]
    # the same header through a Job given the merkle root
    job = Job.from_notify(["x", n["prevhash"], "00", "00", [], n["version"], n["nbits"], n["ntime"], True],
                          extranonce1="", extranonce2_size=0, target=DIFF1)
    assert job.header(b"", int(sub["nonce"], 16), merkle_root=bytes.fromhex(s["merkle_root_internal"])) == hdr


@pytest.mark.parametrize("s", JOB_SHARES, ids=lambda s: s["id"])
def test_prepared_work_and_native_scan_find_the_recorded_nonce(s):
    job = job_of(s)
    en2, nonce, vb = submit_fields(s)
    mid = job.midstate_id_of(en2, vb)
    assert job.work_params(mid) == (en2, vb if vb is not None else job.version & job.version_mask)
    prepared = MidstateCache().get(job, mid)
    header = job.header(en2, nonce, vb)
    assert prepared.header_prefix == header[:76]
    assert prepared.tail == header[64:76]
    start = max(0, nonce - 500)
    result = _native.scan(prepared.midstate, prepared.tail, start, 1000, job.target)
    assert result.nonces == [nonce]
    share = make_share(job, prepared, nonce)
    sub = s["submit"]
    assert share.meets_target
    assert (share.job_id, share.extranonce2, share.ntime, share.nonce) == (
        job.job_id, sub["extranonce2"], sub["ntime"], sub["nonce"])
    if sub["version_bits"]:
        assert share.version_bits == sub["version_bits"]
    assert share.hash_hex == s["expected_hash"]
    assert share.difficulty == s["expected_hash_difficulty"]
    if sub["worker"] is not None and sub["job_id"] is not None:
        assert share.submit_params(sub["worker"])[1:5] == [
            sub["job_id"], sub["extranonce2"], sub["ntime"], sub["nonce"]]


@pytest.mark.parametrize("v", [v for v in AUX if v["kind"] == "merkle_root"], ids=lambda v: v["id"])
def test_aux_merkle_roots_through_a_job(v):
    if "coinbase_hex" in v:
        cb = v["coinbase_hex"]
        cut = len(cb) // 2 & ~1
        coinb1, coinb2, en1, en2 = cb[:cut], cb[cut:], "", b""
    else:
        coinb1, coinb2, en1, en2 = v["coinb1"], v["coinb2"], v["extranonce1"], bytes.fromhex(v["extranonce2"])
    job = Job.from_notify(["aux", "00" * 32, coinb1, coinb2, v["merkle_branch"], "20000000", "1d00ffff",
                           "00000000", False], extranonce1=en1, extranonce2_size=len(en2), target=DIFF1)
    assert job.merkle_root(en2).hex() == v["expected_merkle_root_internal"]
    cb_bytes = bytes.fromhex(coinb1) + bytes.fromhex(en1) + en2 + bytes.fromhex(coinb2)
    branch = [bytes.fromhex(b) for b in v["merkle_branch"]]
    assert merkle_root_from_branch(sha256d(cb_bytes), branch).hex() == v["expected_merkle_root_internal"]


@pytest.mark.parametrize("v", [v for v in AUX if v["kind"] == "midstate"], ids=lambda v: v["id"])
def test_aux_midstate_through_a_job_header(v):
    job = Job.from_notify(["aux", v["prevhash_stratum"], "00", "00", [], v["version"], v["nbits"], v["ntime"],
                           True], extranonce1="", extranonce2_size=0, target=DIFF1)
    header = job.header(b"", 0, merkle_root=bytes.fromhex(v["merkle_root_internal"]))
    assert _native.sha256_midstate(header[:64]).hex() == v["expected_midstate_words_le_hex"]


# ----------------------------------------------------------------------------- enumeration
PREV = bytes(range(32)).hex()


def simple_job(mask: int = 0x1FFFE000, en2_size: int = 1, version: str = "20000000") -> Job:
    return Job.from_notify(["j1", PREV, "01000000", "ffffffff", ["22" * 32], version, "1d00ffff",
                            "65000000", True], extranonce1="aabbccdd", extranonce2_size=en2_size,
                           target=DIFF1, version_mask=mask)


def test_work_params_is_a_bijection_on_a_range():
    job = simple_job(mask=0x00007000, en2_size=2)  # 3 mask bits → 8 version variants
    assert job.n_version_variants == 8
    assert job.n_midstates == 65536 * 8
    ids = range(0, 5000)
    seen = {}
    for mid in ids:
        en2, vb = job.work_params(mid)
        assert len(en2) == 2
        assert vb & ~job.version_mask == 0
        assert job.midstate_id_of(en2, vb) == mid
        seen[(en2, vb)] = mid
    assert len(seen) == len(ids)
    # version variants vary fastest: ids 0..7 share extranonce2, id 8 moves it on
    assert {job.work_params(i)[0] for i in range(8)} == {b"\x00\x00"}
    assert job.work_params(8)[0] == b"\x00\x01"
    assert len({job.work_params(i)[1] for i in range(8)}) == 8
    # distinct ids give distinct headers
    assert len({job.header_for(i)[:76] for i in range(64)}) == 64


def test_full_16_bit_mask_and_capping():
    job = simple_job(mask=0x1FFFE000, en2_size=4)
    assert job.n_version_variants == 1 << 16
    assert job.n_midstates == MAX_MIDSTATES          # (2**32 x 2**16 ids: capped)
    vbs = {job.work_params(i)[1] for i in range(1 << 16)}
    assert len(vbs) == 1 << 16 and all(vb & ~0x1FFFE000 == 0 for vb in vbs)
    wide = simple_job(mask=0xFFFFFFFF, en2_size=1, version="00000000")
    assert wide.n_version_variants == 1 << 16  # only the 16 low-order mask bits roll
    assert all(wide.work_params(i)[1] >> 16 == wide.version >> 16 for i in range(0, 1 << 16, 977))
    big = simple_job(en2_size=16)
    # one value, one place: what the native queue enumerates
    assert big.n_midstates == MAX_MIDSTATES == _queue.MAX_MIDSTATES == (1 << 32) - 1
    assert big.work_params(MAX_MIDSTATES - 1)[0] == ((MAX_MIDSTATES - 1) >> 16).to_bytes(16, "big")
    with pytest.raises(ValueError):
        big.work_params(MAX_MIDSTATES)


def test_variant_zero_is_the_jobs_own_version():
    job = simple_job(mask=0x1FFFE000, version="20000000")
    en2, vb = job.work_params(0)
    assert vb == 0 and job.rolled_version(vb) == 0x20000000
    assert job.header(en2, 7, vb) == job.header(en2, 7)
    assert len({job.rolled_version(job.work_params(i)[1]) for i in range(256)}) == 256


@pytest.mark.parametrize("version", ["20002000", "30000000"])
def test_a_job_version_with_bits_inside_the_mask_is_mined_as_is(version):
    """Pools read rolled bits as (job & ~mask) | bits, job | bits or job ^ bits; with a job
    bit inside the mask no submitted value reads the same everywhere, so such a job does not
    roll: every header carries the job's own version and no sixth submit parameter goes out."""
    job = simple_job(mask=0x1FFFE000, version=version)
    assert not job.rolls_version and job.n_version_variants == 1
    assert job.n_midstates == 256                   # extranonce2 alone
    en2, vb = job.work_params(5)
    assert vb == 0 and job.rolled_version(vb) == int(version, 16)
    assert job.header(en2, 7, vb)[:4] == int(version, 16).to_bytes(4, "little")
    with pytest.raises(ValueError):
        job.rolled_version(0x2000)
    share = make_share(job, MidstateCache().get(job, 5), 7)
    assert share.version_bits is None and len(share.submit_params("w")) == 5


def test_a_job_can_start_its_work_space_past_used_extranonce2_values():
    job = simple_job(mask=0x00006000, en2_size=1)
    later = replace(job, extranonce2_start=10)
    assert later.n_midstates == (256 - 10) * 4
    assert later.work_params(0) == (bytes([10]), 0)
    assert later.work_params(5) == (bytes([11]), job.work_params(1)[1])
    assert later.midstate_id_of(bytes([11]), job.work_params(1)[1]) == 5
    with pytest.raises(ValueError):
        later.midstate_id_of(bytes([9]))
    with pytest.raises(JobError):
        replace(job, extranonce2_start=256)


def test_no_mask_and_no_extranonce2():
    job = simple_job(mask=0, en2_size=0)
    assert job.n_version_variants == 1 and job.n_midstates == 1
    assert job.work_params(0) == (b"", 0)
    with pytest.raises(ValueError):
        job.work_params(1)
    with pytest.raises(ValueError):
        job.work_params(-1)


def test_version_bits_outside_mask_are_refused():
    job = simple_job(mask=0x1FFFE000)
    with pytest.raises(ValueError, match="outside mask"):
        job.header(b"\x00", 0, 0x00001000)


# ----------------------------------------------------------------------------- validation
GOOD = ["j1", PREV, "01000000", "ffffffff", ["22" * 32], "20000000", "1d00ffff", "65000000", True]


@pytest.mark.parametrize("index, value, field", [
    (0, "", "job_id"), (0, 17, "job_id"),
    (1, "11" * 31, "prevhash"), (1, "zz" * 32, "prevhash"), (1, None, "prevhash"),
    (2, "", "coinb1"), (2, "0g", "coinb1"), (2, "abc", "coinb1"),
    (3, "", "coinb2"), (3, 5, "coinb2"),
    (4, "22" * 32, "merkle_branch"), (4, ["22" * 31], r"merkle_branch\[0\]"),
    (4, ["22" * 32, "x"], r"merkle_branch\[1\]"),
    (5, "2000000", "version"), (5, "2000000g", "version"),
    (6, "1d00ffff0", "nbits"), (6, 0x1D00FFFF, "nbits"),
    (7, "", "ntime"),
    (8, "yes", "clean_jobs"),
])
def test_bad_notify_field_is_refused_by_name(index, value, field):
    params = list(GOOD)
    params[index] = value
    with pytest.raises(JobError, match=field):
        Job.from_notify(params, extranonce1="aabbccdd", extranonce2_size=4, target=DIFF1)


@pytest.mark.parametrize("kw, field", [
    (dict(target=0), "target"), (dict(target=1 << 256), "target"), (dict(target=-1), "target"),
    (dict(extranonce2_size=17), "extranonce2_size"), (dict(extranonce2_size=-1), "extranonce2_size"),
    (dict(extranonce1="abc"), "extranonce1"), (dict(version_mask=1 << 32), "version_mask"),
])
def test_bad_session_values_are_refused_by_name(kw, field):
    args = dict(extranonce1="aabbccdd", extranonce2_size=4, target=DIFF1)
    args.update(kw)
    with pytest.raises(JobError, match=field):
        Job.from_notify(GOOD, **args)


@pytest.mark.parametrize("params", [[], GOOD[:8], "not a list", None])
def test_empty_or_short_notify_is_refused(params):
    with pytest.raises(JobError, match="notify params"):
        Job.from_notify(params, extranonce1="aabbccdd", extranonce2_size=4, target=DIFF1)


def test_job_error_is_a_value_error():
    assert issubclass(JobError, ValueError)


# ----------------------------------------------------------------------------- cache & shares
def test_midstate_cache_is_a_bounded_lru():
    job = simple_job()
    cache = MidstateCache(maxsize=4)
    first = cache.get(job, 0)
    assert cache.get(job, 0) is first
    for mid in range(1, 5):
        cache.get(job, mid)
    assert len(cache) == 4
    assert ("j1", 0) not in cache and ("j1", 4) in cache
    assert first.midstate == _native.sha256_midstate(job.header_for(0)[:64])
    cache.clear()
    assert len(cache) == 0


def test_midstate_cache_never_serves_a_reused_job_id_with_other_content():
    job = simple_job()
    other = Job.from_notify(GOOD, extranonce1="01020304", extranonce2_size=1, target=DIFF1,
                            version_mask=0x1FFFE000)
    assert other.job_id == job.job_id
    cache = MidstateCache()
    a, b = cache.get(job, 3), cache.get(other, 3)
    assert a.midstate != b.midstate
    assert b.header_prefix == other.header_for(3)[:76]
    assert cache.drop_job("j1") == 1


def test_midstate_cache_is_thread_safe():
    job = simple_job()
    cache = MidstateCache(maxsize=64)
    errors = []

    def worker(seed: int) -> None:
        for i in range(300):
            mid = (i * 7 + seed) % 100
            pw = cache.get(job, mid)
            if pw.midstate_id != mid or pw.header_prefix != job.header_for(mid)[:76]:
                errors.append(mid)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(cache) <= 64


def test_make_share_flags_a_nonce_that_misses_the_target():
    s = JOB_SHARES[0]
    job = job_of(s)
    en2, nonce, vb = submit_fields(s)
    prepared = MidstateCache().get(job, job.midstate_id_of(en2, vb))
    bad = make_share(job, prepared, nonce + 1)
    assert not bad.meets_target
    assert bad.hash == sha256d(job.header(en2, nonce + 1, vb))
    assert bad.nonce == f"{nonce + 1:08x}"
    with pytest.raises(ValueError):
        make_share(simple_job(), prepared, nonce)


def test_header_layout_is_little_endian_u32_fields():
    job = simple_job(mask=0)
    hdr = job.header(b"\x05", 0xA1B2C3D4)
    assert len(hdr) == 80
    assert struct.unpack("<I", hdr[:4])[0] == 0x20000000
    assert hdr[4:36] == bytes([3, 2, 1, 0, 7, 6, 5, 4]) + word_swap(bytes(range(8, 32)))
    assert struct.unpack("<III", hdr[68:80]) == (0x65000000, 0x1D00FFFF, 0xA1B2C3D4)
