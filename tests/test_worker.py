"""The native worker loop (sgm/_native/_worker.pyx): CPU workers hash without the GIL,
push every candidate exactly once into a bounded buffer (waiting, never dropping, when it
is full), hand back what an abort left unscanned, and end a job at its first block on
every worker at once.  Then the scheduler side: stale candidates are one number, not an
event each, and a block ends the job for every device."""
from __future__ import annotations

import threading
import time

import pytest

from sgm import _native
from sgm._native import WorkQueue
from sgm._native._worker import (
    FLAG_BLOCK,
    RUN_DISABLED,
    RUN_NEED_WORK,
    RUN_NO_WORK,
    RUN_STOPPED,
    CandidateBuffer,
    CpuWorker,
    WorkTable,
)
from sgm.devices.cpu import CpuDevice
from sgm.hashing import bits_to_target, meets_target, sha256d
from sgm.jobs import Job
from sgm.scheduler import Scheduler
from sgm.telemetry import ShareEvent, Telemetry
from tests.test_scheduler import NOTIFY

HEADER = bytes.fromhex(  # Bitcoin block 125552's header (its nonce field is ignored)
    "01000000" "81cd02ab7e569e8bcd9317e2fe99f2de44d49ab2b8851ba4a308000000000000"
    "e320b6c2fffc8d750423db8b1eb942ae710e951ed797f7affc8892b0f1fc122b"
    "c7f5d74d" "f2b9441a" "42a14695")
MIDSTATE = _native.sha256_midstate(HEADER[:64])
TAIL = HEADER[64:76]
IMPL = _native.default_implementation()


def hits(start: int, count: int, target: int) -> list[int]:
    return _native.scan(MIDSTATE, TAIL, start, count, target, impl="scalar").nonces


def drain_all(buf: CandidateBuffer) -> list[tuple]:
    out = []
    while True:
        items, stale = buf.drain(1 << 20, 0)
        assert stale == {}
        if not items:
            return out
        out.extend(items)


def make(n_nonces: int, batch: int = 1 << 16, capacity: int = 1 << 16):
    q, t, b = WorkQueue(), WorkTable(), CandidateBuffer(capacity)
    q.set_job(1, 1, 0, n_nonces)
    w = CpuWorker(q, t, b, 3, IMPL, batch_nonces=batch)
    return q, t, b, w


def test_a_worker_asks_for_a_midstate_it_lacks_then_finds_exactly_what_scan_finds():
    target = bits_to_target(12)
    q, t, b, w = make(1 << 20)
    assert w.run() == RUN_NEED_WORK and w.need == (1, 0)
    assert q.stats()["remaining"] == 1 << 20          # the unit went back whole
    t.put(1, 0, MIDSTATE, TAIL, target)
    assert w.run() == RUN_NO_WORK                      # the whole job, then nothing left
    found = drain_all(b)
    assert sorted(n for _, _, _, n, _ in found) == hits(0, 1 << 20, target)
    assert {(d, g, m, f) for d, g, m, _, f in found} == {(3, 1, 0, 0)}
    hashes, batches, busy_ns, candidates, blocks, _lat, size = w.counters()
    assert hashes == 1 << 20 and batches == 16 and size == 1 << 16
    assert candidates == len(found) and blocks == 0 and busy_ns > 0
    for *_, nonce, _ in found:          # real hashes: hashlib agrees
        assert meets_target(sha256d(HEADER[:76] + nonce.to_bytes(4, "little")), target)


def test_a_full_buffer_makes_the_worker_wait_and_nothing_is_lost():
    target = bits_to_target(6)          # ~1 nonce in 64: far more than the buffer holds
    q, t, b, w = make(1 << 18, capacity=64)
    t.put(1, 0, MIDSTATE, TAIL, target)
    status: list[int] = []
    th = threading.Thread(target=lambda: status.append(w.run()))
    th.start()
    got = []
    deadline = time.monotonic() + 120
    while th.is_alive() or len(b):
        items, _ = b.drain(1 << 20, 0.05)
        got.extend(n for *_, n, _ in items)
        assert time.monotonic() < deadline
    th.join()
    assert status == [RUN_NO_WORK]
    assert b.waits > 0                   # it did fill up
    assert sorted(got) == hits(0, 1 << 18, target)


def test_hashes_are_counted_before_the_candidates_they_found_go_out():
    """A reader that sees a candidate also sees the hashes that found it (a rig's API must
    never report shares beside 0 H/s): one batch of 2^18 nonces at 1 in 64, read while
    the worker is still inside it."""
    target = bits_to_target(6)
    q, t, b, w = make(1 << 18, batch=1 << 18, capacity=64)
    t.put(1, 0, MIDSTATE, TAIL, target)
    th = threading.Thread(target=w.run)
    th.start()
    seen = []
    deadline = time.monotonic() + 120
    while th.is_alive() or len(b):
        items, _ = b.drain(1 << 20, 0.05)
        if items:
            hashes, batches, *_ = w.counters()
            last = max(n for *_, n, _ in items)
            seen.append((last, hashes, batches))
        assert time.monotonic() < deadline
    th.join()
    assert seen and all(hashes > last for last, hashes, _ in seen), seen[:5]
    assert any(batches == 0 for *_, batches in seen)      # read inside the batch


