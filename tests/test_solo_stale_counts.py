"""Two kinds of stale share, two numbers (issue 16, defect 5).

A share the pool refused as stale ("Job not found", code 21) and one sgm never sent
because its job went away first were both just "stale".  They are kept apart now:
``stale_dropped`` (never sent) and ``rejected_stale`` (sent, refused by the pool as stale),
while ``stale`` keeps its meaning (both together) and ``rejected`` still counts only the
other refusals.  cgminer counts the pool's stale refusals among its rejects (with the
reason); cgminer's "Rejected" is thus ``rejected + rejected_stale`` here.
"""
from __future__ import annotations

import time

import pytest

from sgm.jobs import Share
from sgm.miner import Miner, MinerConfig, PoolConfig
from sgm.pool import PoolThread
from sgm.pool.records import JOB_NOT_FOUND, STALE
from sgm.stratum.client import Verdict
from sgm.telemetry import Telemetry


def wait_for(pred, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return bool(pred())


def test_telemetry_keeps_refused_and_never_sent_stale_apart():
    tele = Telemetry()
    tele.register_device("cpu0")
    tele.register_device("cpu1")
    tele.record_stale("cpu0", "j1", 1, 1.0)                   # never sent
    tele.record_stale("cpu0", "j1", 2, 1.0)
    tele.record_stale("cpu1", "j1", 3, 1.0, refused=True)     # the pool said Job not found
    tele.record_share_result("cpu1", "j2", 4, 1.0, False, "Low difficulty share")
    snap = tele.snapshot()
    assert (snap["stale"], snap["stale_dropped"], snap["rejected_stale"]) == (3, 2, 1)
    assert snap["rejected"] == 1            # the low-difficulty one only
    cpu0, cpu1 = snap["devices"]
    assert (cpu0["stale"], cpu0["stale_dropped"], cpu0["rejected_stale"]) == (2, 2, 0)
    assert (cpu1["stale"], cpu1["stale_dropped"], cpu1["rejected_stale"]) == (1, 0, 1)


@pytest.mark.parametrize("verdict,column", [
    (Verdict(False, "Job not found", 21, sent=True), "rejected_stale"),
    (Verdict(False, "Stale share", 20, sent=True), "rejected_stale"),
    (Verdict(False, "stale block: inconclusive", sent=True), "rejected_stale"),  # solo
    (Verdict(False, "not connected", sent=False), "stale_dropped"),
    (Verdict(False, "stale: job unknown to this session", sent=False), "stale_dropped"),
    (Verdict(False, "stale: the tip moved", sent=False), "stale_dropped"),            # solo
    (Verdict(False, "Low difficulty share", 23), "rejected"),
    (Verdict(True), "accepted"),
])
def test_each_verdict_lands_in_one_column_of_the_summary(verdict, column):
    miner = Miner(MinerConfig(threads=1))
    share = Share("j", "00", "00000000", "00000001", None, bytes(32), 1.0)
    miner._count_verdict("cpu0", share, verdict)
    summary = miner.summary()
    got = {k: summary[k] for k in ("accepted", "rejected", "stale_dropped", "rejected_stale")}
    assert got == {k: int(k == column) for k in got}
    assert summary["stale"] == summary["stale_dropped"] + summary["rejected_stale"]


def test_shares_the_pool_refuses_as_job_not_found_are_rejected_stale():
    """Mining a real pool over a socket: once the pool has lost the miner's job (as
    public-pool does after new blocks) every share it gets for it is refused with
    21 "Job not found"; the miner's rejected_stale matches the pool's own count of those
    refusals and none of them is counted as never sent or as another rejection."""
    pool = PoolThread(difficulty_bits=16, jobs=None, job_interval=3600.0).start()
    miner = Miner(MinerConfig(threads=1, pools=[PoolConfig(pool.url, "w", "x")]))
    try:
        miner.start()
        assert wait_for(lambda: pool.stats.accepted >= 1), "no share accepted"

        async def forget_jobs() -> None:
            # the pool's job store loses every job it issued, without a new notify
            lp = pool.pool
            lp._jobs.clear()
            lp._stale_ids.clear()

        pool._call(forget_jobs())
        assert wait_for(lambda: pool.stats.rejected.get(JOB_NOT_FOUND, 0) >= 3), \
            f"the pool refused no shares: {pool.stats.rejected}"
        refused_seen = pool.stats.rejected.get(JOB_NOT_FOUND, 0)
        pool.new_job(clean=True)                  # work the pool knows again
        accepted = pool.stats.accepted
        assert wait_for(lambda: pool.stats.accepted > accepted), "no share after the new job"
    finally:
        miner.stop()
        pool.stop()
    summary = miner.summary()
    stats = pool.stats
    refused = stats.rejected.get(JOB_NOT_FOUND, 0) + stats.rejected.get(STALE, 0)
    assert refused >= refused_seen >= 3
    # a share in flight at the stop may have been judged by the pool, never answered here
    unanswered = summary["unanswered"]
    assert summary["rejected_stale"] <= refused <= summary["rejected_stale"] + unanswered
    assert summary["rejected_stale"] >= refused_seen - unanswered
    assert summary["rejected"] == stats.rejected_total - refused == 0
    assert summary["stale"] == summary["stale_dropped"] + summary["rejected_stale"]
    assert summary["accepted"] <= stats.accepted <= summary["accepted"] + unanswered
