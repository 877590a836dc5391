"""The scheduler: every candidate is re-checked with hashlib, stale and duplicate shares
never leave, hardware errors are counted and shrink a device's batches, a clean job
reaches every device at once, and batch sizes follow each device's measured speed."""
from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from sgm import _native
from sgm.devices.base import BatchResult, SyncDevice
from sgm.devices.cpu import CpuDevice
from sgm.hashing import bits_to_target, meets_target, sha256d
from sgm.jobs import Job
from sgm.scheduler import MAX_VALID_GENERATIONS, BatchSizer, Scheduler
from sgm.telemetry import Telemetry
from sgm.work import Batch
from tests.conftest import wait_until

NOTIFY = [
    "1", "9973803c689d114202d8fa6e7a812464ec5968614898bef00000000800000000",
    "02000000010000000000000000000000000000000000000000000000000000000000000000ffffffff25036e052500",
    "ffffffff02dbd4250000000000434104466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1b"
    "ae3f276728176c3c6431f8eeda4538dc37c865e2784f3a9e77d044f33e407797e1278aac00000000",
    [], "20000000", "1929ee8d", "6422ca0e", True,
]


def make_job(job_id: str = "1", bits: int = 12, clean: bool = True, mask: int = 0) -> Job:
    params = list(NOTIFY)
    params[0] = job_id
    params[8] = clean
    return Job.from_notify(params, extranonce1="00000001", extranonce2_size=4,
                           target=bits_to_target(bits), version_mask=mask)


class Collector:
    def __init__(self):
        self.shares = []
        self.lock = threading.Lock()

    def __call__(self, share, device):
        with self.lock:
            self.shares.append((share, device))


def test_cpu_devices_find_shares_that_hashlib_confirms():
    tel = Telemetry()
    got = Collector()
    sched = Scheduler(tel, submit=got, batch_time=0.05)
    job = make_job(bits=14)
    sched.set_job(job)
    devs = [CpuDevice(0), CpuDevice(1)]
    for d in devs:
        d.start(sched)
    try:
        assert wait_until(lambda: len(got.shares) >= 20
                         and all(tel.device(d.name).batches >= 5 for d in devs))
        snap = tel.snapshot()  # while both are still hashing
    finally:
        for d in devs:
            d.stop()
    for share, device in got.shares:
        assert device in ("cpu0", "cpu1")
        header = job.header(bytes.fromhex(share.extranonce2), share.nonce_int)
        assert sha256d(header) == share.hash and meets_target(share.hash, job.target)
    keys = {(s.extranonce2, s.nonce) for s, _ in got.shares}
    assert len(keys) == len(got.shares)  # no duplicates
    assert snap["hw_errors"] == 0 and snap["hashes"] > 0
    assert {d["name"] for d in snap["devices"]} == {"cpu0", "cpu1"}
    # both devices were kept busy: utilisation is measured and reported per device
    assert all(d["utilisation"] > 0.5 for d in snap["devices"]), snap["devices"]


class LyingDevice(SyncDevice):
    """A device whose every batch claims a nonce that does not meet the target."""

    kind = "cpu"

    def calibrate(self, seconds=0.05):
        return 1e6

    def run_batch(self, batch: Batch) -> BatchResult:
        for n in range(batch.start, batch.start + batch.count):
            if not meets_target(sha256d(batch.work.header(n)), batch.target):
                time.sleep(0.01)
                return BatchResult(batch.count, [n])
        return BatchResult(batch.count, [])


def test_a_result_that_fails_the_cpu_recheck_is_a_hardware_error_and_never_submitted():
    tel = Telemetry()
    got = Collector()
    sched = Scheduler(tel, submit=got, batch_time=0.05)
    sched.set_job(make_job(bits=30))
    dev = LyingDevice("liar0", "test")
    dev.start(sched)
    try:
        assert wait_until(lambda: tel.device("liar0").hw_errors >= 3)
        first = dev.sizer.size()
    finally:
        dev.stop()
    assert got.shares == []
    assert tel.snapshot()["hw_errors"] >= 3
    assert dev.sizer.hw_penalty < 1.0 and first < BatchSizer(0.05, 1e6).size()


