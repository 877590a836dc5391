"""A fault-injecting mode of the local pool, for reliability tests and the soak run.

:class:`FaultPool` is a :class:`~sgm.pool.server.LocalPool` (so every submit is still
checked with hashlib against the pool's own job bytes and counted in its books) that can
also misbehave on request, the way real pools and broken networks do:

* the connection closed in the middle of a line, a stall (nothing sent) longer than the
  miner's keep-alive, garbage bytes, lines over 64 KiB, invalid JSON, well-formed JSON of
  the wrong types;
* a job id reused with different data, an extranonce change in the middle of a job,
  absurd difficulties (0, negative, 1e300), a flood of notifies (1,000 a second);
* a reconnect storm (every session dropped right after its first job, or told to
  reconnect), refused authorisation;
* valid shares answered "rejected" (accepted-then-rejected), and answers held back and
  sent in reverse order.

A fault that only changes what the miner is told (a lie) leaves the pool's own books
honest; :class:`FaultBook` counts what the fault layer did, so a test can reconcile the
miner's counts with the pool's books and the lies told on top of them.  Shares that are
right for data the pool replaced behind the miner's back (a reused job id, an old
extranonce1) are answered and counted stale, never "low difficulty": the books' invalid
counts stay the measure of shares the miner should not have sent.

:class:`FaultPoolThread` runs one on a loop thread with synchronous control methods.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sgm.pool.records import LOW_DIFFICULTY
from sgm.pool.server import ConnectionInfo, LocalPool, _Conn
from sgm.pool.shares import Reject, ShareRules, check_share
from sgm.pool.template import PoolJob
from sgm.pool.thread import PoolThread
from sgm.stratum.messages import (
    MAX_LINE_BYTES,
    Request,
    StratumError,
    decode_line,
    encode_request,
    encode_response,
    make_error,
)

__all__ = ["FaultPool", "FaultPoolThread", "FaultBook", "LedgerCheck", "FAULTS", "FLIPPED_REASON",
           "GARBAGE_LINES", "INVALID_JSON_LINES", "WRONG_TYPE_LINES", "ABSURD_DIFFICULTY_LINES",
           "random_fault"]

#: the error text of a valid share answered "rejected" (the pool counted it accepted)
FLIPPED_REASON = "Refused by the fault pool (accepted in its books)"

log = logging.getLogger(__name__)

#: lines that are not JSON at all, or not a JSON object
GARBAGE_LINES: tuple[bytes, ...] = (
    b"\x00\x01\x02\xff\xfe garbage \x80\x81\n",
    b"HTTP/1.1 400 Bad Request\r\n",
    b"[1, 2, 3]\n",
    b"null\n",
    b"\"just a string\"\n",
)
#: invalid JSON: cut off, trailing commas, bad escapes, NaN where none may be
INVALID_JSON_LINES: tuple[bytes, ...] = (
    b'{"id": null, "method": "mining.notify", "params": [\n',
    b'{"id": 1, "result": true,}\n',
    b'{"id": "\\x", "result": true}\n',
    b"{'id': 1, 'result': true}\n",
    b'{"id": 1e999999, "result": true, "error": NaN}\n',
)
#: well-formed messages with the wrong types in every place a pool can put them
_WRONG_TYPES: tuple[dict[str, Any], ...] = (
    {"id": None, "method": "mining.notify", "params": [1, 2, 3, 4, 5, 6, 7, 8, 9]},
    {"id": None, "method": "mining.notify", "params": {"job_id": "x"}},
    {"id": None, "method": "mining.notify",
     "params": ["j", "00" * 32, "", "", "not a list", "20000000", "1d00ffff", "00000000", "yes"]},
    {"id": None, "method": "mining.set_difficulty", "params": ["sixteen"]},
    {"id": None, "method": "mining.set_difficulty", "params": [[1]]},
    {"id": None, "method": "mining.set_difficulty", "params": None},
    {"id": None, "method": "mining.set_extranonce", "params": [7, "four"]},
    {"id": None, "method": "mining.set_version_mask", "params": [{"mask": 1}]},
    {"id": None, "method": "client.reconnect", "params": [1, "port", "soon"]},
    {"id": None, "method": 42, "params": []},
    {"id": [1], "result": {"accepted": "yes"}, "error": 5},
    {"id": 99999, "result": True, "error": None},      # an answer to no request
    {"id": None, "method": "client.show_message", "params": [{"text": 1}]},
)
WRONG_TYPE_LINES: tuple[bytes, ...] = tuple((json.dumps(m) + "\n").encode() for m in _WRONG_TYPES)
#: absurd difficulties: zero, negative, astronomically high, and JSON that reads as infinity
ABSURD_DIFFICULTY_LINES: tuple[bytes, ...] = (
    b'{"id": null, "method": "mining.set_difficulty", "params": [0]}\n',
    b'{"id": null, "method": "mining.set_difficulty", "params": [-1]}\n',
    b'{"id": null, "method": "mining.set_difficulty", "params": [-1e300]}\n',
    b'{"id": null, "method": "mining.set_difficulty", "params": [1e300]}\n',
    b'{"id": null, "method": "mining.set_difficulty", "params": [1e999]}\n',
    b'{"id": null, "method": "mining.set_target", "params": ["' + b"0" * 64 + b'"]}\n',
)

#: every fault :meth:`FaultPool.inject` knows, by name (the soak run picks among them)
FAULTS = ("close_mid_line", "stall", "garbage", "long_line", "invalid_json", "wrong_types",
          "reuse_job_id", "extranonce_change", "absurd_difficulty", "notify_flood",
          "reconnect_storm", "refuse_auth", "flip_answers", "reorder_answers")


#: how many submits' answers FaultBook.answers keeps, the latest (the book stays bounded in
#: a soak: at ~175 bytes an entry, 20,000 kept were 3.5 MB of a 60-minute soak's growth)
MAX_ANSWERS_KEPT = 4096


@dataclass
class FaultBook:
    """What the fault layer did (the pool's own books are :attr:`LocalPool.stats`)."""

    injected: dict[str, int] = field(default_factory=dict)
    #: submits answered true / false on the wire (after any lie)
    answered_true: int = 0
    answered_false: int = 0
    #: valid shares the pool accepted in its books but answered "rejected"
    flipped: int = 0
    #: submit answers sent out of order
    reordered: int = 0
    #: lines never sent because the pool was stalled
    dropped_lines: int = 0
    #: submit answers never sent (stalled, or the connection went first)
    unanswered_submits: int = 0
    #: shares right for replaced data (reused job id, old extranonce1): answered stale
    stale_by_fault: int = 0
    authorizations_refused: int = 0
    notifies_flooded: int = 0
    #: the answer put on the wire for each submit, by (job id, nonce): True, False, or None
    #: when it was never sent (the latest MAX_ANSWERS_KEPT submits; insertion order)
    answers: OrderedDict[tuple[str, int], bool | None] = field(default_factory=OrderedDict)
    #: monotonic times of connects and disconnects (for reconnect gaps)
    connects: list[float] = field(default_factory=list)
    disconnects: list[float] = field(default_factory=list)

    def reconnect_gaps(self) -> list[float]:
        """Seconds from each disconnect to the next connect (none for a final disconnect)."""
        gaps: list[float] = []
        for t in self.disconnects:
            later = [c for c in self.connects if c >= t]
            if later:
                gaps.append(min(later) - t)
        return gaps

    @property
    def unrecovered(self) -> int:
        """Disconnects not followed by a connect."""
        return len(self.disconnects) - len(self.reconnect_gaps())


class FaultPool(LocalPool):
    """A LocalPool that injects faults on request (see the module's docstring).

    Control methods run on the pool's loop (:class:`FaultPoolThread` wraps them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.book = FaultBook()
        self._book_lock = threading.Lock()
        self._capture: list[str] | None = None
        self._stall_until = 0.0
        self._refuse_auth = 0
        self._drop_after_work = 0
        self._flip_every = 0          # every n-th valid share answered false (0: off)
        self._flip_left = 0
        self._flip_seen = 0
        self._reorder_left = 0
        self._held: dict[int, list[str]] = {}
        self._held_since: dict[int, float] = {}
        #: job id -> the data it named before a reuse (shares right for it are stale)
        self._reused: dict[str, list[PoolJob]] = {}
        #: connection id -> (job ids issued before an extranonce change, the old extranonce1)
        self._old_en1: dict[int, tuple[frozenset[str], bytes]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self.on_connect.append(self._connected)
        self.on_disconnect.append(self._disconnected)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await super().start()
        self._flusher = asyncio.create_task(self._flush_held_answers())

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await super().stop()

    def snapshot_book(self) -> FaultBook:
        with self._book_lock:
            return dataclasses.replace(self.book, injected=dict(self.book.injected),
                                       answers=OrderedDict(self.book.answers),
                                       connects=list(self.book.connects),
                                       disconnects=list(self.book.disconnects))

    def _count(self, name: str, n: int = 1) -> None:
        with self._book_lock:
            self.book.injected[name] = self.book.injected.get(name, 0) + n

    def _connected(self, info: ConnectionInfo) -> None:
        with self._book_lock:
            self.book.connects.append(time.monotonic())

    def _disconnected(self, info: ConnectionInfo) -> None:
        with self._book_lock:
            self.book.disconnects.append(time.monotonic())
            held = self._held.pop(info.cid, [])
            self.book.unanswered_submits += len(held)
        self._held_since.pop(info.cid, None)
        self._old_en1.pop(info.cid, None)

    def _working(self) -> list[_Conn]:
        return [c for c in list(self._conns.values()) if c.got_work and not c.closed]

    # ------------------------------------------------------------------ the wire
    def _send(self, conn: _Conn, line: str) -> None:
        if self._capture is not None:
            self._capture.append(line)
            return
        if time.monotonic() < self._stall_until:
            with self._book_lock:
                self.book.dropped_lines += 1
            return
        super()._send(conn, line)

    def _raw(self, conn: _Conn, data: bytes) -> None:
        if not conn.closed and not conn.writer.transport.is_closing():
            conn.writer.write(data)

    def _on_line(self, conn: _Conn, line: bytes) -> None:
        try:
            msg = decode_line(line)
        except StratumError:
            msg = None
        submit = isinstance(msg, Request) and msg.method == "mining.submit"
        self._capture = []
        try:
            super()._on_line(conn, line)
        finally:
            out, self._capture = self._capture, None
        key: tuple[str, int] | None = None
        if submit and isinstance(msg, Request):
            p = msg.params
            with contextlib.suppress(ValueError, TypeError, IndexError):
                key = (str(p[1]), int(p[4], 16))
        for text in out:
            if submit:
                text = self._answer(conn, text, key)
                if not text:
                    continue
            self._send(conn, text)

    def _answer(self, conn: _Conn, text: str, key: tuple[str, int] | None) -> str:
        """A submit's answer after the lies in force; '' when it is held back."""
        try:
            resp = json.loads(text)
        except ValueError:
            return text
        ok = resp.get("result") is True and resp.get("error") is None
        if ok and self._flip_left > 0:
            self._flip_seen += 1
            if self._flip_seen % self._flip_every == 0:
                self._flip_left -= 1
                ok = False
                text = encode_response(resp.get("id"), False,
                                       make_error(20, FLIPPED_REASON))
                with self._book_lock:
                    self.book.flipped += 1
        stalled = time.monotonic() < self._stall_until
        with self._book_lock:
            if key is not None:
                answers = self.book.answers
                answers[key] = None if stalled else ok
                answers.move_to_end(key)    # a resubmitted key counts as the newest
                while len(answers) > MAX_ANSWERS_KEPT:   # the oldest go first
                    answers.popitem(last=False)
            if stalled:
                self.book.unanswered_submits += 1
            elif ok:
                self.book.answered_true += 1
            else:
                self.book.answered_false += 1
        if stalled:
            return text             # dropped by _send
        if self._reorder_left > 0:
            self._reorder_left -= 1
            held = self._held.setdefault(conn.cid, [])
            held.append(text)
            self._held_since.setdefault(conn.cid, time.monotonic())
            if len(held) >= 4 or self._reorder_left == 0:
                self._release(conn)
            return ""
        return text

    def _release(self, conn: _Conn) -> None:
        held = self._held.pop(conn.cid, [])
        self._held_since.pop(conn.cid, None)
        if len(held) > 1:
            with self._book_lock:
                self.book.reordered += len(held)
        for text in reversed(held):
            self._send(conn, text)

    async def _flush_held_answers(self) -> None:
        """Answers held for reordering wait half a second at most (a lone one too)."""
        while True:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            for cid, since in list(self._held_since.items()):
                conn = self._conns.get(cid)
                if conn is not None and now - since >= 0.5:
                    self._release(conn)

    # ------------------------------------------------------------------ session hooks
    def _on_authorize(self, conn: _Conn, req: Request) -> Any:
        if self._refuse_auth > 0:
            self._refuse_auth -= 1
            with self._book_lock:
                self.book.authorizations_refused += 1
            raise Reject(24, "Unauthorized worker (refused by the fault pool)")
        return super()._on_authorize(conn, req)

    def _maybe_send_work(self, conn: _Conn) -> None:
        had = conn.got_work
        super()._maybe_send_work(conn)
        if conn.got_work and not had and self._drop_after_work > 0:
            n = self._drop_after_work
            self._drop_after_work -= 1
            loop = asyncio.get_running_loop()
            if n % 2:   # half the storm: dropped; the other half: told to reconnect
                loop.call_later(0.2, self._close, conn)
            else:
                loop.call_later(0.2, self._send, conn,
                                encode_request(None, "client.reconnect", [self.host, self.port, 0]))

    def _check_submit(self, conn: _Conn, p: list[Any], worker: str | None) -> bool:
        old = self._old_en1.get(conn.cid)
        swap = old is not None and len(p) > 1 and p[1] in old[0]
        current = conn.extranonce1
        if swap and old is not None:
            conn.extranonce1 = old[1]   # a job issued before the change: the old extranonce1
        try:
            return super()._check_submit(conn, p, worker)
        except Reject as rej:
            if rej.reason == LOW_DIFFICULTY and self._right_for_replaced(conn, p):
                with self._book_lock:
                    self.book.stale_by_fault += 1
                raise Reject.stale() from None
            raise
        finally:
            conn.extranonce1 = current

    def _right_for_replaced(self, conn: _Conn, p: list[Any]) -> bool:
        """Whether a share the pool refused as low difficulty meets the target for data the
        pool replaced under the same job id (a reused id).  Called while the extranonce1
        that applies to the share's job is in place: a share of a job sent after an
        extranonce change that still uses the old one stays refused as invalid."""
        for job in self._reused.get(p[1], ()):
            rules = ShareRules(extranonce1=conn.extranonce1, extranonce2_size=self.extranonce2_size,
                               version_mask=conn.version_mask, target=conn.target,
                               version_reading=self.version_reading)
            try:
                check_share(job, p, rules, set(), now=time.time())
            except Reject:
                continue
            return True
        return False

    # ------------------------------------------------------------------ faults
    async def inject(self, name: str, **options: Any) -> int:
        """Inject the fault ``name`` (one of FAULTS); returns how many clients it touched
        (or notifies/answers it covers)."""
        method: Callable[..., int] | None = getattr(self, f"_fault_{name}", None)
        if name not in FAULTS or method is None:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        self._count(name)
        log.info("fault pool: injecting %s %s", name, options or "")
        result = method(**options)
        if asyncio.iscoroutine(result):
            result = await result
        return int(result)

    def _fault_close_mid_line(self) -> int:
        conns = self._working()
        job = self.current_job
        line = encode_request(None, "mining.notify", job.notify_params() if job else []).encode()
        for conn in conns:
            self._raw(conn, line[:len(line) // 2])
            self._close(conn)
        return len(conns)

    def _fault_stall(self, seconds: float = 5.0) -> int:
        self._stall_until = time.monotonic() + seconds
        return len(self._working())

    def _send_lines(self, lines: tuple[bytes, ...] | list[bytes]) -> int:
        conns = self._working()
        for conn in conns:
            for data in lines:
                self._raw(conn, data)
        return len(conns)

    def _fault_garbage(self) -> int:
        return self._send_lines(list(GARBAGE_LINES) + [os.urandom(200).replace(b"\n", b"") + b"\n"])

    def _fault_long_line(self, size: int = MAX_LINE_BYTES + 4096) -> int:
        pad = "a" * size
        return self._send_lines([(json.dumps({"id": None, "method": "client.show_message",
                                               "params": [pad]}) + "\n").encode()])

    def _fault_invalid_json(self) -> int:
        return self._send_lines(INVALID_JSON_LINES)

    def _fault_wrong_types(self) -> int:
        return self._send_lines(WRONG_TYPE_LINES)

    def _fault_absurd_difficulty(self) -> int:
        """Absurd values on the wire; the pool's real difficulty is sent again after them
        (a miner that took 1e300 finds nothing until then; one that took 0 or a negative
        would send shares the books refuse)."""
        conns = self._working()
        for conn in conns:
            for data in ABSURD_DIFFICULTY_LINES:
                self._raw(conn, data)
            self._send(conn, encode_request(None, "mining.set_difficulty", [conn.difficulty]))
        self._issue_job(clean=True)   # a lower difficulty applies from the next job
        return len(conns)

    def _fault_reuse_job_id(self) -> int:
        """A new block's job sent under the current job's id (the old data goes)."""
        cur = self.current_job
        if cur is None:
            return 0
        fresh = self._maker.make(True)
        job = dataclasses.replace(fresh, job_id=cur.job_id)
        self._reused.setdefault(cur.job_id, []).append(cur)
        while len(self._reused) > 16:
            self._reused.pop(next(iter(self._reused)))
        self._jobs.clear()
        self._jobs[job.job_id] = job
        self._seen[job.job_id] = set()
        self._ledger.job_issued()
        line = encode_request(None, "mining.notify", job.notify_params(clean=True))
        conns = self._working()
        for conn in conns:
            self._send(conn, line)
        return len(conns)

    def _fault_extranonce_change(self) -> int:
        """mining.set_extranonce in the middle of a job: the current job keeps the old
        extranonce1 (the change applies from the next notify), a job sent later the new.

        Not while the pool is stalled: the stall would drop the set_extranonce line while
        the pool's side changed, and every later share would be refused as invalid -- a
        pool at odds with itself, not a fault of the miner's (the soak found it)."""
        if time.monotonic() < self._stall_until:
            return 0
        conns = self._working()
        for conn in conns:
            old = conn.extranonce1
            self._old_en1[conn.cid] = (frozenset(self._jobs), old)
            conn.extranonce1 = bytes(b ^ 0x5A for b in old)
            self._send(conn, encode_request(None, "mining.set_extranonce",
                                            [conn.extranonce1.hex(), self.extranonce2_size]))
        return len(conns)

    async def _fault_notify_flood(self, per_second: int = 1000, seconds: float = 2.0) -> int:
        sent = 0
        tick = 0.01
        end = time.monotonic() + seconds
        per_tick = max(1, int(per_second * tick))
        while time.monotonic() < end:
            for _ in range(per_tick):
                sent += 1
                self._issue_job(clean=sent % 100 == 0)
            await asyncio.sleep(tick)
        self._issue_job(clean=True)
        with self._book_lock:
            self.book.notifies_flooded += sent
        return sent

    def _fault_reconnect_storm(self, times: int = 6) -> int:
        conns = self._working()
        self._drop_after_work = times - 1
        for conn in conns:
            self._close(conn)
        return len(conns)

    def _fault_refuse_auth(self, times: int = 2) -> int:
        conns = self._working()
        self._refuse_auth = times
        for conn in conns:
            self._close(conn)   # the next sessions must authorize again
        return len(conns)

    def _fault_flip_answers(self, count: int = 5, every: int = 2) -> int:
        self._flip_every, self._flip_left, self._flip_seen = max(1, every), count, 0
        return count

    def _fault_reorder_answers(self, count: int = 12) -> int:
        self._reorder_left = count
        return count

    def _issue_job(self, clean: bool) -> PoolJob:
        job = super()._issue_job(clean)
        if clean:
            self._reused.clear()
        return job


class FaultPoolThread(PoolThread):
    """A FaultPool on a loop thread of its own (see :class:`PoolThread`)."""

    pool_class = FaultPool

    @property
    def fault_pool(self) -> FaultPool:
        pool = self._pool()
        assert isinstance(pool, FaultPool)
        return pool

    def inject(self, name: str, timeout: float = 60.0, **options: Any) -> int:
        return self._call(self.fault_pool.inject(name, **options), timeout)

    @property
    def book(self) -> FaultBook:
        return self.fault_pool.snapshot_book()


def random_fault(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """A fault and options that a soak run can inject without waiting long."""
    name = rng.choice(FAULTS)
    options: dict[str, Any] = {}
    if name == "stall":
        options["seconds"] = rng.uniform(1.0, 8.0)   # at times past a keep-alive of a few s
    elif name == "notify_flood":
        options["seconds"] = rng.uniform(0.5, 1.5)
    elif name == "reconnect_storm":
        options["times"] = rng.randint(2, 4)
    elif name == "refuse_auth":
        options["times"] = 1
    return name, options


@dataclass(frozen=True)
class LedgerCheck:
    """The miner's ledger (its summary) and whether it adds up exactly: every candidate a
    device reported is found, stale before the check, dropped by the pool's rules of now,
    a duplicate or a hardware error; every share found is accepted, rejected, refused
    stale, unanswered or never sent."""

    candidates: int
    found: int
    stale_unchecked: int
    rules_dropped: int
    accepted: int
    rejected: int
    rejected_stale: int
    stale: int
    unanswered: int
    unsent: int
    duplicates: int
    hw_errors: int

    @classmethod
    def of(cls, summary: dict[str, Any], snapshot: dict[str, Any] | None = None) -> LedgerCheck:
        return cls(candidates=int(summary["candidates"]), found=int(summary["found"]),
                   stale_unchecked=int(summary["stale_unchecked"]),
                   rules_dropped=int(summary["rules_dropped"]),
                   accepted=int(summary["accepted"]), rejected=int(summary["rejected"]),
                   rejected_stale=int(summary["rejected_stale"]), stale=int(summary["stale"]),
                   unanswered=int(summary["unanswered"]), unsent=int(summary["unsent"]),
                   duplicates=int(summary["duplicates"]), hw_errors=int(summary["hw_errors"]))

    @property
    def answered(self) -> int:
        """Shares the pool answered (either way)."""
        return self.accepted + self.rejected + self.rejected_stale

    @property
    def balances(self) -> bool:
        return (self.candidates == self.found + self.stale_unchecked + self.rules_dropped
                + self.duplicates + self.hw_errors
                and self.found == self.answered + self.unanswered + self.unsent)
