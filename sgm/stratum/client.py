"""asyncio Stratum v1 client: a thin socket shell around :class:`StratumProtocol`.

``StratumClient.run()`` connects, opens the session (configure / subscribe / authorize),
hands every new job to ``on_job`` and every change of the current job's rules (a higher difficulty, a new
version mask) to ``on_job_update``, every event to ``on_event``, and reconnects with
exponential backoff.  Several pools can be given in priority order: after repeated
failures (or a refused authorization) it moves to the next one, and while on a backup
it probes the better pools every ``failback_interval`` seconds and returns to them.

All methods run on the event loop thread.  From a worker thread, use
``asyncio.run_coroutine_threadsafe(client.submit(share), loop)`` for one share, or
``loop.call_soon_threadsafe(client.submit_many, items, sink)`` for many: a flood of shares
then costs one write and one wake-up per batch, and the verdicts come back in batches.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import ipaddress
import logging
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar
from urllib.parse import unquote, urlsplit

from sgm.jobs import Job, Share
from sgm.stratum.messages import MAX_LINE_BYTES
from sgm.stratum.protocol import (
    DEFAULT_VERSION_MASK,
    Authorized,
    Connected,
    DifficultyChanged,
    Disconnected,
    NewJob,
    ProtocolError,
    Reconnect,
    StratumProtocol,
    SubmitResult,
    VersionMaskChanged,
)

__all__ = ["PoolEndpoint", "parse_pool_url", "StratumClient", "Verdict", "PLAIN_SCHEMES",
           "TLS_SCHEMES"]

log = logging.getLogger(__name__)

PLAIN_SCHEMES = frozenset({"stratum+tcp", "stratum", "tcp"})
TLS_SCHEMES = frozenset({"stratum+ssl", "stratum+tcps", "stratum+tls", "ssl", "tls"})

Callback = Callable[..., Any] | Callable[..., Awaitable[Any]]

T = TypeVar("T")
#: how much a session reads from the socket at once (many answers in one wake-up)
READ_CHUNK = 1 << 16


#: submit() reasons for shares that never reached the pool (nothing for the pool to reject)
NOT_CONNECTED = "not connected"
DISCONNECTED = "disconnected"
STALE_SESSION = "stale: job unknown to this session"
#: submit() reason for a share the pool received (probably) but never answered
NO_ANSWER = "no answer"
#: Stratum error code of a share for a job the pool no longer knows (stale)
STALE_CODE = 21


@dataclass(frozen=True)
class Verdict:
    """The fate of one submitted share.

    ``accepted``: True/False as the pool answered, None when no answer came (the pool may
    or may not have counted it).  ``sent``: False when the share never reached the pool
    (no connection, or its job belongs to an earlier session): nothing for it to judge.
    """

    accepted: bool | None
    reason: str | None = None
    code: int | None = None
    sent: bool = True

    @property
    def stale(self) -> bool:
        """Refused because its job is gone (the pool's stale), or never sent for that reason."""
        if self.accepted is not False:
            return False
        if not self.sent or self.code == STALE_CODE:
            return True
        text = (self.reason or "").lower()
        return "stale" in text or "job not found" in text

#: the verdict of most shares (frozen: one object serves them all)
_ACCEPTED = Verdict(True)

#: where submit_many() delivers verdicts: a list of (share, tag, verdict), called on the loop
VerdictSink = Callable[[list[tuple[Share, T, Verdict]]], None]


@dataclass(slots=True)
class _Sent(Generic[T]):
    """A share written to the pool, waiting for its answer."""

    share: Share
    tag: T
    sink: VerdictSink[T]
    sent_at: float
    warned: bool = False


@dataclass(frozen=True)
class PoolEndpoint:
    """One pool: where it is and which credentials to use."""

    url: str
    host: str
    port: int
    tls: bool
    user: str = ""
    password: str = "x"

    def __str__(self) -> str:
        scheme = "stratum+ssl" if self.tls else "stratum+tcp"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


#: a URL scheme's name followed by ":" or "/" (a scheme missing its "://")
_SCHEME_HEAD = re.compile(r"^(?:stratum|tcp|ssl|tls)[a-z0-9+.-]*[:/]", re.IGNORECASE)
#: one DNS label: letters, digits, hyphens inside, at most 63 characters (underscores are
#: seen in the wild in internal names, so they are let through)
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$", re.IGNORECASE)


def _valid_host(host: str) -> bool:
    """A DNS name (labels of letters, digits, hyphens) or an IPv4/IPv6 literal."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    return 0 < len(name) <= 253 and all(_LABEL.match(label) for label in name.split("."))


def parse_pool_url(url: str, user: str | None = None, password: str | None = None) -> PoolEndpoint:
    """Parse ``stratum+tcp://host:port`` (or ``stratum+ssl://`` / ``stratum+tcps://``).

    A bare ``host:port`` means stratum+tcp.  Credentials in the URL (``user:pass@``) are
    used unless ``user``/``password`` are given.  Raises ValueError naming the problem.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("pool URL is empty")
    text = url.strip()
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise ValueError(f"pool URL {url!r} must not contain spaces or control characters")
    if "://" not in text:
        # a scheme written without "://" (stratum+tcp//h:1, stratum+tcp:h:1) would otherwise
        # be read as a host named after the scheme
        head = _SCHEME_HEAD.match(text)
        if head is not None or "/" in text:
            raise ValueError(f"pool URL {url!r}: write the scheme as stratum+tcp:// "
                             "(with \"://\") followed by host:port")
        text = "stratum+tcp://" + text
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise ValueError(f"bad pool URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in PLAIN_SCHEMES | TLS_SCHEMES:
        raise ValueError(f"unsupported pool URL scheme {scheme!r} in {url!r}: "
                         "use stratum+tcp://, stratum+ssl:// or stratum+tcps://")
    host = parts.hostname
    if not host:
        raise ValueError(f"pool URL {url!r} has no host")
    if not _valid_host(host):
        raise ValueError(f"pool URL {url!r}: {host!r} is not a valid host name or IP address")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"pool URL {url!r} has an invalid port (must be 1..65535)") from None
    if port is None:
        raise ValueError(f"pool URL {url!r} needs a port (e.g. stratum+tcp://{host}:3333)")
    if port == 0:
        raise ValueError(f"pool URL {url!r}: port 0 is not valid")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"pool URL {url!r}: unexpected path/query after host:port")
    url_user = unquote(parts.username) if parts.username else ""
    url_pass = unquote(parts.password) if parts.password else "x"
    return PoolEndpoint(url=text, host=host, port=port, tls=scheme in TLS_SCHEMES,
                        user=user if user is not None else url_user,
                        password=password if password is not None else url_pass)