def test_shares_of_a_job_replaced_by_a_clean_job_are_stale_and_not_submitted():
    tel = Telemetry()
    got = Collector()
    sched = Scheduler(tel, submit=got)
    job1 = make_job("1", bits=8)
    sched.set_job(job1)
    batch = sched.pull(1 << 16)
    assert batch is not None and batch.job is job1
    prep = batch.work
    hits = _native.scan(prep.midstate, prep.tail, batch.start, batch.count, job1.target).nonces
    assert hits
    sched.set_job(make_job("2", bits=8, clean=True))
    sched.handle_nonces("cpu0", batch, hits)
    assert got.shares == []
    assert tel.device("cpu0").stale == len(hits)


def test_a_non_clean_job_keeps_older_shares_valid_and_duplicates_are_suppressed():
    tel = Telemetry()
    got = Collector()
    sched = Scheduler(tel, submit=got)
    job1 = make_job("1", bits=8)
    sched.set_job(job1)
    batch = sched.pull(1 << 14)
    prep = batch.work
    hits = _native.scan(prep.midstate, prep.tail, batch.start, batch.count, job1.target).nonces
    sched.set_job(make_job("2", bits=8, clean=False))
    sched.handle_nonces("cpu0", batch, hits)
    sched.handle_nonces("cpu0", batch, hits)  # the same nonces again
    assert [s.nonce_int for s, _ in got.shares] == hits
    assert tel.device("cpu0").duplicates_suppressed == len(hits)


def test_a_clean_job_aborts_running_scans_and_reaches_every_device():
    """Behaviour, not latency (that is benchmarks/job_switch.py): both devices are inside
    long scans; the clean job aborts them (their unscanned rest is handed back under the
    old generation and dropped as stale) and both go on with the new job."""
    tel = Telemetry()
    sched = Scheduler(tel, batch_time=5.0)  # batches far longer than the test waits
    sched.set_job(make_job("1", bits=40))
    devs = [CpuDevice(0), CpuDevice(1)]
    for d in devs:
        d.start(sched)
    try:
        assert wait_until(lambda: all(d.hashing for d in devs))
        assert sched.queue.stale_dropped == 0
        gen = sched.set_job(make_job("2", bits=40))
        assert wait_until(lambda: all(d.last_batch_start[0] == gen for d in devs), timeout=30)
        assert sched.queue.stale_dropped == 2   # each aborted scan handed back its rest
    finally:
        for d in devs:
            d.stop()


def test_batch_sizes_follow_the_measured_speed():
    sizer = BatchSizer(batch_time=0.1, initial_rate=1e6)
    assert sizer.size() == pytest.approx(1e5, rel=0.05)
    for _ in range(60):
        sizer.observe(2_000_000, 0.1)   # the device turns out to do 20 MH/s
    assert sizer.size() == pytest.approx(2e6, rel=0.05)
    sizer.hw_error()
    assert sizer.size() == pytest.approx(1e6, rel=0.05)


def test_cpu_batches_are_sized_from_the_device_s_own_measured_speed():
    tel = Telemetry()
    sched = Scheduler(tel, batch_time=0.05)
    sched.set_job(make_job("1", bits=40))
    dev = CpuDevice(0)
    dev.score = 1e3          # a start-up estimate far too low: the smallest batches
    dev.start(sched)
    try:
        assert wait_until(lambda: tel.device("cpu0").batch_size >= 8 * 4096, timeout=30)
    finally:
        dev.stop()
    # the estimate followed what the device really did: far above the 1 kH/s it started
    # from on any CPU, even a nice-19 worker starved by busy processes (~400 kH/s here)
    assert dev.sizer.rate > 50 * 1e3
    assert dev.sizer.size() == pytest.approx(dev.sizer.rate * 0.05, rel=0.1, abs=4096)


def test_bad_scheduler_settings_are_refused():
    with pytest.raises(ValueError, match="batch_time"):
        Scheduler(Telemetry(), batch_time=0)


class CrashingDevice(SyncDevice):
    kind = "cpu"

    def calibrate(self, seconds=0.05):
        return 1e6

    def run_batch(self, batch):
        raise RuntimeError("the device fell over")


