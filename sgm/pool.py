"""The embedded local pool: a real Stratum v1 server on 127.0.0.1.

Every job has a real coinbase transaction (BIP 34 height in the scriptSig, room for
extranonce1 ‖ extranonce2, one output to a fixed script) and a real merkle branch over a
few synthetic transactions.  Every submitted share is checked with a real sha256d and
answered with the customary codes: 20 other/malformed, 21 job not found (stale),
22 duplicate, 23 low difficulty, 24 unauthorized, 25 not subscribed.

``LocalPool`` runs on an asyncio loop; ``PoolThread`` / ``start_in_thread()`` run it on a
loop thread of its own for synchronous code and tests.
"""
from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import re
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sgm.hashing import (
    bits_to_difficulty, difficulty_to_target, hash_difficulty, meets_target, nbits_to_target, sha256d,
)
from sgm.jobs import Job, JobError, build_header, word_swap
from sgm.stratum.messages import (
    MAX_LINE_BYTES, Request, StratumError, decode_line, encode_request, encode_response, make_error,
)

__all__ = [
    "LocalPool", "PoolThread", "start_in_thread", "PoolStats", "WorkerStats", "AcceptedShare",
    "PoolJob", "build_coinbase_parts", "merkle_branch", "LOOPBACK_HOSTS",
]

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1",)
_HEX_RE = re.compile(r"\A[0-9a-fA-F]*\Z")
_MAX_STRIKES = 10                 # malformed lines before a client is dropped
_MAX_WRITE_BUFFER = 1 << 20       # a client that does not read is dropped
_MAX_CONNECTIONS = 256
_KEEP_JOBS = 8                    # non-clean jobs that stay valid
_KEEP_STALE_IDS = 64
_NTIME_FUTURE = 7200
_EXTRANONCE1_SIZE = 4
_PAYOUT_SCRIPT = bytes.fromhex("0014") + sha256d(b"sgm local pool payout")[:20]  # P2WPKH-shaped
_COINBASE_TAG = b"/sgm local pool/"
_NBITS = 0x17023A04               # a 2025-era mainnet target
_SUBSIDY_SAT = 312_500_000


# --------------------------------------------------------------------------- helpers
def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


def _push(data: bytes) -> bytes:
    if len(data) < 0x4C:
        return bytes([len(data)]) + data
    if len(data) <= 0xFF:
        return b"\x4c" + bytes([len(data)]) + data
    raise ValueError("push too long for a scriptSig")


def _script_num(n: int) -> bytes:
    """Minimal CScriptNum serialization of a non-negative int (as BIP 34 requires)."""
    if n == 0:
        return b""
    out = bytearray()
    while n:
        out.append(n & 0xFF)
        n >>= 8
    if out[-1] & 0x80:
        out.append(0)
    return bytes(out)


def build_coinbase_parts(height: int, extranonce_size: int, *, tag: bytes = _COINBASE_TAG,
                         script: bytes = _PAYOUT_SCRIPT, value: int = _SUBSIDY_SAT) -> tuple[bytes, bytes]:
    """(coinb1, coinb2) of a version-2 coinbase whose scriptSig is
    ``push(height) push(extranonce1‖extranonce2) push(tag)``; ``extranonce_size`` is the
    total extranonce1 + extranonce2 length."""
    if not 1 <= extranonce_size <= 75:
        raise ValueError("extranonce size must be 1..75 bytes")
    height_push = _push(_script_num(height))
    tag_push = _push(tag)
    script_len = len(height_push) + 1 + extranonce_size + len(tag_push)
    if not 2 <= script_len <= 100:
        raise ValueError(f"coinbase scriptSig would be {script_len} bytes (must be 2..100)")
    coinb1 = (struct.pack("<I", 2) + _varint(1) + b"\x00" * 32 + b"\xff\xff\xff\xff"
              + _varint(script_len) + height_push + bytes([extranonce_size]))
    coinb2 = (tag_push + b"\xff\xff\xff\xff" + _varint(1) + struct.pack("<Q", value)
              + _varint(len(script)) + script + struct.pack("<I", 0))
    return coinb1, coinb2


