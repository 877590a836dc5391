"""The local pool's asyncio server: connections, Stratum methods, jobs on a timer.

Every submitted share is checked by :mod:`sgm.pool.shares` and answered with the
customary codes: 20 other/malformed (also: version bits outside the mask), 21 job not
found (stale), 22 duplicate, 23 low difficulty, 24 unauthorized, 25 not subscribed.
Malformed input gets an error reply, never a crash; a client that keeps sending garbage,
sends an over-long line or does not read its replies is dropped.  Every table is bounded.

The pool shares its loop with the miner's own Stratum client, so the share path is kept
short: every whole line of a read is handled in one wake-up and the answers go out in one
write (a client that does not read them stops being read), and a well-formed
``mining.submit`` skips the general message objects and is checked by the job's
:class:`~sgm.pool.shares.JobShares`, which gives the verdicts ``check_share`` gives.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sgm.bitcoin import DEFAULT_VERSION_MASK
from sgm.checks import check_int, is_hex, is_int
from sgm.hashing import bits_to_difficulty, difficulty_to_target
from sgm.pool.records import Ledger, PoolStats
from sgm.pool.shares import JobShares, Reject, VersionReading, check_submit_shape, check_version_reading
from sgm.pool.template import DEFAULT_VERSION, EXTRANONCE1_SIZE, JobMaker, PoolJob
from sgm.stratum.messages import (
    MAX_LINE_BYTES,
    Request,
    StratumError,
    decode_json,
    decode_line,
    encode_request,
    encode_response,
    make_error,
)

__all__ = ["LocalPool", "LOOPBACK_HOSTS", "ConnectionInfo"]

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1",)
_MAX_STRIKES = 10                 # malformed lines before a client is dropped
_MAX_WRITE_BUFFER = 1 << 20       # a client that does not read is dropped
#: bytes read from a client at once: every whole line in them is handled in one wake-up and
#: answered with one write (a line longer than the limit is refused all the same)
_READ_CHUNK = 64 * 1024
#: a line (its newline excluded) longer than this is refused: what asyncio's readline
#: allowed with the limit MAX_LINE_BYTES + 2 (room for a CR)
_LONGEST_LINE = MAX_LINE_BYTES + 2
_MAX_CONNECTIONS = 256
_MAX_WORKERS_PER_CONN = 64
_MAX_WORKER_NAME = 256
_KEEP_JOBS = 8                    # non-clean jobs that stay valid
_KEEP_STALE_IDS = 64
#: vardiff: seconds of shares a retarget looks at, at least (a flood retargets sooner)
VARDIFF_WINDOW = 10.0
#: vardiff: a retarget needs the rate this far off the aim (a factor), and moves the
#: difficulty at most this far at once
VARDIFF_TOLERANCE = 1.5
VARDIFF_MAX_STEP = 64.0
#: vardiff: difficulties it keeps within (1 leading zero bit .. far past any real share)
VARDIFF_MIN = 2.0 ** -31
VARDIFF_MAX = 2.0 ** 40


@dataclass(frozen=True)
class ConnectionInfo:
    """One client connection as the pool sees it (for a display or a summary)."""

    cid: int
    peer: str
    workers: tuple[str, ...]
    accepted: int
    rejected: int
    difficulty: float
    connected_s: float          # seconds since it connected
    retargets: int


@dataclass
class _Conn:
    cid: int
    writer: asyncio.StreamWriter
    extranonce1: bytes
    peer: str
    subscribed: bool = False
    workers: set[str] = field(default_factory=set)
    rolling: bool = False          # version rolling negotiated (mining.configure said yes)
    requested_mask: int = 0        # the mask the client asked for in mining.configure
    version_mask: int = 0          # the mask granted now (0: no bits may be rolled)
    target: int = 0
    difficulty: float = 1.0
    #: after a difficulty change: (job ids issued before it, the target they were issued
    #: under).  Shares of those jobs are judged by the easier of the two targets, as
    #: ckpool does, so shares already on the wire when the change went out are not refused.
    retargeted_jobs: tuple[frozenset[str], int] = (frozenset(), 0)
    strikes: int = 0
    #: answers queued while a batch of lines is handled (None: _send writes at once)
    out: list[str] | None = None
    got_work: bool = False
    closed: bool = False
    accepted: int = 0
    rejected: int = 0
    since: float = field(default_factory=time.monotonic)
    # vardiff: shares accepted since the window began, and when it began
    vd_count: int = 0
    vd_start: float = field(default_factory=time.monotonic)
    retargets: int = 0

    @property
    def authorized(self) -> bool:
        return bool(self.workers)


class LocalPool:
    """A small but real Stratum v1 pool for local mining and tests (127.0.0.1 only).

    ``difficulty`` (pool convention) wins over ``difficulty_bits`` (leading zero bits of
    the share target).  ``jobs``: how many jobs to issue before ``finished`` is set (None
    = forever); a new job comes every ``job_interval`` seconds.  ``stale_grace``: seconds
    during which shares for a job replaced by a newer one are still accepted (0 = strict,
    like a real pool after a new block: they get 21 "Job not found (stale)").

    Version rolling: ``version_mask`` is what mining.configure grants at most (and
    :meth:`set_version_mask` changes it at run time); ``version`` is the jobs' header
    version; ``version_reading`` how the 6th mining.submit parameter is read ("bip310",
    "ckpool" or "xor", see :mod:`sgm.pool.shares`).
    """

    def __init__(self, difficulty_bits: int = 20, difficulty: float | None = None, *,
                 jobs: int | None = 3, job_interval: float = 15.0, extranonce2_size: int = 4,
                 version_mask: int = DEFAULT_VERSION_MASK, clean_jobs: bool = True,
                 host: str = "127.0.0.1", port: int = 0, start_height: int = 900_000,
                 stale_grace: float = 0.0, version: int = DEFAULT_VERSION,
                 version_reading: VersionReading = "bip310",
                 vardiff: float | None = None, vardiff_window: float = VARDIFF_WINDOW) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the local pool only binds 127.0.0.1, not {host!r}")
        if difficulty is None:
            difficulty = bits_to_difficulty(difficulty_bits)
        self.difficulty = float(difficulty)
        self.target = difficulty_to_target(self.difficulty)
        if jobs is not None and (not is_int(jobs) or jobs < 1):
            raise ValueError("jobs must be >= 1 (or None for no limit)")
        if job_interval <= 0:
            raise ValueError("job_interval must be > 0")
        check_int(extranonce2_size, "extranonce2_size", 0, 16)
        self.jobs_limit = jobs
        self.job_interval = job_interval
        self.extranonce2_size = extranonce2_size
        self.version_mask = check_int(version_mask, "version_mask", 0, 0xFFFFFFFF)
        self.version_reading: VersionReading = check_version_reading(version_reading)
        self.clean_jobs = clean_jobs
        self.stale_grace = max(0.0, stale_grace)
        self.host = host
        self._port = port
        self._maker = JobMaker(start_height=start_height,
                               extranonce_size=EXTRANONCE1_SIZE + extranonce2_size,
                               version=check_int(version, "version", 0, 0xFFFFFFFF))
        self._server: asyncio.base_events.Server | None = None
        self._timer: asyncio.Task[None] | None = None
        self._conns: dict[int, _Conn] = {}
        self._handlers: set[asyncio.Task[Any]] = set()
        self._next_cid = 1
        self._jobs: OrderedDict[str, PoolJob] = OrderedDict()
        # retired job id -> (job, monotonic time it was retired); shares for it are stale,
        # or still accepted within stale_grace seconds
        self._stale_ids: OrderedDict[str, tuple[PoolJob, float]] = OrderedDict()
        self._seen: dict[str, set[tuple[Any, ...]]] = {}
        # job id -> the fast share check of that job (rebuilt when a job id names another job)
        self._checks: dict[str, JobShares] = {}
        self._ledger = Ledger()
        self._en1_salt = int.from_bytes(os.urandom(2), "big") << 16
        self.finished = asyncio.Event()
        self.on_finished: list[Callable[[], Any]] = []   # run (in the loop) when finished is set
        if vardiff is not None and not 0 < vardiff < float("inf"):
            raise ValueError(f"vardiff must be a positive number of shares per minute, got {vardiff}")
        if not vardiff_window > 0:
            raise ValueError("vardiff_window must be > 0")
        #: vardiff: the share rate (per minute, per connection) the pool aims at; None: the
        #: difficulty stays as set
        self.vardiff = vardiff
        self.vardiff_window = float(vardiff_window)
        #: run (in the loop) with a ConnectionInfo when a client connects / is gone
        self.on_connect: list[Callable[[ConnectionInfo], Any]] = []
        self.on_disconnect: list[Callable[[ConnectionInfo], Any]] = []

    # --------------------------------------------------------------- properties
    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"stratum+tcp://{self.host}:{self._port}"

    @property
    def stats(self) -> PoolStats:
        """A consistent snapshot of the statistics (safe to read from any thread)."""
        return self._ledger.snapshot()

    @property
    def current_job(self) -> PoolJob | None:
        return next(reversed(self._jobs.values())) if self._jobs else None

    @property
    def job_version(self) -> int:
        """The header version of the jobs issued from now on."""
        return self._maker.version

    def connections(self) -> list[ConnectionInfo]:
        """The connected clients now (call on the pool's loop, or accept a torn read)."""
        return [self._info(c) for c in list(self._conns.values())]

    def _info(self, conn: _Conn) -> ConnectionInfo:
        return ConnectionInfo(conn.cid, conn.peer, tuple(sorted(conn.workers)), conn.accepted,
                              conn.rejected, conn.difficulty, time.monotonic() - conn.since,
                              conn.retargets)

    def _notify(self, callbacks: list[Callable[[ConnectionInfo], Any]], conn: _Conn) -> None:
        info = self._info(conn)
        for cb in list(callbacks):
            try:
                cb(info)
            except Exception:  # noqa: BLE001 - a display must not break the pool
                log.exception("local pool: connection callback failed")

    @property
    def timer_running(self) -> bool:
        """Whether the job timer may still issue jobs (False once all ``jobs`` were issued)."""
        return self._timer is not None and not self._timer.done()

    # --------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Bind (127.0.0.1), issue the first job and start the job timer."""
        self.finished = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, self.host, self._port,
                                                  limit=MAX_LINE_BYTES + 2)
        self._port = self._server.sockets[0].getsockname()[1]
        self._issue_job(clean=True)
        self._timer = asyncio.create_task(self._job_timer())
        log.info("local pool on %s, difficulty %.6g, %s jobs every %.1fs, version %08x, mask %08x (%s)",
                 self.url, self.difficulty,
                 self.jobs_limit if self.jobs_limit is not None else "unlimited", self.job_interval,
                 self.job_version, self.version_mask, self.version_reading)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._timer
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns.values()):
            self._close(conn)
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
        log.info("local pool stopped")

    async def __aenter__(self) -> LocalPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # --------------------------------------------------------------- run-time control
    async def new_job(self, clean: bool = True, *, version: int | None = None) -> PoolJob:
        """Issue a job now (besides the timer) and send it to every client.  ``version``
        changes the header version of this and later jobs."""
        if version is not None:
            self._maker.version = check_int(version, "version", 0, 0xFFFFFFFF)
        return self._issue_job(clean=clean)

    async def set_difficulty(self, difficulty: float) -> None:
        """Change the share difficulty of every client now (as a vardiff pool does) and tell
        them.  Shares of jobs issued from now on must meet the new target; shares of the jobs
        issued before are judged by the easier of the old and new targets (ckpool's rule: a
        share may already be on the wire when the change goes out)."""
        target = difficulty_to_target(difficulty)  # ValueError for <= 0, nan, inf
        self.difficulty, self.target = float(difficulty), target
        issued = frozenset(self._jobs)
        for conn in list(self._conns.values()):
            conn.retargeted_jobs = (issued, max(conn.target, conn.retargeted_jobs[1])
                                    if conn.retargeted_jobs[0] == issued else conn.target)
            conn.difficulty, conn.target = float(difficulty), target
            if conn.got_work:
                self._send(conn, encode_request(None, "mining.set_difficulty", [conn.difficulty]))

    async def set_version_mask(self, mask: int) -> int:
        """Change the version-rolling mask now (BIP 310 ``mining.set_version_mask``).

        Every connected client that negotiated version rolling is told its new mask (the
        new pool mask within the mask it asked for) and its shares are checked against it
        from this moment; later mining.configure calls are granted at most ``mask``.
        Returns how many clients were told.
        """
        self.version_mask = check_int(mask, "mask", 0, 0xFFFFFFFF)
        told = 0
        for conn in list(self._conns.values()):
            if not conn.rolling or conn.closed:
                continue
            conn.version_mask = self.version_mask & conn.requested_mask
            self._send(conn, encode_request(None, "mining.set_version_mask", [f"{conn.version_mask:08x}"]))
            told += 1
        self._ledger.version_mask_changed()
        log.info("local pool: version mask %08x (told %d clients)", self.version_mask, told)
        return told

    async def disconnect_all(self) -> int:
        """Close every client connection (as a pool restart would); returns how many."""
        conns = list(self._conns.values())
        for conn in conns:
            self._close(conn)
        return len(conns)

    # --------------------------------------------------------------- jobs
    def _issue_job(self, clean: bool) -> PoolJob:
        job = self._maker.make(clean)
        now = time.monotonic()
        if clean:
            for old_id, old in self._jobs.items():
                self._stale_ids[old_id] = (old, now)
            self._jobs.clear()
        self._jobs[job.job_id] = job
        self._seen[job.job_id] = set()
        while len(self._jobs) > _KEEP_JOBS:
            old_id, old = self._jobs.popitem(last=False)
            self._stale_ids[old_id] = (old, now)
        while len(self._stale_ids) > _KEEP_STALE_IDS:
            self._stale_ids.popitem(last=False)
        for jid in [j for j in self._seen if j not in self._jobs
                    and (j not in self._stale_ids or now - self._stale_ids[j][1] > self.stale_grace)]:
            del self._seen[jid]
        for jid in [j for j in self._checks if j not in self._seen]:
            del self._checks[jid]
        self._ledger.job_issued()
        log.info("local pool: job %s (height %d, version %08x, clean=%s)", job.job_id, job.height,
                 job.version, clean)
        line = encode_request(None, "mining.notify", job.notify_params())
        for conn in list(self._conns.values()):
            if conn.got_work:
                self._send(conn, line)
        return job

    async def _job_timer(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.job_interval)
                if self.jobs_limit is not None and self._ledger.jobs_issued >= self.jobs_limit:
                    self._finish()
                    return
                self._issue_job(clean=self.clean_jobs)
                if self.vardiff is not None:   # a client finding too few shares is eased too
                    for conn in list(self._conns.values()):
                        self._vardiff_check(conn, time.monotonic())
        except asyncio.CancelledError:
            pass

    def _finish(self) -> None:
        log.info("local pool: all %s jobs done", self.jobs_limit)
        line = encode_request(None, "client.show_message", [f"sgm local pool: {self.jobs_limit} jobs done"])
        for conn in list(self._conns.values()):
            if conn.got_work:
                self._send(conn, line)
        self.finished.set()
        for cb in list(self.on_finished):
            try:
                cb()
            except Exception:  # noqa: BLE001
                log.exception("local pool: on_finished callback failed")

    def _find_job(self, job_id: str) -> tuple[PoolJob, bool]:
        """(job, replaced) for a submitted job id, or Reject 21."""
        job = self._jobs.get(job_id)
        if job is not None:
            return job, False
        retired = self._stale_ids.get(job_id)
        if retired is None:
            raise Reject.job_not_found()
        if time.monotonic() - retired[1] > self.stale_grace:
            raise Reject.stale()
        return retired[0], True  # within the grace period after it was replaced

    # --------------------------------------------------------------- connections
    def _send(self, conn: _Conn, line: str) -> None:
        if conn.closed:
            return
        if conn.out is not None:    # a batch is being handled: its answers go out together
            conn.out.append(line)
            return
        self._write(conn, line)

    def _write(self, conn: _Conn, text: str) -> None:
        transport = conn.writer.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size() > _MAX_WRITE_BUFFER:
            log.warning("local pool: client %s does not read; dropping it", conn.peer)
            self._close(conn)
            return
        conn.writer.write(text.encode("utf-8"))

    def _flush(self, conn: _Conn) -> None:
        """Write the answers queued during a batch, in order, with one write."""
        out, conn.out = conn.out, None
        if out and not conn.closed:
            self._write(conn, out[0] if len(out) == 1 else "".join(out))

    def _close(self, conn: _Conn) -> None:
        if not conn.closed:
            self._flush(conn)       # answers queued before the close still go out
            conn.closed = True
            conn.writer.close()

    def _misbehaved(self, conn: _Conn) -> None:
        self._ledger.misbehaved()
        self._close(conn)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        if len(self._conns) >= _MAX_CONNECTIONS:
            log.warning("local pool: too many connections; refusing %s", peer)
            writer.close()
            if task is not None:
                self._handlers.discard(task)
            return
        cid = self._next_cid
        self._next_cid += 1
        conn = _Conn(cid, writer, struct.pack(">I", (self._en1_salt + cid) & 0xFFFFFFFF), peer,
                     target=self.target, difficulty=self.difficulty)
        self._conns[cid] = conn
        self._ledger.connected()
        log.debug("local pool: client %d connected from %s", cid, peer)
        self._notify(self.on_connect, conn)
        try:
            rest = b""      # the start of a line whose newline has not come yet
            while not conn.closed:
                try:
                    data = await reader.read(_READ_CHUNK)
                except (ConnectionError, OSError):
                    break
                if not data:    # end of stream: a last line without its newline still counts
                    if rest:
                        self._handle_lines(conn, [rest])
                    break
                lines = (rest + data if rest else data).split(b"\n")
                rest = lines.pop()
                if len(rest) > _LONGEST_LINE:
                    lines.append(rest)      # refused in its turn, after the lines before it
                self._handle_lines(conn, lines)
                if conn.closed:
                    break
                # one drain a batch: a client that does not read stops being read (so it
                # cannot make the pool hold more than a batch beyond the transport's limit)
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.drain()
        except asyncio.CancelledError:
            pass
        finally:
            self._conns.pop(cid, None)
            self._ledger.disconnected()
            self._close(conn)
            self._notify(self.on_disconnect, conn)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            if task is not None:
                self._handlers.discard(task)
            log.debug("local pool: client %d gone", cid)

    def _handle_lines(self, conn: _Conn, lines: list[bytes]) -> None:
        """Handle a batch of lines in order and send every answer with one write."""
        conn.out = []
        try:
            for line in lines:
                if len(line) > _LONGEST_LINE:
                    log.warning("local pool: client %s sent a line over %d bytes; disconnecting",
                                conn.peer, MAX_LINE_BYTES)
                    self._send(conn, encode_response(None, None, make_error(20, "Line too long")))
                    self._misbehaved(conn)
                    return
                if not line or line.isspace():
                    continue
                try:
                    self._on_line(conn, line)
                except Exception:  # noqa: BLE001 - one client's input must never kill the pool
                    log.exception("local pool: error handling a line from %s", conn.peer)
                    self._send(conn, encode_response(None, None, make_error(20, "Internal error")))
                if conn.strikes >= _MAX_STRIKES:
                    log.warning("local pool: client %s sent too many malformed lines; disconnecting",
                                conn.peer)
                    self._misbehaved(conn)
                    return
                if conn.closed:
                    return
        finally:
            self._flush(conn)

    # --------------------------------------------------------------- messages
    def _on_line(self, conn: _Conn, line: bytes) -> None:
        # The fast path: a well-formed mining.submit skips the Request object and the
        # handler table.  Anything else -- or anything it cannot read -- goes the general
        # way, which parses the line again and gives the exact error for it.
        obj = None
        if len(line) <= MAX_LINE_BYTES + 1:     # longer: decode_line's "line too long"
            try:
                obj = decode_json(line.decode("utf-8"))
            except (ValueError, RecursionError):
                pass
        if type(obj) is dict and obj.get("method") == "mining.submit":
            msg_id = obj.get("id")
            params = obj.get("params", [])
            if params is None:
                params = []
            if (msg_id is None or type(msg_id) is int or type(msg_id) is str) and type(params) is list:
                self._answer_submit(conn, msg_id, params)
                return
        self._on_message(conn, line)

    def _answer_submit(self, conn: _Conn, msg_id: int | str | None, params: list[Any]) -> None:
        try:
            result = self._submit(conn, params)
        except Reject as rej:
            self._send(conn, encode_response(msg_id, False, make_error(rej.code, rej.message)))
            return
        if result is True and type(msg_id) is int:
            # what encode_response gives, without json.dumps (an int id prints the same)
            self._send(conn, f'{{"id":{msg_id},"result":true,"error":null}}\n')
        else:
            self._send(conn, encode_response(msg_id, result))

    def _on_message(self, conn: _Conn, line: bytes) -> None:
        try:
            msg = decode_line(line + b"\n")   # with its newline, as readline gave it
        except StratumError as exc:
            conn.strikes += 1
            self._send(conn, encode_response(None, None, make_error(20, f"Malformed request: {exc}")))
            return
        if not isinstance(msg, Request):
            return  # a client answering e.g. client.get_version
        handler = {
            "mining.subscribe": self._on_subscribe,
            "mining.authorize": self._on_authorize,
            "mining.configure": self._on_configure,
            "mining.extranonce.subscribe": lambda c, r: True,
            "mining.suggest_difficulty": lambda c, r: True,
            "mining.submit": self._on_submit,
        }.get(msg.method)
        if handler is None:
            self._send(conn, encode_response(msg.id, None, make_error(20, f"Unknown method {msg.method[:64]}")))
            return
        try:
            result = handler(conn, msg)
        except Reject as rej:
            self._send(conn, encode_response(msg.id, False if msg.method == "mining.submit" else None,
                                             make_error(rej.code, rej.message)))
            return
        self._send(conn, encode_response(msg.id, result))
        if msg.method in ("mining.subscribe", "mining.authorize"):
            self._maybe_send_work(conn)

    def _maybe_send_work(self, conn: _Conn) -> None:
        if conn.got_work or not (conn.subscribed and conn.authorized):
            return
        conn.got_work = True
        self._send(conn, encode_request(None, "mining.set_difficulty", [conn.difficulty]))
        job = self.current_job
        if job is not None:
            self._send(conn, encode_request(None, "mining.notify", job.notify_params(clean=True)))

    def _on_subscribe(self, conn: _Conn, req: Request) -> Any:
        conn.subscribed = True
        sid = f"{conn.cid:08x}"
        return [[["mining.set_difficulty", sid], ["mining.notify", sid]], conn.extranonce1.hex(),
                self.extranonce2_size]

    def _on_authorize(self, conn: _Conn, req: Request) -> Any:
        if not req.params or not isinstance(req.params[0], str) or len(req.params[0]) > _MAX_WORKER_NAME:
            raise Reject.malformed("Malformed authorize")
        if req.params[0] not in conn.workers and len(conn.workers) >= _MAX_WORKERS_PER_CONN:
            raise Reject(24, f"Too many workers on one connection (at most {_MAX_WORKERS_PER_CONN})")
        conn.workers.add(req.params[0])
        return True

    def _on_configure(self, conn: _Conn, req: Request) -> Any:
        if len(req.params) < 1 or not isinstance(req.params[0], list):
            raise Reject.malformed("Malformed configure")
        options = req.params[1] if len(req.params) > 1 and isinstance(req.params[1], dict) else {}
        result: dict[str, Any] = {}
        for ext in req.params[0][:16]:
            if ext != "version-rolling":
                if isinstance(ext, str) and len(ext) <= 64:
                    result[ext] = False
                continue
            raw = options.get("version-rolling.mask", "ffffffff")
            if not isinstance(raw, str) or not 0 < len(raw) <= 8 or not is_hex(raw, len(raw)):
                raise Reject.malformed("Malformed version-rolling.mask")
            requested = int(raw, 16)
            granted = requested & self.version_mask
            min_bits = options.get("version-rolling.min-bit-count", 0)
            if granted == 0 or (is_int(min_bits) and bin(granted).count("1") < min_bits):
                conn.rolling, conn.requested_mask, conn.version_mask = False, 0, 0
                result["version-rolling"] = False
                continue
            conn.rolling, conn.requested_mask, conn.version_mask = True, requested, granted
            result["version-rolling"] = True
            result["version-rolling.mask"] = f"{granted:08x}"
        return result

    # --------------------------------------------------------------- shares
    def _on_submit(self, conn: _Conn, req: Request) -> Any:
        return self._submit(conn, req.params)

    def _submit(self, conn: _Conn, p: list[Any]) -> Any:
        worker = p[0] if p and isinstance(p[0], str) else None
        try:
            return self._check_submit(conn, p, worker)
        except Reject as rej:
            conn.rejected += 1
            self._ledger.reject(rej.reason, worker if worker in conn.workers else None)
            log.info("local pool: share from %s rejected: %s", conn.peer, rej.message)
            raise

    def _check_submit(self, conn: _Conn, p: list[Any], worker: str | None) -> bool:
        if not conn.subscribed:
            raise Reject.not_subscribed()
        if worker is None or worker not in conn.workers:
            raise Reject.unauthorized()
        check_submit_shape(p)
        job = self._jobs.get(p[1])          # the current jobs first: nearly every share
        replaced = False
        if job is None:
            job, replaced = self._find_job(p[1])
        target = conn.target
        older, old_target = conn.retargeted_jobs
        if job.job_id in older:
            target = max(target, old_target)
        checks = self._checks.get(job.job_id)
        if checks is None or checks.job is not job:
            checks = self._checks[job.job_id] = JobShares(job)
        share = checks.check(p, conn.extranonce1, self.extranonce2_size, conn.version_mask, target,
                             self.version_reading, self._seen.setdefault(job.job_id, set()), time.time())
        self._ledger.accept(share, after_replace=replaced)
        conn.accepted += 1
        if self.vardiff is not None:
            conn.vd_count += 1
            self._vardiff_check(conn, time.monotonic())
        # one line a share only when asked for: even a filtered log.info costs a call a share
        if log.isEnabledFor(logging.DEBUG):
            log.debug("local pool: share accepted from %s (job %s, version %08x, diff %.4g)",
                      share.worker, share.job_id, share.version, share.difficulty)
        return True

    # --------------------------------------------------------------- vardiff
    def _vardiff_check(self, conn: _Conn, now: float) -> None:
        """Move this client's difficulty toward ``vardiff`` shares a minute.

        The rate is measured over at least ``vardiff_window`` seconds; a flood (four times
        the window's share of the aim, after a second) is retargeted at once, so a fast
        miner started at too low a difficulty is brought back within seconds.  The step is
        the measured rate over the aim, at most VARDIFF_MAX_STEP either way; with no share
        in a whole window the difficulty falls by half the shares expected (at least 2x)."""
        aim = self.vardiff
        if aim is None or conn.closed or not conn.got_work:
            return
        elapsed = now - conn.vd_start
        flood = elapsed >= 1.0 and conn.vd_count >= max(8.0, 4 * aim * self.vardiff_window / 60.0)
        if elapsed < self.vardiff_window and not flood:
            return
        rate = conn.vd_count / elapsed * 60.0
        # no share at all: the expected count says how sure that is (Poisson: none of 10
        # expected happens 1 time in 22,000), so ease by half of it, at least halving
        ratio = rate / aim if conn.vd_count else 1 / max(2.0, aim * elapsed / 60.0 / 2)
        conn.vd_count, conn.vd_start = 0, now
        if 1 / VARDIFF_TOLERANCE <= ratio <= VARDIFF_TOLERANCE and not flood:
            return
        ratio = min(VARDIFF_MAX_STEP, max(1 / VARDIFF_MAX_STEP, ratio))
        new = min(VARDIFF_MAX, max(VARDIFF_MIN, conn.difficulty * ratio))
        if new == conn.difficulty:
            return
        self._retarget(conn, new)
        log.info("local pool: vardiff: client %s at %.3g shares/min -> difficulty %.6g",
                 conn.peer, rate, new)

    def _retarget(self, conn: _Conn, difficulty: float) -> None:
        """Set one client's difficulty (shares of jobs issued before are judged by the
        easier of the two targets, as :meth:`set_difficulty` does for all)."""
        target = difficulty_to_target(difficulty)
        issued = frozenset(self._jobs)
        conn.retargeted_jobs = (issued, max(conn.target, conn.retargeted_jobs[1])
                                if conn.retargeted_jobs[0] == issued else conn.target)
        conn.difficulty, conn.target = float(difficulty), target
        conn.retargets += 1
        self._send(conn, encode_request(None, "mining.set_difficulty", [conn.difficulty]))