def connect_error_words(exc: BaseException) -> str:
    """A failed connect in words a user can act on ("connection refused", "unknown
    host") instead of errno text."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "no answer (timed out)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "the pool's TLS certificate was not accepted"
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "network unreachable"
        if exc.strerror:
            return exc.strerror[:1].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


@dataclass
class _Outcome:
    got_job: bool = False
    auth_failed: bool = False
    reconnect: Reconnect | None = None
    failback_to: int | None = None
    reason: str = ""
    #: the reason in a user's words, where it differs (a status display shows it)
    problem: str = ""


def _ids(ids: list[int]) -> str:
    """Request ids for a log line: all of a few, the range of many."""
    return ", ".join(map(str, ids)) if len(ids) <= 5 else f"{ids[0]}..{ids[-1]} ({len(ids)})"


class StratumClient:
    """Mine one pool (or several in failover order) over Stratum v1.

    ``url`` is a pool URL (with ``user``/``password``) or a sequence of
    ``(url, user, password)`` in priority order; ``failover`` adds more such tuples.
    ``on_job(job)`` is called (sync or async) for each new job; ``job.clean_jobs`` is True
    when all older work must be dropped (pool's flag, first job of a session, extranonce
    change).  ``on_event(event)`` sees every event of :mod:`sgm.stratum.protocol`.
    """

    def __init__(self, url: str | Sequence[tuple[str, str, str]], user: str = "", password: str = "x", *,
                 on_job: Callback, on_job_update: Callback | None = None,
                 on_event: Callback | None = None, agent: str = "sgm/0.1",
                 failover: Sequence[tuple[str, str, str]] = (), connect_timeout: float = 10.0,
                 submit_timeout: float = 10.0, answer_timeout: float = 120.0,
                 idle_timeout: float = 300.0,
                 handshake_timeout: float = 30.0,
                 backoff_initial: float = 1.0, backoff_max: float = 30.0, retries_per_pool: int = 2,
                 failback_interval: float = 60.0, version_rolling: bool = True,
                 version_mask: int = DEFAULT_VERSION_MASK, extranonce_subscribe: bool = False,
                 suggest_difficulty: float | None = None, ssl_verify: bool = True,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        entries: list[tuple[str, str, str]] = [(url, user, password)] if isinstance(url, str) else list(url)
        entries.extend(failover)
        if not entries:
            raise ValueError("no pool given")
        self.pools: list[PoolEndpoint] = [parse_pool_url(u, us, pw) for (u, us, pw) in entries]
        self.on_job = on_job
        self.on_job_update = on_job_update
        self.on_event = on_event
        self.agent = agent
        self.connect_timeout = connect_timeout
        self.submit_timeout = submit_timeout          # then a warning: the pool is slow
        self.answer_timeout = max(answer_timeout, submit_timeout)  # then: no answer
        self.idle_timeout = idle_timeout
        self.handshake_timeout = handshake_timeout  # connect -> first job, at most
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.retries_per_pool = max(1, retries_per_pool)
        self.failback_interval = failback_interval
        self.version_rolling = version_rolling
        self.version_mask = version_mask
        self.extranonce_subscribe = extranonce_subscribe
        self.suggest_difficulty = suggest_difficulty
        self.ssl_verify = ssl_verify
        self._ssl_context = ssl_context

        self.protocol: StratumProtocol | None = None
        self.current_pool: PoolEndpoint | None = None
        self.current_job: Job | None = None
        self.accepted = 0
        self.rejected = 0
        self.stale = 0
        self.jobs_received = 0
        #: round-trip time (ms) of the last share the pool answered: write to verdict
        self.last_submit_ms: float | None = None
        #: the pool a session is open or being opened with (None between attempts)
        self.attempting: PoolEndpoint | None = None
        #: why each pool's last session failed, in plain words (e.g. "cannot connect to
        #: h:1: connection refused"), by pool index; cleared once the pool sends a job
        self.last_errors: dict[int, str] = {}
        #: while waiting to reconnect: (pool index, time.monotonic() of the next attempt)
        self.retry_at: tuple[int, float] | None = None
        self._writer: asyncio.StreamWriter | None = None
        #: shares written to the pool and not answered yet, by request id, oldest first
        self._sent: dict[int, _Sent[Any]] = {}
        #: verdicts gathered while handling what one read brought, delivered after it
        self._verdicts: dict[VerdictSink[Any], list[tuple[Share, Any, Verdict]]] = {}
        self._answered_sent_at: float | None = None
        self._closing = False
        self._wake: asyncio.Event | None = None
        self._have_job: asyncio.Event | None = None
        #: a pool index run() opens next (switch_to), ending the session in progress
        self._switch_to: int | None = None

    # ------------------------------------------------------------------ state
    @property
    def connected(self) -> bool:
        return self._writer is not None and self.protocol is not None

    @property
    def difficulty(self) -> float | None:
        return self.protocol.difficulty if self.protocol is not None else None

    def _events(self) -> tuple[asyncio.Event, asyncio.Event]:
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._have_job is None:
            self._have_job = asyncio.Event()
        return self._wake, self._have_job

    async def wait_for_job(self, timeout: float | None = None) -> Job:
        """Wait until a job is available (connect and authorize first); returns it."""
        _, have_job = self._events()
        await asyncio.wait_for(have_job.wait(), timeout)
        assert self.current_job is not None
        return self.current_job

    # ------------------------------------------------------------------ public API
    async def run(self) -> None:
        """Connect and keep mining until close(); reconnects/fails over on its own."""
        wake, _ = self._events()
        idx, failures, delay = 0, 0, self.backoff_initial
        override: tuple[str, int] | None = None
        while not self._closing:
            if self._switch_to is not None:   # switch_to(): this pool next, at once
                idx, failures, delay, override = self._switch_to, 0, self.backoff_initial, None
                self._switch_to = None
                wake.clear()
            pool = self.pools[idx]
            outcome = await self._session(idx, override or (pool.host, pool.port))
            override = None
            if self._closing:
                break
            if self._switch_to is not None:   # switch_to() ended the session: no failure
                continue
            if outcome.failback_to is not None:
                log.info("stratum: failing back to %s", self.pools[outcome.failback_to])
                idx, failures, delay = outcome.failback_to, 0, self.backoff_initial
                continue
            if outcome.reconnect is not None:
                r = outcome.reconnect
                host = pool.host
                if r.host and r.host != pool.host:
                    log.warning("stratum: ignoring redirect to another host %s (staying on %s)", r.host, pool.host)
                override = (host, r.port or pool.port)
                await self._sleep(r.wait)
                continue
            if outcome.got_job:
                failures, delay = 0, self.backoff_initial
                self.last_errors.pop(idx, None)
            else:
                failures += 1
                if outcome.problem or outcome.reason:
                    self.last_errors[idx] = outcome.problem or outcome.reason
            if outcome.auth_failed or failures >= self.retries_per_pool:
                if len(self.pools) > 1:
                    log.warning("stratum: giving up on %s for now (%s)", pool, outcome.reason)
                idx, failures = (idx + 1) % len(self.pools), 0
                if idx != 0:
                    continue  # try the next pool at once; back off once per full round
            log.info("stratum: reconnecting in %.1fs", delay)
            self.retry_at = (idx, time.monotonic() + delay)
            await self._sleep(delay)
            self.retry_at = None
            delay = min(delay * 2, self.backoff_max)
        wake.clear()

    async def submit(self, share: Share) -> Verdict:
        """Send a share and wait for the pool's verdict.

        A pool slower than ``submit_timeout`` gets a warning and is waited for up to
        ``answer_timeout``: a late answer still counts as the pool gave it.  With no answer
        by then (or the connection lost first) the verdict is ``accepted=None``.
        """
        fut: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()

        def sink(items: list[tuple[Share, None, Verdict]]) -> None:
            if not fut.done():
                fut.set_result(items[0][2])

        self.submit_many([(share, None)], sink)
        return await fut

    def submit_many(self, items: Sequence[tuple[Share, T]], sink: VerdictSink[T]) -> None:
        """Send shares (each with a tag of the caller's, e.g. the device that found it) in
        one write, without waiting; ``sink`` gets ``(share, tag, verdict)`` lists on the
        loop as the pool answers, in batches (one per read from the pool), with the same
        verdicts and time limits as :meth:`submit`.  Every share gets exactly one verdict.
        """
        proto, writer = self.protocol, self._writer
        if proto is None or writer is None or writer.is_closing():
            sink([(share, tag, Verdict(False, NOT_CONNECTED, sent=False)) for share, tag in items])
            return
        unsent: list[tuple[Share, T, Verdict]] = []
        written: list[int] = []
        now = asyncio.get_running_loop().time()
        sent = self._sent
        for share, tag in items:
            if not proto.knows_share_job(share):
                self.stale += 1
                unsent.append((share, tag, Verdict(False, STALE_SESSION, sent=False)))
                continue
            req_id = proto.submit(share)
            sent[req_id] = _Sent(share, tag, sink, now)
            written.append(req_id)
        if written:
            try:
                writer.write(proto.data_to_send())
            except (ConnectionError, OSError, RuntimeError):
                for req_id in written:
                    entry = sent.pop(req_id)
                    proto.forget(req_id)
                    unsent.append((entry.share, entry.tag, Verdict(False, DISCONNECTED, sent=False)))
        if unsent:
            sink(unsent)

    def _answered(self, req_id: int, verdict: Verdict) -> None:
        """Gather the verdict of a share the pool answered (delivered by _deliver)."""
        entry = self._sent.pop(req_id, None)
        if entry is None:
            return
        if verdict.accepted is not None:
            self._answered_sent_at = entry.sent_at     # the round trip is taken in _deliver
        self._verdicts.setdefault(entry.sink, []).append((entry.share, entry.tag, verdict))

    def _deliver(self) -> None:
        """Hand the gathered verdicts to their sinks, one call per sink."""
        if self._answered_sent_at is not None:
            # the latest answer's round trip (one clock read for a batch of answers)
            self.last_submit_ms = (asyncio.get_running_loop().time() - self._answered_sent_at) * 1e3
            self._answered_sent_at = None
        if not self._verdicts:
            return
        batches, self._verdicts = self._verdicts, {}
        for sink, items in batches.items():
            try:
                sink(items)
            except Exception:  # noqa: BLE001 - a faulty sink must not end the session
                log.exception("stratum: verdict sink %r failed", sink)

    def _sweep(self, proto: StratumProtocol) -> None:
        """Warn about shares the pool is slow to answer; give up on the ones past
        ``answer_timeout`` (verdict: no answer).  The entries are oldest first."""
        if not self._sent:
            return
        now = asyncio.get_running_loop().time()
        slow: list[int] = []
        expired: list[int] = []
        for req_id, entry in self._sent.items():
            age = now - entry.sent_at
            if age < self.submit_timeout:
                break
            if age >= self.answer_timeout:
                expired.append(req_id)
            elif not entry.warned:
                entry.warned = True
                slow.append(req_id)
        if slow:
            log.warning("stratum: no answer to share%s %s within %.1fs; still waiting",
                        "s" if len(slow) > 1 else "", _ids(slow), self.submit_timeout)
        if expired:
            log.warning("stratum: share%s %s never answered (%.0fs)",
                        "s" if len(expired) > 1 else "", _ids(expired), self.answer_timeout)
            for req_id in expired:
                entry = self._sent.pop(req_id)
                proto.forget(req_id)
                self._verdicts.setdefault(entry.sink, []).append(
                    (entry.share, entry.tag, Verdict(None, NO_ANSWER)))
            self._deliver()

    async def _sweep_loop(self, proto: StratumProtocol) -> None:
        while True:
            await asyncio.sleep(max(0.02, min(0.5, self.submit_timeout / 4)))
            self._sweep(proto)

    def switch_to(self, index: int) -> None:
        """End the session in progress (if any) and open one with ``pools[index]`` next.

        Call it on the client's loop, after changing :attr:`pools` (reordered, shortened
        or grown: a user switching pools, as cgminer's switchpool does); without it, run()
        would keep an index into the old list."""
        if not 0 <= index < len(self.pools):
            raise IndexError(f"pool index {index} out of range 0..{len(self.pools) - 1}")
        self._switch_to = index
        writer = self._writer
        if writer is not None:
            writer.close()      # the session's read sees the end and returns
        wake, _ = self._events()
        wake.set()              # a back-off sleep between attempts ends too

    async def close(self) -> None:
        """Stop run() and close the connection."""
        self._closing = True
        wake, _ = self._events()
        wake.set()
        writer = self._writer
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2.0)

    # ------------------------------------------------------------------ internals
    async def _sleep(self, seconds: float) -> None:
        wake, _ = self._events()
        if seconds <= 0 or self._closing:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(wake.wait(), seconds)

    def _ssl(self, pool: PoolEndpoint) -> ssl.SSLContext | None:
        if not pool.tls:
            return None
        if self._ssl_context is not None:
            return self._ssl_context
        ctx = ssl.create_default_context()
        if not self.ssl_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    async def _emit(self, callback: Callback | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                await result
        except Exception:  # noqa: BLE001 - a faulty callback must not end the session
            log.exception("stratum: callback %r failed", callback)

    async def _open(self, pool: PoolEndpoint, host: str,
                    port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=self._ssl(pool),
                                    server_hostname=host if pool.tls else None,
                                    limit=MAX_LINE_BYTES + 2),
            self.connect_timeout)

    async def _session(self, idx: int, addr: tuple[str, int]) -> _Outcome:
        pool = self.pools[idx]
        outcome = _Outcome()
        host, port = addr
        self.attempting = pool
        try:
            reader, writer = await self._open(pool, host, port)
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            # the reason users read (the CLI's and the app's log lines) in words, not errno
            # text; this record keeps the exception's own text for whoever debugs
            outcome.reason = f"connect to {host}:{port} failed: {connect_error_words(exc)}"
            log.warning("stratum: connect to %s:%d failed: %s", host, port,
                        exc or type(exc).__name__)
            outcome.problem = f"cannot connect to {host}:{port}: {connect_error_words(exc)}"
            self.attempting = None
            await self._emit(self.on_event, Disconnected(str(pool), outcome.reason))
            return outcome
        if self._closing or self._switch_to is not None:
            # closing, or switch_to() asked for another pool while this one was connecting
            # (it had no writer to close then): run() takes the switch now
            self.attempting = None
            writer.close()
            return outcome
        proto = StratumProtocol(pool.user, pool.password, agent=self.agent,
                                version_rolling=self.version_rolling, requested_mask=self.version_mask,
                                extranonce_subscribe=self.extranonce_subscribe,
                                suggest_difficulty=self.suggest_difficulty)
        self.protocol, self._writer, self.current_pool = proto, writer, pool
        log.info("stratum: connected to %s:%d (%s)", host, port, pool)
        await self._emit(self.on_event, Connected(str(pool)))
        probe = asyncio.create_task(self._failback_probe(idx, outcome, writer)) if idx > 0 else None
        sweeper = asyncio.create_task(self._sweep_loop(proto))
        outcome.reason = "closed"
        try:
            proto.start()
            writer.write(proto.data_to_send())
            await writer.drain()
            # the first job must come within handshake_timeout of connecting, however many
            # lines come meanwhile: a pool that lost the session's subscribe or authorize
            # answer but keeps broadcasting notifies would otherwise hold it for ever
            # (found by benchmarks/soak.py: a stall during the handshake, 40 s unhashed)
            loop = asyncio.get_running_loop()
            first_job_by = loop.time() + self.handshake_timeout
            # read what has come (up to READ_CHUNK) and handle every whole line in it: in
            # a share flood one wake-up takes hundreds of answers.  The time limits count
            # from the last whole line, as a line-by-line read would.
            partial = b""
            last_line_at = loop.time()
            while not self._closing:
                # until the first job a silent pool is dropped quickly (reconnect / failover)
                limit = self.idle_timeout if outcome.got_job else max(0.0, first_job_by - loop.time())
                left = max(0.0, limit - (loop.time() - last_line_at)) if outcome.got_job else limit
                try:
                    async with asyncio.timeout(left):
                        chunk = await reader.read(READ_CHUNK)
                except TimeoutError:
                    outcome.reason = (f"no data from pool for {limit:g}s" if outcome.got_job else
                                      f"no job from pool within {self.handshake_timeout:g}s of "
                                      "connecting")
                    break
                if not chunk:
                    if partial.strip():     # a last line without its newline still counts
                        await self._handle_lines([partial], proto, writer, outcome)
                    outcome.reason = "closed by the client" if self._closing else "connection closed by pool"
                    break
                lines = (partial + chunk).split(b"\n")
                partial = lines.pop()
                if len(partial) > MAX_LINE_BYTES + 1 or any(len(x) > MAX_LINE_BYTES + 1 for x in lines):
                    outcome.reason = f"line from pool longer than {MAX_LINE_BYTES} bytes"
                    break
                if not lines:
                    continue
                last_line_at = loop.time()
                if await self._handle_lines(lines, proto, writer, outcome):
                    break
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            outcome.reason = f"connection error: {exc or type(exc).__name__}"
        finally:
            if probe is not None:
                probe.cancel()
            sweeper.cancel()
            self.protocol, self._writer = None, None
            # sent, and the connection ended before an answer
            for entry in self._sent.values():
                self._verdicts.setdefault(entry.sink, []).append(
                    (entry.share, entry.tag, Verdict(None, f"{NO_ANSWER}: {DISCONNECTED}")))
            self._sent.clear()
            self._deliver()
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2.0)
            self.attempting = None
            if outcome.failback_to is not None:
                outcome.reason = "failing back to a preferred pool"
            log.info("stratum: disconnected from %s: %s", pool, outcome.reason)
            await self._emit(self.on_event, Disconnected(str(pool), outcome.reason))
        return outcome

    async def _handle_lines(self, lines: list[bytes], proto: StratumProtocol,
                            writer: asyncio.StreamWriter, outcome: _Outcome) -> bool:
        """Feed whole lines to the protocol, in order; True when the session must end.
        Verdicts gathered on the way go to their sinks once, at the end."""
        try:
            for line in lines:
                if not line.strip():
                    continue
                events = proto.feed(line)
                out = proto.data_to_send()
                if out:
                    writer.write(out)
                if await self._dispatch(events, outcome):
                    return True
            return False
        finally:
            self._deliver()

    async def _dispatch(self, events: list[Any], outcome: _Outcome) -> bool:
        """Handle events; True when the session must end."""
        stop = False
        for ev in events:
            if isinstance(ev, NewJob):
                job = ev.job if ev.job.clean_jobs or not ev.clean else replace(ev.job, clean_jobs=True)
                outcome.got_job = True
                self.current_job = job
                self.jobs_received += 1
                _, have_job = self._events()
                have_job.set()
                await self._emit(self.on_job, job)
            elif isinstance(ev, DifficultyChanged):
                # Pools differ on when a new difficulty applies (at once, or from the next
                # job).  A higher one is applied to the current work at once (the same
                # work, a harder share target): shares that meet it meet either rule.  A
                # lower one waits for the next job.
                cur = self.current_job
                if cur is not None and ev.target < cur.target:
                    self.current_job = replace(cur, target=ev.target)
                    await self._emit(self.on_job_update, self.current_job)
            elif isinstance(ev, VersionMaskChanged):
                # BIP 310: the new mask applies at once, to the current job's remaining work
                cur = self.current_job
                if cur is not None and ev.mask != cur.version_mask:
                    self.current_job = replace(cur, version_mask=ev.mask)
                    await self._emit(self.on_job_update, self.current_job)
            elif isinstance(ev, SubmitResult):
                if ev.accepted:
                    self.accepted += 1
                else:
                    self.rejected += 1
                    if ev.code == STALE_CODE:
                        self.stale += 1
                self._answered(ev.id, _ACCEPTED if ev.accepted and ev.reason is None and ev.code is None
                               else Verdict(ev.accepted, ev.reason, ev.code))
            elif isinstance(ev, Authorized) and not ev.ok:
                outcome.auth_failed, outcome.reason, stop = True, f"not authorized: {ev.reason}", True
            elif isinstance(ev, ProtocolError) and ev.fatal:
                outcome.reason, stop = ev.message, True
            elif isinstance(ev, Reconnect):
                outcome.reconnect, outcome.reason, stop = ev, "pool asked to reconnect", True
            await self._emit(self.on_event, ev)
        return stop

    async def _failback_probe(self, idx: int, outcome: _Outcome, writer: asyncio.StreamWriter) -> None:
        """While on backup pool ``idx``, look for a better pool that answers again."""
        try:
            while True:
                await asyncio.sleep(self.failback_interval)
                for j in range(idx):
                    better = self.pools[j]
                    try:
                        _, w = await self._open(better, better.host, better.port)
                    except (TimeoutError, OSError, ssl.SSLError):
                        continue
                    w.close()
                    outcome.failback_to = j
                    writer.close()
                    return
        except asyncio.CancelledError:
            pass
