"""The Stratum v1 client protocol as a pure state machine (no sockets, no clock).

Feed it the lines the pool sends with :meth:`StratumProtocol.feed`; it returns events
(:class:`NewJob`, :class:`DifficultyChanged`, :class:`SubmitResult`, ...).  Calls that
send something (:meth:`start`, :meth:`submit`, replies to server requests) queue lines
that the transport takes with :meth:`data_to_send`.  Malformed input never raises out of
``feed``: it becomes a logged :class:`ProtocolError` event (``fatal=True`` when the
session cannot go on, e.g. a refused subscribe).
"""
from __future__ import annotations

import json
import logging
import math
import re
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

from sgm.bitcoin import DEFAULT_VERSION_MASK
from sgm.checks import HEX_RE, is_int, is_number
from sgm.hashing import MAX_TARGET, difficulty_to_target, target_to_difficulty
from sgm.jobs import MAX_EXTRANONCE2_SIZE, Job, JobError, Share
from sgm.stratum.messages import (
    Request,
    Response,
    StratumError,
    decode_line,
    encode_request,
    encode_response,
    parse_error,
)

__all__ = [
    "Event", "Subscribed", "Authorized", "VersionRollingConfigured", "VersionMaskChanged",
    "NewJob", "DifficultyChanged", "ExtranonceChanged", "SubmitResult", "Reconnect",
    "ServerMessage", "ProtocolError", "Connected", "Disconnected", "StratumProtocol",
    "DEFAULT_VERSION_MASK",
]

log = logging.getLogger(__name__)

_MAX_EXTRANONCE1 = 64
#: Requests awaiting an answer, at most: a pool that never answers cannot grow the session.
MAX_PENDING_REQUESTS = 1024


# ----------------------------------------------------------------------------- events
@dataclass(frozen=True)
class Event:
    """Base class of everything the protocol (and the client) reports."""


@dataclass(frozen=True)
class Subscribed(Event):
    extranonce1: str
    extranonce2_size: int
    subscriptions: Any = None


@dataclass(frozen=True)
class Authorized(Event):
    ok: bool
    reason: str | None = None


@dataclass(frozen=True)
class VersionRollingConfigured(Event):
    """Answer to mining.configure: ``mask`` granted (0 = no version rolling)."""
    mask: int
    requested: int


@dataclass(frozen=True)
class VersionMaskChanged(Event):
    """mining.set_version_mask.  ``job``: the current job rebuilt with the new mask (or None)."""
    mask: int
    job: Job | None = None


@dataclass(frozen=True)
class NewJob(Event):
    """A new job to mine.  ``clean``: drop all older work now (the pool said so, or this is
    the first job of a session or after an extranonce change)."""
    job: Job
    clean: bool


@dataclass(frozen=True)
class DifficultyChanged(Event):
    """mining.set_difficulty / mining.set_target.  Applies to the next job; ``job`` is the
    current job with the new target, for a miner that wants to apply it at once."""
    difficulty: float
    target: int
    job: Job | None = None


@dataclass(frozen=True)
class ExtranonceChanged(Event):
    """mining.set_extranonce: takes effect with the next mining.notify."""
    extranonce1: str
    extranonce2_size: int


@dataclass(frozen=True)
class SubmitResult(Event):
    id: int
    accepted: bool
    reason: str | None = None
    code: int | None = None
    share: Share | None = None


@dataclass(frozen=True)
class Reconnect(Event):
    """client.reconnect: host/port None mean "the same as now"; wait in seconds."""
    host: str | None = None
    port: int | None = None
    wait: float = 0.0


@dataclass(frozen=True)
class ServerMessage(Event):
    text: str


@dataclass(frozen=True)
class ProtocolError(Event):
    """Something the pool sent was refused.  ``fatal``: the session should be dropped."""
    message: str
    line: str | None = None
    fatal: bool = False


@dataclass(frozen=True)
class Connected(Event):
    """(client) connected to a pool."""
    url: str


@dataclass(frozen=True)
class Disconnected(Event):
    """(client) the connection to a pool ended."""
    url: str
    reason: str