def test_a_failing_device_is_stopped_its_work_handed_back_and_others_continue(caplog):
    tel = Telemetry()
    sched = Scheduler(tel, batch_time=0.05)
    sched.set_job(make_job("1", bits=40))
    bad, good = CrashingDevice("bad0", "test"), CpuDevice(0)
    bad.start(sched)
    good.start(sched)
    try:
        assert wait_until(lambda: not bad.enabled)
        before = tel.device("cpu0").hashes
        assert wait_until(lambda: tel.device("cpu0").hashes > before)
        assert sched.queue.given_back > 0  # the failed batch went back to the queue
    finally:
        bad.stop()
        good.stop()
    assert "the device fell over" in caplog.text and "bad0" in caplog.text


def test_an_exhausted_job_is_reported_once_and_devices_wait(caplog):
    """A job without extranonce2 space or version rolling has 2^32 nonces; once they are all
    handed out, pulls wait (no busy loop, no crash) and the user is told once."""
    params = list(NOTIFY)
    job = Job.from_notify(params, extranonce1="00000001", extranonce2_size=0,
                          target=bits_to_target(40))
    assert job.n_midstates == 1
    sched = Scheduler(Telemetry())
    sched.set_job(job)
    assert sched.pull(1 << 32).count == 1 << 32
    t0 = time.monotonic()
    assert sched.pull(1 << 20, timeout=0.2) is None
    assert sched.pull(1 << 20, timeout=0.2) is None
    assert time.monotonic() - t0 >= 0.35  # waited rather than spun
    assert caplog.text.count("every nonce of its work space is handed out") == 1


def test_at_an_absurdly_easy_target_a_batch_stops_at_the_candidate_cap_and_hands_back_the_rest():
    from sgm.devices.cpu import MAX_CANDIDATES_PER_BATCH

    tel = Telemetry()
    got = Collector()
    sched = Scheduler(tel, submit=got)
    sched.set_job(make_job("1", bits=1))      # every other nonce is a share
    dev = CpuDevice(0)
    batch = sched.pull(1 << 20)
    result = dev.run_batch(batch)
    assert len(result.nonces) == MAX_CANDIDATES_PER_BATCH
    assert 0 < result.scanned < batch.count
    sched.give_back(batch, result.scanned)
    nxt = sched.pull(1 << 20)                 # the unscanned rest comes out next
    assert nxt.start == batch.start + result.scanned


# ------------------------------------------------------------------ rules changing mid-job
def test_a_retarget_keeps_the_queue_cursor_and_checks_batches_in_flight_against_the_new_target():
    tel = Telemetry()
    got = Collector()
    sched = Scheduler(tel, submit=got)
    job = make_job("1", bits=6)
    gen = sched.set_job(job)
    first = sched.pull(1 << 14)                  # in flight under the old, easy target
    cursor = sched.queue.stats()["cursor"]
    harder = bits_to_target(10)
    sched.update_job(job.with_target(harder))
    assert sched.queue.stats()["cursor"] == cursor and sched.queue.generation == gen
    assert sched.current_target == harder
    nxt = sched.pull(1 << 14)                    # the next batch carries on, at the new target
    assert (nxt.generation, nxt.start) == (gen, first.start + first.count)
    assert nxt.target == harder
    hits = _native.scan(first.work.midstate, first.work.tail, first.start, first.count,
                        first.target).nonces
    strong = [n for n in hits if meets_target(sha256d(first.work.header(n)), harder)]
    assert len(hits) > len(strong) > 0           # some finds no longer make the cut
    assert sched.handle_nonces("cpu0", first, hits) == 0      # not hardware errors either
    assert [s.nonce_int for s, _ in got.shares] == strong
    # an easier target never loosens the work in progress
    sched.update_job(job.with_target(bits_to_target(4)))
    assert sched.current_target == harder


