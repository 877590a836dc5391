"""Long runs stay flat: every structure that grows with jobs, shares or reject reasons has a
bound (the soak, benchmarks/soak.py, showed the ones that had none).  Outcomes only: sizes
after thousands of jobs or answers, never how long anything took."""
from __future__ import annotations

import json

from sgm.jobs import MidstateCache
from sgm.pool import PoolThread, faults as faults_mod, server as server_mod
from sgm.pool.faults import FaultPoolThread
from sgm.scheduler import MAX_VALID_GENERATIONS, Scheduler
from sgm.stratum.protocol import StratumProtocol
from sgm.telemetry import MAX_REJECT_REASONS, OTHER_REASONS, Telemetry
from tests.conftest import wait_until
from tests.test_pool import Raw
from tests.test_scheduler import NOTIFY, make_job

JOBS = 2000


def test_the_fault_pools_answer_book_keeps_only_the_latest(monkeypatch):
    """Each submit's answer is kept for the reconciliation checks; past the bound the oldest
    go, so a soak's book stops growing (20,000 kept were 3.5 MB of a 60-minute soak)."""
    monkeypatch.setattr(faults_mod, "MAX_ANSWERS_KEPT", 200)
    with FaultPoolThread(difficulty_bits=8, jobs=None, job_interval=3600) as p:
        c = Raw(p.port)
        en1, size, notify, _diff = c.login()
        n = 500
        for nonce in range(n):   # pipelined: every submit is judged and answered
            c.send({"id": 100 + nonce, "method": "mining.submit",
                    "params": ["w1", notify[0], "00" * size, notify[7], f"{nonce:08x}"]})
        answered = set()
        while len(answered) < n:
            msg = c.recv()
            if msg.get("id") is not None and msg["id"] >= 100:
                answered.add(msg["id"])
        book = p.book
        c.close()
    assert book.answered_true + book.answered_false == n
    assert len(book.answers) == 200
    assert (notify[0], n - 1) in book.answers and (notify[0], 0) not in book.answers
    assert list(book.answers)[0] == (notify[0], n - 200)      # the oldest kept


def test_the_pools_per_job_records_stay_bounded_after_thousands_of_jobs():
    with PoolThread(difficulty_bits=8, jobs=None, job_interval=3600) as p:
        c = Raw(p.port)
        c.login()
        for i in range(JOBS):
            p.new_job(clean=i % 10 == 0)
        c.sync()
        pool = p.pool
        assert pool is not None
        jobs, seen, stale_ids = dict(pool._jobs), dict(pool._seen), dict(pool._stale_ids)
        assert p.stats.jobs_issued >= JOBS
        c.close()
    assert len(jobs) <= server_mod._KEEP_JOBS
    assert len(stale_ids) <= server_mod._KEEP_STALE_IDS
    assert set(seen) <= set(jobs) | set(stale_ids)


def test_the_clients_job_table_stays_bounded_after_thousands_of_notifies():
    p = StratumProtocol("worker", "pw", max_jobs=32)
    p.start()
    ids = {m["method"]: m["id"]
           for m in (json.loads(x) for x in p.data_to_send().decode().splitlines())}
    p.feed(json.dumps({"id": ids["mining.subscribe"], "error": None,
                       "result": [[["mining.notify", "x"]], "aabbccdd", 4]}))
    for i in range(JOBS):
        params = list(NOTIFY)
        params[0], params[8] = f"j{i}", i % 10 == 0
        p.feed(json.dumps({"id": None, "method": "mining.notify", "params": params}))
    assert p.current_job is not None and p.current_job.job_id == f"j{JOBS - 1}"
    assert len(p.jobs) == 32 and f"j{JOBS - 1}" in p.jobs


def test_the_schedulers_per_job_state_stays_bounded_after_thousands_of_jobs():
    sched = Scheduler(Telemetry())
    for i in range(JOBS):
        sched.set_job(make_job(str(i), bits=4, clean=i % 10 == 0))
        sched.pull(1 << 10)
    assert sched.current_job is not None and sched.current_job.job_id == str(JOBS - 1)
    assert len(sched._valid) <= MAX_VALID_GENERATIONS
    assert len(sched.cache) <= sched.cache.maxsize
    assert len(sched.job_switches) <= sched.job_switches.maxlen   # type: ignore[operator]


def test_the_midstate_cache_keeps_at_most_its_size():
    cache = MidstateCache(maxsize=16)
    for i in range(JOBS // 10):
        cache.get(make_job(str(i)), 0)
    assert len(cache) == 16


def test_reject_reasons_stay_bounded_when_a_pool_puts_data_in_them():
    tel = Telemetry()
    dev = tel.device("cpu0")
    for i in range(JOBS):
        dev.record_share_result(False, f"Job not found: {i:08x}")
    reasons = dev.to_dict()["rejected_reasons"]
    assert len(reasons) == MAX_REJECT_REASONS + 1
    assert reasons[OTHER_REASONS] == JOBS - MAX_REJECT_REASONS
    assert sum(reasons.values()) == JOBS


def test_the_event_buffer_and_job_history_stay_bounded():
    tel = Telemetry()
    sub = tel.subscribe(maxsize=64)
    for i in range(JOBS):
        tel.job(f"j{i}", i % 2 == 0)
    assert wait_until(lambda: sub.dropped > 0)
    assert len(sub) <= 64
    sub.close()