@dataclass
class _Pending:
    kind: str
    share: Share | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class _SubmitHeads(dict[tuple[str, str], str]):
    """The start of a mining.submit line after its id, by (worker, job id): made with
    json once per pair (a few are live at a time; the oldest are forgotten)."""

    LIMIT = 64

    def __missing__(self, key: tuple[str, str]) -> str:
        worker, job_id = key
        head = f',"method":"mining.submit","params":[{_dumps_str(worker)},{_dumps_str(job_id)},'
        if len(self) >= self.LIMIT:
            del self[next(iter(self))]
        self[key] = head
        return head


#: a longer head (a worker name or job id of kilobytes) takes encode_request's way, which
#: refuses a line over MAX_LINE_BYTES
_FAST_HEAD_MAX = 4096


#: an accepted share's answer as pools write it: {"id":N,"result":true,"error":null}, the
#: keys in this order or result/error/id, with or without spaces after , and :
_ACCEPTED = re.compile(rb'\s*\{\s*(?:"id"\s*:\s*(0|[1-9]\d{0,14})\s*,\s*"result"\s*:\s*true\s*,\s*"error"\s*:\s*null'
                       rb'|"result"\s*:\s*true\s*,\s*"error"\s*:\s*null\s*,\s*"id"\s*:\s*(0|[1-9]\d{0,14}))'
                       rb'\s*\}\s*')


def _dumps_str(text: str) -> str:
    return json.dumps(text, separators=(",", ":"))


def _short(text: str | bytes | None, n: int = 200) -> str | None:
    if text is None:
        return None
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text[:n]).decode("utf-8", "replace")
    return text[:n]


