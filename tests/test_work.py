"""A Batch is what a device receives: one work unit (a nonce range of one midstate of one
job generation) with the precomputed work and the share target, validated on creation."""
from __future__ import annotations

import pytest

from sgm._native import NONCE_SPACE
from sgm.hashing import bits_to_target
from sgm.jobs import Job, MidstateCache
from sgm.scheduler import Scheduler
from sgm.telemetry import Telemetry
from sgm.work import Batch

NOTIFY = ["w1", bytes(range(32)).hex(), "01000000", "ffffffff", ["22" * 32], "20000000",
          "1d00ffff", "65000000", True]


def job(job_id: str = "w1") -> Job:
    params = list(NOTIFY)
    params[0] = job_id
    return Job.from_notify(params, extranonce1="aabbccdd", extranonce2_size=2,
                           target=bits_to_target(20), version_mask=0x00006000)


def test_the_scheduler_hands_devices_batches_of_its_queue_units():
    sched = Scheduler(Telemetry())
    j = job()
    gen = sched.set_job(j)
    b = sched.pull(1 << 20)
    assert isinstance(b, Batch)
    assert (b.generation, b.job, b.midstate_id, b.start, b.count, b.target) == (
        gen, j, 0, 0, 1 << 20, j.target)
    assert b.end == 1 << 20 and str(b) == f"w1/g{gen}/m0[0x0+{1 << 20}]"
    assert b.work == MidstateCache().get(j, 0)     # the precomputed midstate and tail


@pytest.mark.parametrize("start,count", [(-1, 1), (NONCE_SPACE, 1), (0, 0), (NONCE_SPACE - 1, 2)])
def test_a_batch_outside_the_nonce_space_is_refused(start, count):
    j = job()
    with pytest.raises(ValueError, match="start|count"):
        Batch(1, j, MidstateCache().get(j, 0), start, count, j.target, 0.0)


def test_a_batch_may_end_at_the_top_of_the_nonce_space():
    j = job()
    b = Batch(1, j, MidstateCache().get(j, 3), NONCE_SPACE - 10, 10, j.target, 0.0)
    assert b.end == NONCE_SPACE and b.midstate_id == 3


def test_a_batch_never_mixes_the_work_of_one_job_with_another():
    with pytest.raises(ValueError, match="work of job w2"):
        Batch(1, job("w1"), MidstateCache().get(job("w2"), 0), 0, 1, 1, 0.0)
