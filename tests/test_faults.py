"""A real Miner (CPU devices) against a pool that misbehaves, over a real socket.

For every fault of sgm.pool.faults: the miner survives and mines on, reconnects (within
its back-off bound) where the fault drops the connection, never sends a share the pool's
hashlib check refuses as invalid or duplicate, and its counts add up, beside the pool's
own books and what the fault layer told it.

Waits are generous (a loaded 2-core box is slow); what is asserted is the outcome.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sgm.miner import Miner, MinerConfig, PoolConfig
from sgm.pool.faults import FLIPPED_REASON, FaultBook, FaultPoolThread, LedgerCheck
from sgm.pool.records import (
    DUPLICATE,
    INVALID_VERSION_BITS,
    LOW_DIFFICULTY,
    MALFORMED,
    NOT_SUBSCRIBED,
    OTHER,
    UNAUTHORIZED,
    PoolStats,
)
from sgm.telemetry import ShareEvent

#: the client's back-off ceiling in these tests (seconds); a reconnect must come within it
BACKOFF_MAX = 3.0
#: what a busy machine may add to a reconnect (scheduling, connect, handshake)
SLACK = 30.0
WAIT = 120.0
#: share refusals that mean the miner sent something it should not have
INVALID = (LOW_DIFFICULTY, DUPLICATE, MALFORMED, INVALID_VERSION_BITS, OTHER, UNAUTHORIZED,
           NOT_SUBSCRIBED)


def wait_for(cond: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Outcome:
    pool: PoolStats
    book: FaultBook
    ledger: LedgerCheck
    summary: dict[str, Any]
    #: the pool's answer as the miner counted it, per share: (job id, nonce) -> accepted
    verdicts: dict[tuple[str, int], bool]


class Rig:
    """A FaultPool and a Miner mining it with one CPU thread."""

    def __init__(self, difficulty_bits: int = 20, job_interval: float = 5.0) -> None:
        self.pool = FaultPoolThread(difficulty_bits=difficulty_bits, jobs=None,
                                    job_interval=job_interval).start()
        self.miner = Miner(MinerConfig(pools=[PoolConfig(self.pool.url, "fault.test", "x")],
                                       threads=1, device_kinds=("cpu",)))
        self.shares = self.miner.telemetry.subscribe(maxsize=100_000, kinds=ShareEvent)
        self.miner.start()
        client = self.miner.client
        assert client is not None
        # a quick client: the bounds the tests check are its own settings
        client.backoff_max = BACKOFF_MAX
        client.handshake_timeout = 5.0
        self.outcome: Outcome | None = None

    @property
    def accepted(self) -> int:
        return self.pool.stats.accepted

    def mining(self, more: int = 3) -> None:
        """Wait until the pool accepted ``more`` shares beyond now."""
        start = self.accepted
        wait_for(lambda: self.accepted >= start + more, f"{more} more accepted shares")

    def recovered(self) -> None:
        """Connected again, with shares accepted after the last disconnect."""
        def back() -> bool:
            book = self.pool.book
            return book.unrecovered == 0 and self.pool.stats.connections >= 1
        wait_for(back, "a reconnect")
        self.mining()

    def finish(self) -> Outcome:
        self.miner.stop(timeout=30.0)
        summary = self.miner.summary()
        verdicts = {(e.job_id, e.nonce): e.accepted for e in self.shares.drain()
                    if isinstance(e, ShareEvent) and e.accepted is not None
                    and e.reason != "stale"}
        assert self.shares.dropped == 0
        self.outcome = Outcome(self.pool.stats, self.pool.book,
                               LedgerCheck.of(summary, self.miner.telemetry.snapshot()), summary,
                               verdicts)
        return self.outcome

    def close(self) -> None:
        self.miner.stop(timeout=30.0)
        self.pool.stop()


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig()
    try:
        r.mining()
        yield r
    finally:
        r.close()


def assert_sound(out: Outcome, *, lossless: bool = True) -> None:
    """The checks every fault must pass.  ``lossless``: no connection was lost, so every
    answer the pool sent reached the miner and the two sides agree exactly."""
    invalid = {k: v for k, v in out.pool.rejected.items() if k in INVALID and v}
    assert invalid == {}, f"the miner sent shares the pool refused as invalid: {invalid}"
    led = out.ledger
    assert led.hw_errors == 0
    assert led.balances, f"the miner's counts do not add up: {led}"
    assert led.found > 0 and led.accepted > 0
    # what the miner heard is what the pool said (after the fault layer's lies)
    assert led.accepted <= out.book.answered_true
    assert led.rejected + led.rejected_stale <= out.book.answered_false
    # the pool's books: every share the miner heard about was judged there
    assert out.pool.submitted >= led.answered
    assert out.pool.submitted <= led.answered + led.unanswered + out.book.unanswered_submits
    assert out.pool.accepted == out.book.answered_true + out.book.flipped + _lost_true(out)
    # each share's answer reached that share (answers matched by id, not by order)
    wrong = {k: v for k, v in out.verdicts.items()
             if out.book.answers.get(k, v) is not None and out.book.answers.get(k, v) != v}
    assert wrong == {}, f"answers counted against the wrong shares: {wrong}"
    assert len(out.verdicts) >= min(10, led.answered - led.rejected_stale)
    assert all(k in out.book.answers for k in out.verdicts)
    if lossless:
        assert led.unanswered == 0
        assert led.accepted == out.book.answered_true
        assert led.rejected + led.rejected_stale == out.book.answered_false


def _lost_true(out: Outcome) -> int:
    """Accepted shares whose answer the fault layer never sent (a stall, a dropped line)."""
    return out.pool.accepted - out.book.answered_true - out.book.flipped


def assert_reconnects_bounded(book: FaultBook, drops: int) -> None:
    gaps = book.reconnect_gaps()
    assert len(book.disconnects) >= drops
    assert book.unrecovered <= 1      # only the miner's own stop, at the end
    assert gaps and max(gaps) <= BACKOFF_MAX + SLACK, f"reconnect gaps {gaps}"


# ---------------------------------------------------------------- faults on the wire


def test_connection_closed_mid_line(rig: Rig) -> None:
    assert rig.pool.inject("close_mid_line") == 1
    rig.recovered()
    out = rig.finish()
    assert_sound(out, lossless=False)
    assert_reconnects_bounded(out.book, 1)


def test_stall_longer_than_the_keepalive(rig: Rig) -> None:
    client = rig.miner.client
    assert client is not None
    client.idle_timeout = 2.0
    rig.mining(3)            # lines read since: the next read waits 2 s at most
    rig.pool.inject("stall", seconds=6.0)
    wait_for(lambda: len(rig.pool.book.disconnects) >= 1, "the miner to give up on the silent pool")
    rig.recovered()
    out = rig.finish()
    assert out.book.dropped_lines > 0
    assert_sound(out, lossless=False)
    assert_reconnects_bounded(out.book, 1)


@pytest.mark.parametrize("fault", ["garbage", "invalid_json"])
def test_bad_lines_are_survived_on_the_same_connection(rig: Rig, fault: str) -> None:
    rig.pool.inject(fault)
    rig.mining(5)
    out = rig.finish()
    assert_sound(out)
    assert len(out.book.disconnects) <= 1          # only the miner's own stop
    assert out.pool.connections_total == 1


def test_wrong_types_are_refused_and_mining_goes_on(rig: Rig) -> None:
    rig.pool.inject("wrong_types")
    # one of the lines is a client.reconnect with nonsense arguments: obeyed as "reconnect
    # to the same pool" (sgm reads client.reconnect leniently, see test_stratum), so the
    # session may be a new one
    rig.recovered()
    out = rig.finish()
    assert_sound(out, lossless=False)
    assert_reconnects_bounded(out.book, 0)


def test_line_over_64k_drops_the_connection_and_it_reconnects(rig: Rig) -> None:
    rig.pool.inject("long_line")
    wait_for(lambda: len(rig.pool.book.disconnects) >= 1, "the miner to drop the session")
    rig.recovered()
    out = rig.finish()
    assert_sound(out, lossless=False)
    assert_reconnects_bounded(out.book, 1)


# ---------------------------------------------------------------- faults in the work


@pytest.fixture
def quiet_rig() -> Iterator[Rig]:
    """A rig whose pool sends no job of its own accord (only those a test makes)."""
    r = Rig(job_interval=3600.0)
    try:
        r.mining()
        yield r
    finally:
        r.close()


def test_job_id_reused_with_different_data(quiet_rig: Rig) -> None:
    rig = quiet_rig
    before = rig.pool.current_job()
    assert before is not None
    rig.pool.inject("reuse_job_id")
    after = rig.pool.current_job()
    assert after is not None and after.job_id == before.job_id and after.prevhash != before.prevhash
    # the miner moved to the new data: shares under the old id hash over the new prevhash
    wait_for(lambda: any(s.job_id == after.job_id and s.header[4:36] == after.prevhash
                         for s in rig.pool.stats.accepted_shares), "a share of the new data")
    out = rig.finish()
    assert_sound(out)


def test_extranonce_change_in_the_middle_of_a_job(rig: Rig) -> None:
    old = {s.extranonce1 for s in rig.pool.stats.accepted_shares}
    assert rig.pool.inject("extranonce_change") == 1
    rig.mining(3)                     # the current job, still on the old extranonce1
    rig.pool.new_job(clean=False)     # from here on: the new one
    wait_for(lambda: any(s.extranonce1 not in old for s in rig.pool.stats.accepted_shares),
             "a share with the new extranonce1")
    out = rig.finish()
    assert_sound(out)
    assert out.pool.connections_total == 1


def test_an_extranonce_change_during_a_stall_is_not_made(rig: Rig) -> None:
    """The stall drops every line; an extranonce1 changed on the pool's side but never
    announced made the miner's later shares invalid (84 after a 2 s stall): the fault
    pool does not change what it cannot tell."""
    rig.pool.inject("stall", seconds=2.0)
    assert rig.pool.inject("extranonce_change") == 0
    rig.mining(3)
    out = rig.finish()
    assert_sound(out, lossless=False)


def test_absurd_difficulties_are_refused(rig: Rig) -> None:
    rig.pool.inject("absurd_difficulty")
    rig.mining(5)
    client = rig.miner.client
    assert client is not None and client.difficulty == rig.pool.fault_pool.difficulty
    out = rig.finish()
    assert_sound(out)


def test_a_thousand_notifies_a_second(rig: Rig) -> None:
    sent = rig.pool.inject("notify_flood", per_second=1000, seconds=2.0)
    assert sent >= 500
    rig.mining(5)
    out = rig.finish()
    assert out.book.notifies_flooded == sent
    assert_sound(out)
    assert out.pool.connections_total == 1


# ---------------------------------------------------------------- faults in the session


def test_reconnect_storm(rig: Rig) -> None:
    rig.pool.inject("reconnect_storm", times=5)
    wait_for(lambda: len(rig.pool.book.disconnects) >= 5, "five dropped or redirected sessions")
    rig.recovered()
    out = rig.finish()
    assert_sound(out, lossless=False)
    assert_reconnects_bounded(out.book, 5)


def test_refused_authorisation_then_accepted(rig: Rig) -> None:
    rig.pool.inject("refuse_auth", times=2)
    wait_for(lambda: rig.pool.book.authorizations_refused == 2, "two refused authorizations")
    rig.recovered()
    out = rig.finish()
    assert out.pool.rejected.get(UNAUTHORIZED, 0) == 0   # nothing sent while refused
    assert_sound(out, lossless=False)
    assert_reconnects_bounded(out.book, 3)


def test_accepted_then_rejected_answers_are_counted_as_answered(rig: Rig) -> None:
    rig.pool.inject("flip_answers", count=5, every=2)
    wait_for(lambda: rig.pool.book.flipped == 5, "five valid shares answered 'rejected'")
    out = rig.finish()
    assert_sound(out)
    assert out.ledger.rejected == 5
    assert out.summary["rejected_reasons"] == {FLIPPED_REASON: 5}


def test_answers_out_of_order_reach_their_own_shares(rig: Rig) -> None:
    rig.pool.inject("reorder_answers", count=12)
    wait_for(lambda: rig.pool.book.reordered >= 4, "answers sent in reverse order")
    rig.mining(5)
    out = rig.finish()
    assert_sound(out)


# ---------------------------------------------------------------- found by the soak run


def test_notifies_without_a_subscribe_answer_do_not_hold_the_handshake() -> None:
    """A pool that lost a session's subscribe answer (the soak's stall during a handshake)
    but broadcasts a notify every 0.1 s: the session is dropped within the handshake
    timeout and the next pool gives work.  Before the fix every line restarted the
    timeout, and the miner sat 40 s without work."""
    import asyncio

    from sgm.pool.server import LocalPool
    from sgm.stratum.client import StratumClient
    from sgm.stratum.messages import encode_request
    from sgm.stratum.protocol import Disconnected

    async def main() -> None:
        good = LocalPool(difficulty_bits=12, jobs=None, job_interval=60)
        await good.start()
        job = good.current_job
        assert job is not None
        notify = encode_request(None, "mining.notify", job.notify_params()).encode()

        async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:                 # answers nothing, broadcasts for ever
                    writer.write(notify)
                    await writer.drain()
                    await asyncio.sleep(0.1)
            except (ConnectionError, OSError):
                pass

        bad = await asyncio.start_server(deaf, "127.0.0.1", 0)
        bad_url = f"stratum+tcp://127.0.0.1:{bad.sockets[0].getsockname()[1]}"
        events: list[Any] = []
        client = StratumClient([(bad_url, "w", "x"), (good.url, "w", "x")],
                               on_job=lambda j: None, on_event=events.append,
                               handshake_timeout=1.0, retries_per_pool=1, backoff_initial=0.05)
        task = asyncio.create_task(client.run())
        try:
            await client.wait_for_job(timeout=60)
        finally:
            await client.close()
            await asyncio.gather(task, return_exceptions=True)
            await good.stop()
            bad.close()
        assert client.current_pool is not None and client.current_pool.port == good.port
        reasons = [e.reason for e in events if isinstance(e, Disconnected)]
        assert any("no job from pool within 1s" in r for r in reasons), reasons

    asyncio.run(main())