# --------------------------------------------------------------------------- protocol
class StratumProtocol:
    """Client side of one Stratum v1 session."""

    def __init__(self, user: str, password: str = "x", *, agent: str = "sgm/0.1",
                 version_rolling: bool = True, requested_mask: int = DEFAULT_VERSION_MASK,
                 min_bit_count: int = 2, extranonce_subscribe: bool = False,
                 suggest_difficulty: float | None = None, max_jobs: int = 32) -> None:
        self.user = user
        self.password = password
        self.agent = agent
        self.version_rolling = version_rolling
        self.requested_mask = requested_mask & 0xFFFFFFFF
        self.min_bit_count = min_bit_count
        self.extranonce_subscribe = extranonce_subscribe
        self.suggest_difficulty = suggest_difficulty
        self.max_jobs = max_jobs

        self.subscribed = False
        self.authorized = False
        self.extranonce1: bytes | None = None
        self.extranonce2_size = 0
        self.difficulty: float = 1.0
        self.target: int = difficulty_to_target(1)
        self.version_mask = 0
        self.current_job: Job | None = None
        self.jobs: OrderedDict[str, Job] = OrderedDict()

        self._next_id = 1
        self._heads: _SubmitHeads | None = None
        self._pending: dict[int, _Pending] = {}
        self._outbox: list[str] = []
        self._pending_extranonce: tuple[bytes, int] | None = None
        self._buffered_notify: list[Any] | None = None
        self._force_clean = True  # first job of a session replaces whatever ran before

    # ------------------------------------------------------------------ outgoing
    def _request(self, method: str, params: list[Any], kind: str | None = None,
                 share: Share | None = None) -> int:
        msg_id = self._next_id
        self._next_id += 1
        self._outbox.append(encode_request(msg_id, method, params))
        self._pending[msg_id] = _Pending(kind or method, share)
        if len(self._pending) > MAX_PENDING_REQUESTS:
            self._trim_pending()
        return msg_id

    def forget(self, msg_id: int) -> None:
        """Stop waiting for the answer to request ``msg_id`` (a late one is then ignored)."""
        self._pending.pop(msg_id, None)

    def data_to_send(self) -> bytes:
        """Everything queued for the pool since the last call, as bytes."""
        data = "".join(self._outbox).encode("utf-8")
        self._outbox.clear()
        return data

    def start(self) -> None:
        """Queue the session opening: configure (version rolling), subscribe,
        extranonce.subscribe (optional), authorize, suggest_difficulty (optional)."""
        if self.version_rolling:
            self._request("mining.configure", [["version-rolling"], {
                "version-rolling.mask": f"{self.requested_mask:08x}",
                "version-rolling.min-bit-count": self.min_bit_count}])
        self._request("mining.subscribe", [self.agent])
        if self.extranonce_subscribe:
            self._request("mining.extranonce.subscribe", [])
        self._request("mining.authorize", [self.user, self.password])
        if self.suggest_difficulty is not None:
            self._request("mining.suggest_difficulty", [self.suggest_difficulty])

    def submit(self, share: Share, worker: str | None = None) -> int:
        """Queue mining.submit for ``share``; returns the request id its SubmitResult carries."""
        params = share.submit_params(worker if worker is not None else self.user)
        # a flood submits thousands a second: the line is formatted directly, the same
        # JSON that encode_request makes; the worker and job id (anyone's text) are
        # encoded by json once each, the rest are hex digits of our own (checked here)
        head = self._submit_heads[(params[0], params[1])]
        if len(head) > _FAST_HEAD_MAX or not all(p.isascii() and p.isalnum() for p in params[2:]):
            return self._request("mining.submit", params, kind="submit", share=share)
        msg_id = self._next_id
        self._next_id += 1
        hexes = '","'.join(params[2:])
        self._outbox.append(f'{{"id":{msg_id}{head}"{hexes}"]}}\n')
        self._pending[msg_id] = _Pending("submit", share)
        if len(self._pending) > MAX_PENDING_REQUESTS:
            self._trim_pending()
        return msg_id

    @property
    def _submit_heads(self) -> _SubmitHeads:
        heads = self._heads
        if heads is None:
            heads = self._heads = _SubmitHeads()
        return heads

    def _trim_pending(self) -> None:
        while len(self._pending) > MAX_PENDING_REQUESTS:  # oldest unanswered first
            dropped = next(iter(self._pending))
            log.debug("stratum: request %d never answered; forgotten", dropped)
            del self._pending[dropped]

    @property
    def pending_submits(self) -> int:
        return sum(1 for p in self._pending.values() if p.kind == "submit")

    def knows_share_job(self, share: Share) -> bool:
        """True when the share's job belongs to this session (same job and extranonce1)."""
        job = self.jobs.get(share.job_id)
        if job is None:
            return False
        return not share.extranonce1 or share.extranonce1 == job.extranonce1.hex()

    # ------------------------------------------------------------------ incoming
    def feed(self, line: str | bytes) -> list[Any]:
        """Process one line from the pool and return the resulting events."""
        if isinstance(line, bytes):
            # most of a flood's lines are "share accepted": taken without the JSON
            # decoder when they have one of the usual exact shapes; anything else (or an
            # id not awaited as a share) goes the general way below
            m = _ACCEPTED.fullmatch(line)
            if m is not None:
                msg_id = int(m[1] or m[2])
                pending = self._pending.get(msg_id)
                if pending is not None and pending.kind == "submit":
                    del self._pending[msg_id]
                    return [SubmitResult(msg_id, True, None, None, pending.share)]
        try:
            msg = decode_line(line)
        except StratumError as exc:
            return [self._error(f"malformed line from pool: {exc}", line)]
        try:
            if isinstance(msg, Request):
                return self._on_request(msg)
            return self._on_response(msg)
        except (StratumError, JobError, ValueError, TypeError, KeyError, IndexError) as exc:
            return [self._error(f"cannot handle message: {exc}", line)]

    def _error(self, message: str, line: str | bytes | None = None, fatal: bool = False) -> ProtocolError:
        log.warning("stratum: %s%s", message, f" | line: {_short(line)!r}" if line is not None else "")
        return ProtocolError(message, _short(line), fatal)

    # requests / notifications from the pool
    def _on_request(self, req: Request) -> list[Any]:
        handler = {
            "mining.notify": self._on_notify,
            "mining.set_difficulty": self._on_set_difficulty,
            "mining.set_target": self._on_set_target,
            "mining.set_extranonce": self._on_set_extranonce,
            "mining.set_version_mask": self._on_set_version_mask,
            "client.reconnect": self._on_reconnect,
            "client.show_message": self._on_show_message,
            "client.get_version": self._on_get_version,
            "mining.ping": self._on_ping,
        }.get(req.method)
        if handler is None:
            log.info("stratum: ignoring unsupported method %s", req.method)
            return []
        return handler(req)

    def _on_notify(self, req: Request) -> list[Any]:
        if self.extranonce1 is None:
            log.debug("stratum: notify before subscribe result; buffered")
            self._buffered_notify = list(req.params)
            return []
        return self._build_job(list(req.params))

    def _build_job(self, params: list[Any]) -> list[Any]:
        events: list[Any] = []
        if self._pending_extranonce is not None:
            self.extranonce1, self.extranonce2_size = self._pending_extranonce
            self._pending_extranonce = None
            self._force_clean = True
        assert self.extranonce1 is not None
        try:
            job = Job.from_notify(params, extranonce1=self.extranonce1,
                                  extranonce2_size=self.extranonce2_size, target=self.target,
                                  version_mask=self.version_mask)
        except JobError as exc:
            job_id = params[0] if params and isinstance(params[0], str) else "?"
            events.append(self._error(f"refused job {job_id!r}: {exc}", repr(params)))
            return events
        clean = job.clean_jobs or self._force_clean
        self._force_clean = False
        # Older jobs stay known (bounded): whether a share for one is stale is the pool's call.
        self.jobs[job.job_id] = job
        self.jobs.move_to_end(job.job_id)
        while len(self.jobs) > self.max_jobs:
            self.jobs.popitem(last=False)
        self.current_job = job
        log.debug("stratum: new %s", job.describe())
        events.append(NewJob(job, clean))
        return events

    def _set_target(self, difficulty: float, target: int) -> list[Any]:
        self.difficulty = difficulty
        self.target = target
        retargeted = self.current_job.with_target(target) if self.current_job is not None else None
        log.info("stratum: difficulty %.6g", difficulty)
        return [DifficultyChanged(difficulty, target, retargeted)]

    def _on_set_difficulty(self, req: Request) -> list[Any]:
        if not req.params or not is_number(req.params[0]):
            raise StratumError(f"mining.set_difficulty: expected [number], got {req.params!r}")
        diff = req.params[0]
        if isinstance(diff, float) and not math.isfinite(diff):
            raise StratumError(f"mining.set_difficulty: {diff!r} is not finite")
        try:
            target = difficulty_to_target(diff)
        except ValueError as exc:
            raise StratumError(f"mining.set_difficulty: {exc}") from None
        return self._set_target(float(diff), target)

    def _on_set_target(self, req: Request) -> list[Any]:
        if not req.params or not isinstance(req.params[0], str) or len(req.params[0]) != 64 \
                or not HEX_RE.match(req.params[0]):
            raise StratumError(f"mining.set_target: expected [64 hex digits], got {req.params!r}")
        target = int(req.params[0], 16)
        if not 0 < target <= MAX_TARGET:
            raise StratumError("mining.set_target: target must not be 0")
        return self._set_target(target_to_difficulty(target), target)

    def _parse_extranonce(self, en1: Any, en2_size: Any, what: str) -> tuple[bytes, int]:
        if not isinstance(en1, str) or len(en1) % 2 or not HEX_RE.match(en1) or len(en1) > 2 * _MAX_EXTRANONCE1:
            raise StratumError(f"{what}: extranonce1 must be hex (<= {_MAX_EXTRANONCE1} bytes), got {en1!r}")
        if not is_int(en2_size) or not 0 <= en2_size <= MAX_EXTRANONCE2_SIZE:
            raise StratumError(f"{what}: extranonce2_size must be an int 0..{MAX_EXTRANONCE2_SIZE}, got {en2_size!r}")
        return bytes.fromhex(en1), en2_size

    def _on_set_extranonce(self, req: Request) -> list[Any]:
        if len(req.params) < 2:
            raise StratumError(f"mining.set_extranonce: expected [extranonce1, size], got {req.params!r}")
        en1, size = self._parse_extranonce(req.params[0], req.params[1], "mining.set_extranonce")
        if self.extranonce1 is None:
            self.extranonce1, self.extranonce2_size = en1, size
        else:
            self._pending_extranonce = (en1, size)
        log.info("stratum: extranonce1 %s, extranonce2_size %d from the next job", en1.hex(), size)
        return [ExtranonceChanged(en1.hex(), size)]

    def _on_set_version_mask(self, req: Request) -> list[Any]:
        if not req.params or not isinstance(req.params[0], str) or len(req.params[0]) != 8 \
                or not HEX_RE.match(req.params[0]):
            raise StratumError(f"mining.set_version_mask: expected [8 hex digits], got {req.params!r}")
        mask = int(req.params[0], 16) & self.requested_mask if self.version_rolling else 0
        self.version_mask = mask
        job = replace(self.current_job, version_mask=mask) if self.current_job is not None else None
        log.info("stratum: version mask %08x", mask)
        return [VersionMaskChanged(mask, job)]

    def _on_reconnect(self, req: Request) -> list[Any]:
        p = req.params
        host = p[0] if len(p) > 0 and isinstance(p[0], str) and p[0] else None
        port: int | None = None
        if len(p) > 1:
            raw = p[1]
            if isinstance(raw, str) and raw.isdigit():
                raw = int(raw)
            if is_int(raw) and 0 < raw < 65536:
                port = raw
        wait = 0.0
        if len(p) > 2 and (is_number(p[2]) or (isinstance(p[2], str) and p[2].isdigit())):
            wait = min(max(float(p[2]), 0.0), 3600.0)
        log.info("stratum: pool asks to reconnect to %s:%s in %.0fs", host or "(same host)",
                 port or "(same port)", wait)
        return [Reconnect(host, port, wait)]

    def _on_show_message(self, req: Request) -> list[Any]:
        text = str(req.params[0]) if req.params else ""
        log.info("stratum: message from pool: %s", text[:500])
        return [ServerMessage(text)]

    def _on_get_version(self, req: Request) -> list[Any]:
        if req.id is not None:
            self._outbox.append(encode_response(req.id, self.agent))
        return []

    def _on_ping(self, req: Request) -> list[Any]:
        if req.id is not None:
            self._outbox.append(encode_response(req.id, "pong"))
        return []

    # responses to our requests
    def _on_response(self, resp: Response) -> list[Any]:
        pending = self._pending.pop(resp.id, None) if isinstance(resp.id, int) else None
        if pending is None:
            log.debug("stratum: response to unknown id %r ignored", resp.id)
            return []
        kind = pending.kind
        if kind == "submit":
            accepted = resp.error is None and resp.result is True
            reason = None if accepted else (resp.error_message or resp.reject_reason or "rejected")
            code = resp.error_code
            if accepted:
                log.debug("stratum: share %d accepted", resp.id)
            else:
                log.info("stratum: share %d rejected: %s", resp.id, reason)
            return [SubmitResult(int(resp.id), accepted, reason, code, pending.share)]  # type: ignore[arg-type]
        if kind == "mining.subscribe":
            return self._on_subscribe_result(resp)
        if kind == "mining.authorize":
            ok = resp.error is None and resp.result is True
            self.authorized = ok
            reason = None if ok else (resp.error_message or "authorization refused")
            if not ok:
                log.warning("stratum: worker %r not authorized: %s", self.user, reason)
            return [Authorized(ok, reason)]
        if kind == "mining.configure":
            return self._on_configure_result(resp)
        if not resp.ok:
            parsed = parse_error(resp.error)
            log.info("stratum: %s refused: %s", kind, parsed[1] if parsed else resp.result)
        return []

    def _on_subscribe_result(self, resp: Response) -> list[Any]:
        if resp.error is not None or not isinstance(resp.result, list) or len(resp.result) < 3:
            msg = resp.error_message if resp.error is not None else f"unexpected subscribe result {resp.result!r}"
            return [self._error(f"subscribe failed: {msg}", fatal=True)]
        try:
            en1, size = self._parse_extranonce(resp.result[1], resp.result[2], "subscribe result")
        except StratumError as exc:
            return [self._error(str(exc), fatal=True)]
        self.subscribed = True
        self.extranonce1, self.extranonce2_size = en1, size
        self._pending_extranonce = None
        events: list[Any] = [Subscribed(en1.hex(), size, resp.result[0])]
        if self._buffered_notify is not None:
            params, self._buffered_notify = self._buffered_notify, None
            events.extend(self._build_job(params))
        return events

    def _on_configure_result(self, resp: Response) -> list[Any]:
        mask = 0
        result = resp.result
        if resp.error is None and isinstance(result, dict) and result.get("version-rolling") is True:
            raw = result.get("version-rolling.mask")
            if isinstance(raw, str) and len(raw) <= 8 and raw and HEX_RE.match(raw):
                mask = int(raw, 16) & self.requested_mask
            else:
                log.warning("stratum: version-rolling granted without a valid mask (%r); not rolling", raw)
        if mask == 0:
            log.info("stratum: version rolling not available")
        self.version_mask = mask
        return [VersionRollingConfigured(mask, self.requested_mask)]