def merkle_branch(txids: list[bytes]) -> list[bytes]:
    """Stratum merkle branch for the coinbase (index 0) of a block whose other
    transactions have ``txids`` (internal byte order)."""
    level: list[bytes | None] = [None, *txids]
    branch: list[bytes] = []
    while len(level) > 1:
        sibling = level[1]
        assert sibling is not None
        branch.append(sibling)
        if len(level) % 2:
            level.append(level[-1])
        level = [None] + [sha256d(level[i] + level[i + 1]) for i in range(2, len(level), 2)]  # type: ignore[operator, misc, assignment]
    return branch


# ----------------------------------------------------------------------------- data
@dataclass(frozen=True)
class PoolJob:
    """A job as the pool issued it (shared by all connections)."""

    job_id: str
    height: int
    prevhash: bytes            # header byte order
    coinb1: bytes
    coinb2: bytes
    txids: tuple[bytes, ...]   # synthetic transactions after the coinbase
    branch: tuple[bytes, ...]
    version: int
    nbits: int
    ntime: int
    clean_jobs: bool

    def notify_params(self, clean: bool | None = None) -> list[Any]:
        return [self.job_id, word_swap(self.prevhash).hex(), self.coinb1.hex(), self.coinb2.hex(),
                [b.hex() for b in self.branch], f"{self.version:08x}", f"{self.nbits:08x}",
                f"{self.ntime:08x}", self.clean_jobs if clean is None else clean]


@dataclass
class WorkerStats:
    accepted: int = 0
    rejected: int = 0
    best_difficulty: float = 0.0


@dataclass(frozen=True)
class AcceptedShare:
    job_id: str
    worker: str
    extranonce1: str
    extranonce2: str
    ntime: str
    nonce: str
    version_bits: str | None
    header: bytes
    hash: bytes
    difficulty: float

    @property
    def hash_hex(self) -> str:
        return self.hash[::-1].hex()


#: How many of the latest accepted shares PoolStats.accepted_shares keeps (at least half).
KEEP_ACCEPTED_SHARES = 1000


@dataclass
class PoolStats:
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    workers: dict[str, WorkerStats] = field(default_factory=dict)
    best_share_difficulty: float = 0.0
    accepted_shares: list[AcceptedShare] = field(default_factory=list)
    jobs_issued: int = 0
    connections: int = 0
    connections_total: int = 0
    disconnects_for_misbehaviour: int = 0
    blocks_found: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