def test_the_worker_hashes_while_another_thread_holds_the_gil():
    q, t, b, w = make(1 << 32 - 1, batch=1 << 12)
    t.put(1, 0, MIDSTATE, TAIL, 0)
    th = threading.Thread(target=w.run)
    th.start()
    try:
        while w.counters()[1] == 0:      # wait for its first batch
            time.sleep(0.001)
        before = w.counters()[1]
        # sum() over a range runs in C without ever offering the GIL to another thread
        sum(range(30_000_000))
        during = w.counters()[1] - before
    finally:
        w.terminate()
        th.join()
    assert during >= 2, "the worker made no progress while the GIL was held"


def test_switching_a_worker_off_hands_back_the_rest_of_its_unit():
    q, t, b, w = make(1 << 32 - 1, batch=1 << 30)
    t.put(1, 0, MIDSTATE, TAIL, 0)
    out: list[int] = []
    th = threading.Thread(target=lambda: out.append(w.run()))
    th.start()
    while not w.hashing:
        time.sleep(0.001)
    w.enabled = False
    th.join()
    assert out == [RUN_DISABLED]
    st = q.stats()
    scanned = w.counters()[0]
    assert 0 < scanned < 1 << 30
    assert st["handed_out"] - st["given_back"] == scanned     # every nonce accounted for
    w.enabled = True
    w.terminate()
    assert w.run() == RUN_STOPPED


def test_a_block_ends_the_job_at_once_on_every_worker():
    share = bits_to_target(10)
    block = bits_to_target(14)
    q, t, b = WorkQueue(), WorkTable(), CandidateBuffer()
    q.set_job(7, 1)
    t.put(7, 0, MIDSTATE, TAIL, share, block_target=block)
    finder = CpuWorker(q, t, b, 0, IMPL, batch_nonces=1 << 22)
    other = CpuWorker(q, t, b, 1, IMPL, batch_nonces=1 << 22)
    assert finder.run() == RUN_NO_WORK
    assert finder.counters()[4] == 1                    # one block
    assert other.abort.is_set()                         # the other worker was told at once
    assert not q.stats()["has_job"] and t.ended_through == 7 and not t.has(7, 0)
    items = drain_all(b)
    blocks = [n for *_, n, f in items if f & FLAG_BLOCK]
    first_block = next(n for n in hits(0, 1 << 22, share)
                       if meets_target(sha256d(HEADER[:76] + n.to_bytes(4, "little")), block))
    assert blocks == [first_block]
    # it stopped right there: nothing after that candidate's scan chunk was hashed
    assert finder.counters()[0] < first_block + (1 << 20)


def test_a_worker_refuses_an_unknown_kernel():
    q, t, b = WorkQueue(), WorkTable(), CandidateBuffer()
    with pytest.raises(ValueError, match="unknown"):
        CpuWorker(q, t, b, 0, "no-such-kernel")


# ------------------------------------------------------------------ the scheduler side
def job(job_id: str, bits: int, nbits: str = "1929ee8d") -> Job:
    params = list(NOTIFY)
    params[0], params[6] = job_id, nbits
    return Job.from_notify(params, extranonce1="00000001", extranonce2_size=4,
                           target=bits_to_target(bits))


def wait_until(pred, timeout=120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.01)
    return False


def test_shares_of_a_replaced_job_are_counted_stale_in_one_number_without_events():
    tel = Telemetry()
    sub = tel.subscribe(maxsize=1 << 20, kinds=ShareEvent)
    sent = []
    # the pool's books fill up: submitting blocks, so the buffer holds a backlog
    gate = threading.Event()

    def submit(share, device):
        sent.append(share)
        gate.wait(30)

    sched = Scheduler(tel, submit=submit)
    sched.set_job(job("1", bits=4))          # one nonce in 16 is a share
    dev = CpuDevice(0)
    dev.start(sched)
    try:
        assert wait_until(lambda: len(sched.candidates) > 1000)
        sched.set_job(job("2", bits=40))     # clean: every candidate of job 1 is stale now
        gate.set()
        assert wait_until(lambda: sched.sync(1.0) and not len(sched.candidates))
    finally:
        dev.stop()
    stale = tel.device("cpu0").stale
    assert stale > 1000
    events = sub.drain()
    assert not any(e.reason == "stale" for e in events if isinstance(e, ShareEvent))
    found = tel.device("cpu0").found
    assert found == len(sent)
    # every candidate is accounted for: submitted or stale, and the ledger saw them all
    assert found + stale == dev.worker.counters()[3] == tel.device("cpu0").candidates


def test_a_block_ends_its_job_for_every_device_and_is_submitted_once():
    tel = Telemetry()
    sent = []
    sched = Scheduler(tel, submit=lambda share, device: sent.append(share))
    # nbits 0x207fffff: regtest's target, every second hash is a block
    j = job("1", bits=1, nbits="207fffff")
    gen = sched.set_job(j)
    devs = [CpuDevice(0), CpuDevice(1)]
    for d in devs:
        d.start(sched)
    try:
        assert wait_until(lambda: sched.blocks_ended >= 1)
        assert wait_until(lambda: not any(d.hashing for d in devs))
        assert sched.current_job is None and not sched.queue.stats()["has_job"]
        assert sched.sync(30)
    finally:
        for d in devs:
            d.stop()
    blocks = [s for s in sent if meets_target(s.hash, j.network_target)]
    # each device can have had at most one block in hand when the job ended
    assert 1 <= len(blocks) <= len(devs) and len(sent) == len(blocks)
    hashed = sum(tel.device(d.name).hashes for d in devs)
    assert hashed < 1 << 24           # nobody went on hashing the finished job
    assert gen not in sched._valid