def test_a_narrower_version_mask_applies_from_the_next_batch_after_the_used_extranonce2():
    tel = Telemetry()
    got = Collector()
    sched = Scheduler(tel, submit=got)
    job = make_job("1", bits=4, mask=0x1FFFE000)
    assert job.rolls_version and job.n_version_variants == 1 << 16
    sched.set_job(job)
    batches = [sched.pull(1 << 32) for _ in range(3)]      # variants 0, 1, 2 of extranonce2 0
    rolled = batches[2]
    assert rolled.work.version_bits != 0 and rolled.work.extranonce2 == bytes(4)
    narrow = 0x1FFF8000                                     # bits 13 and 14 taken away
    sched.update_job(replace(job, version_mask=narrow))
    nxt = sched.pull(1 << 32)
    assert nxt.job.version_mask == narrow
    assert nxt.work.extranonce2 == (1).to_bytes(4, "big")   # extranonce2 0 is used up
    assert nxt.work.version_bits & ~narrow == 0
    # a find of the old enumeration whose rolled bits the new mask forbids is not submitted
    outside = rolled.work.version_bits & ~narrow != 0
    hits = _native.scan(rolled.work.midstate, rolled.work.tail, 0, 1 << 12, rolled.target).nonces
    assert hits and outside
    sched.handle_nonces("cpu0", rolled, hits)
    assert got.shares == []
    # the same from the new enumeration: every share rolls only allowed bits
    hits = _native.scan(nxt.work.midstate, nxt.work.tail, 0, 1 << 12, nxt.target).nonces
    sched.handle_nonces("cpu0", nxt, hits)
    assert len(got.shares) == len(hits) > 0
    assert all(int(s.version_bits, 16) & ~narrow == 0 for s, _ in got.shares)


def test_a_job_whose_version_has_bits_inside_the_mask_is_mined_without_version_rolling():
    params = list(NOTIFY)
    params[5] = "30000000"              # Bitcoin Core regtest: bit 28 lies inside the mask
    job = Job.from_notify(params, extranonce1="00000001", extranonce2_size=4,
                          target=bits_to_target(4), version_mask=0x1FFFE000)
    assert not job.rolls_version and job.n_version_variants == 1
    sched = Scheduler(Telemetry(), submit=(got := Collector()))
    sched.set_job(job)
    batch = sched.pull(1 << 12)
    assert batch.work.header(0)[:4] == bytes.fromhex("00000030")   # the job's own version
    hits = _native.scan(batch.work.midstate, batch.work.tail, 0, 1 << 12, batch.target).nonces
    sched.handle_nonces("cpu0", batch, hits)
    assert got.shares and all(s.version_bits is None for s, _ in got.shares)
    assert all(len(s.submit_params("w")) == 5 for s, _ in got.shares)   # no sixth parameter


def test_old_non_clean_jobs_stay_valid_only_up_to_a_bound():
    tel = Telemetry()
    sched = Scheduler(tel, submit=(got := Collector()))
    first = make_job("0", bits=4)
    sched.set_job(first)
    old = sched.pull(1 << 12)
    for i in range(1, MAX_VALID_GENERATIONS + 1):
        sched.set_job(make_job(str(i), bits=4, clean=False))
    assert len(sched._valid) == MAX_VALID_GENERATIONS
    hits = _native.scan(old.work.midstate, old.work.tail, 0, 1 << 12, old.target).nonces
    sched.handle_nonces("cpu0", old, hits)
    assert got.shares == [] and tel.device("cpu0").stale == len(hits)


def test_a_job_that_cannot_be_prepared_leaves_the_scheduler_as_it_was(monkeypatch):
    sched = Scheduler(Telemetry())
    job1 = make_job("1", bits=40)
    gen1 = sched.set_job(job1)

    def broken(job, midstate_id):
        raise RuntimeError("no midstate")

    monkeypatch.setattr(sched.cache, "get", broken)
    with pytest.raises(RuntimeError):
        sched.set_job(make_job("2", bits=40))
    monkeypatch.undo()
    assert sched.current_job is job1 and sched.queue.generation == gen1
    batch = sched.pull(1 << 16, timeout=1)          # work goes on, no spinning
    assert batch is not None and batch.job is job1


def test_a_pull_without_work_returns_at_its_deadline():
    sched = Scheduler(Telemetry())
    assert sched.pull(1 << 16, timeout=0.05) is None          # no job at all
    sched.set_job(make_job("1", bits=40))
    sched.clear_jobs()
    assert sched.pull(1 << 16, timeout=0.05) is None          # pool lost: work flushed