class _Reject(Exception):
    def __init__(self, code: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.code, self.message, self.reason = code, message, reason


@dataclass
class _Conn:
    cid: int
    writer: asyncio.StreamWriter
    extranonce1: bytes
    peer: str
    subscribed: bool = False
    workers: set[str] = field(default_factory=set)
    version_mask: int = 0
    target: int = 0
    difficulty: float = 1.0
    strikes: int = 0
    got_work: bool = False
    jobs: dict[str, Job] = field(default_factory=dict)
    closed: bool = False

    @property
    def authorized(self) -> bool:
        return bool(self.workers)


# ----------------------------------------------------------------------------- pool
class LocalPool:
    """A small but real Stratum v1 pool for local mining and tests (127.0.0.1 only).

    ``difficulty`` (pool convention) wins over ``difficulty_bits`` (leading zero bits of
    the share target).  ``jobs``: how many jobs to issue before ``finished`` is set (None
    = forever); a new job comes every ``job_interval`` seconds.  ``stale_grace``: seconds
    during which shares for a job replaced by a newer one are still accepted (0 = strict,
    like a real pool after a new block: they get 21 "Job not found (stale)").
    """

    def __init__(self, difficulty_bits: int = 20, difficulty: float | None = None, *,
                 jobs: int | None = 3, job_interval: float = 15.0, extranonce2_size: int = 4,
                 version_mask: int = 0x1FFFE000, clean_jobs: bool = True,
                 host: str = "127.0.0.1", port: int = 0, start_height: int = 900_000,
                 stale_grace: float = 0.0) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the local pool only binds 127.0.0.1, not {host!r}")
        if difficulty is None:
            difficulty = bits_to_difficulty(difficulty_bits)
        self.difficulty = float(difficulty)
        self.target = difficulty_to_target(self.difficulty)
        if jobs is not None and jobs < 1:
            raise ValueError("jobs must be >= 1 (or None for no limit)")
        if job_interval <= 0:
            raise ValueError("job_interval must be > 0")
        if not 0 <= extranonce2_size <= 16 or _EXTRANONCE1_SIZE + extranonce2_size < 1:
            raise ValueError("extranonce2_size must be 0..16")
        self.jobs_limit = jobs
        self.job_interval = job_interval
        self.extranonce2_size = extranonce2_size
        self.version_mask = version_mask & 0xFFFFFFFF
        self.clean_jobs = clean_jobs
        self.stale_grace = max(0.0, stale_grace)
        self.host = host
        self._port = port
        self._height = start_height
        self._server: asyncio.base_events.Server | None = None
        self._timer: asyncio.Task[None] | None = None
        self._conns: dict[int, _Conn] = {}
        self._handlers: set[asyncio.Task[Any]] = set()
        self._next_cid = 1
        self._next_job = 1
        self._jobs: OrderedDict[str, PoolJob] = OrderedDict()
        # retired job id -> (job, monotonic time it was retired); shares for it are stale,
        # or still accepted within stale_grace seconds
        self._stale_ids: OrderedDict[str, tuple[PoolJob, float]] = OrderedDict()
        self._seen: dict[str, set[tuple[Any, ...]]] = {}
        self._prevhash = self._random_prevhash()
        self._stats = PoolStats()
        self._lock = threading.Lock()
        self._en1_salt = int.from_bytes(os.urandom(2), "big") << 16
        self.finished = asyncio.Event()
        self.on_finished: list[Any] = []   # callables run (in the loop) when finished is set

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
        with self._lock:
            return copy.deepcopy(self._stats)

    @property
    def current_job(self) -> PoolJob | None:
        return next(reversed(self._jobs.values())) if self._jobs else None

    # --------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Bind (127.0.0.1), issue the first job and start the job timer."""
        self.finished = asyncio.Event()
        self._server = await asyncio.start_server(self._handle, self.host, self._port,
                                                  limit=MAX_LINE_BYTES + 2)
        self._port = self._server.sockets[0].getsockname()[1]
        self._issue_job(clean=True)
        self._timer = asyncio.create_task(self._job_timer())
        log.info("local pool on %s, difficulty %.6g, %s jobs every %.1fs", self.url, self.difficulty,
                 self.jobs_limit if self.jobs_limit is not None else "unlimited", self.job_interval)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._timer
            self._timer = None
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

    async def __aenter__(self) -> "LocalPool":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def new_job(self, clean: bool = True) -> PoolJob:
        """Issue a job now (besides the timer) and send it to every client."""
        return self._issue_job(clean=clean)

    # --------------------------------------------------------------- jobs
    @staticmethod
    def _random_prevhash() -> bytes:
        # header byte order; a real block hash has its zero bytes at the end here
        return os.urandom(24) + b"\x00" * 8

    def _make_job(self, clean: bool) -> PoolJob:
        if clean or not self._jobs:
            if self._jobs:
                self._prevhash = self._random_prevhash()
                self._height += 1
        job_id = f"{self._next_job:x}"
        self._next_job += 1
        txids = tuple(os.urandom(32) for _ in range(5))
        coinb1, coinb2 = build_coinbase_parts(self._height, _EXTRANONCE1_SIZE + self.extranonce2_size)
        return PoolJob(job_id=job_id, height=self._height, prevhash=self._prevhash, coinb1=coinb1,
                       coinb2=coinb2, txids=txids, branch=tuple(merkle_branch(list(txids))),
                       version=0x20000000, nbits=_NBITS, ntime=int(time.time()), clean_jobs=clean)

    def _issue_job(self, clean: bool) -> PoolJob:
        job = self._make_job(clean)
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
        with self._lock:
            self._stats.jobs_issued += 1
        log.info("local pool: job %s (height %d, clean=%s)", job.job_id, job.height, clean)
        line = encode_request(None, "mining.notify", job.notify_params())
        for conn in list(self._conns.values()):
            for jid in [j for j in conn.jobs if j not in self._jobs and j not in self._stale_ids]:
                del conn.jobs[jid]
            if conn.got_work:
                self._send(conn, line)
        return job

    async def _job_timer(self) -> None:
        try:
            while True:
                await asyncio.sleep(self.job_interval)
                with self._lock:
                    issued = self._stats.jobs_issued
                if self.jobs_limit is not None and issued >= self.jobs_limit:
                    self._finish()
                    return
                self._issue_job(clean=self.clean_jobs)
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

    # --------------------------------------------------------------- connections
    def _send(self, conn: _Conn, line: str) -> None:
        if conn.closed:
            return
        transport = conn.writer.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size() > _MAX_WRITE_BUFFER:
            log.warning("local pool: client %s does not read; dropping it", conn.peer)
            self._close(conn)
            return
        conn.writer.write(line.encode("utf-8"))

    async def set_difficulty(self, difficulty: float) -> None:
        """Change the share difficulty of every client now (as a vardiff pool does): shares
        are checked against the new target from this moment, and clients are told."""
        target = difficulty_to_target(difficulty)  # ValueError for <= 0, nan, inf
        self.difficulty, self.target = float(difficulty), target
        for conn in list(self._conns.values()):
            conn.difficulty, conn.target = float(difficulty), target
            if conn.got_work:
                self._send(conn, encode_request(None, "mining.set_difficulty", [conn.difficulty]))

    async def disconnect_all(self) -> int:
        """Close every client connection (as a pool restart would); returns how many."""
        conns = list(self._conns.values())
        for conn in conns:
            self._close(conn)
        return len(conns)

    def _close(self, conn: _Conn) -> None:
        if not conn.closed:
            conn.closed = True
            conn.writer.close()

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
        with self._lock:
            self._stats.connections += 1
            self._stats.connections_total += 1
        log.debug("local pool: client %d connected from %s", cid, peer)
        try:
            while not conn.closed:
                try:
                    line = await reader.readline()
                except ValueError:
                    log.warning("local pool: client %s sent a line over %d bytes; disconnecting", peer, MAX_LINE_BYTES)
                    self._send(conn, encode_response(None, None, make_error(20, "Line too long")))
                    self._misbehaved(conn)
                    break
                except (ConnectionError, OSError):
                    break
                if not line:
                    break
                if not line.strip():
                    continue
                try:
                    self._on_line(conn, line)
                except Exception:  # noqa: BLE001 - one client's input must never kill the pool
                    log.exception("local pool: error handling a line from %s", peer)
                    self._send(conn, encode_response(None, None, make_error(20, "Internal error")))
                if conn.strikes >= _MAX_STRIKES:
                    log.warning("local pool: client %s sent too many malformed lines; disconnecting", peer)
                    self._misbehaved(conn)
                    break
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.drain()
        except asyncio.CancelledError:
            pass
        finally:
            self._conns.pop(cid, None)
            with self._lock:
                self._stats.connections -= 1
            self._close(conn)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            if task is not None:
                self._handlers.discard(task)
            log.debug("local pool: client %d gone", cid)

    def _misbehaved(self, conn: _Conn) -> None:
        with self._lock:
            self._stats.disconnects_for_misbehaviour += 1
        self._close(conn)

    # --------------------------------------------------------------- messages
    def _on_line(self, conn: _Conn, line: bytes) -> None:
        try:
            msg = decode_line(line)
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
        except _Reject as rej:
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
        if not req.params or not isinstance(req.params[0], str) or len(req.params[0]) > 256:
            raise _Reject(20, "Malformed authorize", "malformed")
        conn.workers.add(req.params[0])
        return True

    def _on_configure(self, conn: _Conn, req: Request) -> Any:
        if len(req.params) < 1 or not isinstance(req.params[0], list):
            raise _Reject(20, "Malformed configure", "malformed")
        options = req.params[1] if len(req.params) > 1 and isinstance(req.params[1], dict) else {}
        result: dict[str, Any] = {}
        for ext in req.params[0]:
            if ext != "version-rolling":
                if isinstance(ext, str):
                    result[ext] = False
                continue
            raw = options.get("version-rolling.mask", "ffffffff")
            if not isinstance(raw, str) or not 0 < len(raw) <= 8 or not _HEX_RE.match(raw):
                raise _Reject(20, "Malformed version-rolling.mask", "malformed")
            granted = int(raw, 16) & self.version_mask
            min_bits = options.get("version-rolling.min-bit-count", 0)
            if granted == 0 or (isinstance(min_bits, int) and bin(granted).count("1") < min_bits):
                conn.version_mask = 0
                conn.jobs.clear()
                result["version-rolling"] = False
                continue
            conn.version_mask = granted
            conn.jobs.clear()
            result["version-rolling"] = True
            result["version-rolling.mask"] = f"{granted:08x}"
        return result

    # --------------------------------------------------------------- shares
    def _job_for(self, conn: _Conn, pjob: PoolJob) -> Job:
        job = conn.jobs.get(pjob.job_id)
        if job is None:
            job = Job.from_notify(pjob.notify_params(), extranonce1=conn.extranonce1,
                                  extranonce2_size=self.extranonce2_size, target=conn.target,
                                  version_mask=conn.version_mask)
            conn.jobs[pjob.job_id] = job
        return job

    def _reject(self, conn: _Conn, worker: str | None, rej: _Reject) -> None:
        with self._lock:
            self._stats.rejected[rej.reason] = self._stats.rejected.get(rej.reason, 0) + 1
            if worker is not None and worker in conn.workers:
                self._stats.workers.setdefault(worker, WorkerStats()).rejected += 1
        log.info("local pool: share from %s rejected: %s", conn.peer, rej.message)

    @staticmethod
    def _hex_param(value: Any, digits: int, what: str) -> bytes:
        if not isinstance(value, str) or len(value) != digits or not _HEX_RE.match(value):
            raise _Reject(20, f"Invalid {what}", "malformed")
        return bytes.fromhex(value)

    def _on_submit(self, conn: _Conn, req: Request) -> Any:
        p = req.params
        worker = p[0] if p and isinstance(p[0], str) else None
        try:
            return self._check_submit(conn, p, worker)
        except _Reject as rej:
            self._reject(conn, worker, rej)
            raise

    def _check_submit(self, conn: _Conn, p: list[Any], worker: str | None) -> bool:
        if not conn.subscribed:
            raise _Reject(25, "Not subscribed", "not subscribed")
        if worker is None or worker not in conn.workers:
            raise _Reject(24, "Unauthorized worker", "unauthorized")
        if not 5 <= len(p) <= 6 or not all(isinstance(x, str) for x in p):
            raise _Reject(20, "Malformed submit", "malformed")
        job_id = p[1]
        pjob = self._jobs.get(job_id)
        if pjob is None:
            retired = self._stale_ids.get(job_id)
            if retired is None:
                raise _Reject(21, "Job not found", "job not found")
            if time.monotonic() - retired[1] > self.stale_grace:
                raise _Reject(21, "Job not found (stale)", "stale")
            pjob = retired[0]  # within the grace period after it was replaced
        en2 = self._hex_param(p[2], 2 * self.extranonce2_size, "extranonce2 size")
        ntime = int.from_bytes(self._hex_param(p[3], 8, "ntime"), "big")
        nonce = int.from_bytes(self._hex_param(p[4], 8, "nonce"), "big")
        if not pjob.ntime <= ntime <= int(time.time()) + _NTIME_FUTURE:
            raise _Reject(20, "ntime out of range", "malformed")
        vb: int | None = None
        if len(p) == 6:
            vb = int.from_bytes(self._hex_param(p[5], 8, "version bits"), "big")
            if vb & ~conn.version_mask & 0xFFFFFFFF:
                raise _Reject(20, "Version bits outside the negotiated mask", "malformed")
        try:
            job = self._job_for(conn, pjob)
        except JobError as exc:  # cannot happen with our own jobs; be safe anyway
            raise _Reject(20, f"Internal job error: {exc}", "other") from None
        version = job.rolled_version(vb if conn.version_mask else None)
        header = build_header(version, job.prevhash, job.merkle_root(en2), ntime, job.nbits, nonce)
        key = (conn.extranonce1, en2, ntime, nonce, version)
        seen = self._seen.setdefault(job_id, set())
        if key in seen:
            raise _Reject(22, "Duplicate share", "duplicate")
        digest = sha256d(header)
        if not meets_target(digest, conn.target):
            raise _Reject(23, "Low difficulty share", "low difficulty")
        seen.add(key)
        diff = hash_difficulty(digest)
        share = AcceptedShare(job_id, worker or "", conn.extranonce1.hex(), en2.hex(), p[3].lower(),
                              p[4].lower(), p[5].lower() if len(p) == 6 else None, header, digest, diff)
        with self._lock:
            st = self._stats
            st.accepted += 1
            st.accepted_shares.append(share)
            if len(st.accepted_shares) > KEEP_ACCEPTED_SHARES:  # bounded: long runs stay flat
                del st.accepted_shares[:len(st.accepted_shares) - KEEP_ACCEPTED_SHARES // 2]
            st.best_share_difficulty = max(st.best_share_difficulty, diff)
            ws = st.workers.setdefault(worker or "", WorkerStats())
            ws.accepted += 1
            ws.best_difficulty = max(ws.best_difficulty, diff)
            if meets_target(digest, nbits_to_target(job.nbits)):
                st.blocks_found += 1
        log.info("local pool: share accepted from %s (job %s, diff %.4g)", worker, job_id, diff)
        return True


# --------------------------------------------------------------------- thread runner
class PoolThread:
    """Run a LocalPool on an event loop in a thread of its own (for sync code and tests)."""

    def __init__(self, **pool_kwargs: Any) -> None:
        self._kwargs = pool_kwargs
        self.pool: LocalPool | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 10.0) -> "PoolThread":
        self._thread = threading.Thread(target=self._run, name="sgm-local-pool", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("local pool did not start in time")
        if self._error is not None:
            raise RuntimeError(f"local pool failed to start: {self._error}") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        try:
            self.pool = LocalPool(**self._kwargs)
            self.pool.on_finished.append(self._finished.set)
            await self.pool.start()
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            await self.pool.stop()

    def _call(self, coro: Any, timeout: float = 10.0) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def port(self) -> int:
        assert self.pool is not None
        return self.pool.port

    @property
    def url(self) -> str:
        assert self.pool is not None
        return self.pool.url

    @property
    def stats(self) -> PoolStats:
        assert self.pool is not None
        return self.pool.stats

    def new_job(self, clean: bool = True) -> PoolJob:
        assert self.pool is not None
        return self._call(self.pool.new_job(clean))

    def current_job(self) -> PoolJob | None:
        assert self.pool is not None

        async def get() -> PoolJob | None:
            return self.pool.current_job if self.pool is not None else None
        return self._call(get())

    def set_difficulty(self, difficulty: float) -> None:
        assert self.pool is not None
        self._call(self.pool.set_difficulty(difficulty))

    def disconnect_all(self) -> int:
        assert self.pool is not None
        return self._call(self.pool.disconnect_all())

    def wait_finished(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        if self.loop is not None and self._stopped is not None and self._thread is not None \
                and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout)

    def __enter__(self) -> "PoolThread":
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_in_thread(**pool_kwargs: Any) -> PoolThread:
    """Start a LocalPool on its own loop thread; call ``.stop()`` when done."""
    return PoolThread(**pool_kwargs).start()
