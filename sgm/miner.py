"""The Miner facade: the one object the CLI, the monitoring API and the GUI drive.

    miner = Miner(MinerConfig(...)); miner.start(); ...; miner.stop(); miner.summary()

It wires the layers together without letting them know each other: the Stratum client
(protocol) hands Jobs to the Scheduler, devices pull work from the Scheduler, and found
shares go back to the client through a submit callback.  All networking (the pool client
and, when no pool is given, the embedded local pool) runs on one asyncio loop thread.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, wait as futures_wait
from dataclasses import dataclass, field
from typing import Any

from sgm import _native
from sgm.devices import DEFAULT_DEVICES, check_device_selection, cpu_count
from sgm.devices.base import Device
from sgm.devices.cpu import CpuDevice
from sgm.jobs import Share
from sgm.pool import LocalPool
from sgm.scheduler import DEFAULT_BATCH_TIME, Scheduler
from sgm.solo.client import SoloClient, SoloConfig, SoloError, SoloEvent
from sgm.stratum.client import NOT_CONNECTED, StratumClient, Verdict, parse_pool_url
from sgm.stratum.protocol import Authorized, Connected, DifficultyChanged, Disconnected, ProtocolError, ServerMessage
from sgm.telemetry import Event, Subscription, Telemetry

log = logging.getLogger(__name__)

#: Seconds a stop keeps submitting the shares already found before counting them stale.
STOP_SUBMIT_GRACE = 2.0
#: How long start() waits for the network thread (pool client, embedded pool) to come up.
NET_START_TIMEOUT = 30.0
#: Shares submitted but not yet answered, at most.  A device that finds more waits for a
#: slot (backpressure: hashing slows to the pool's pace instead of queueing without bound).
MAX_SUBMITS_IN_FLIGHT = 256


@dataclass(frozen=True)
class PoolConfig:
    url: str
    user: str = ""
    password: str = "x"


@dataclass
class MinerConfig:
    pools: list[PoolConfig] = field(default_factory=list)  # empty: the embedded local pool
    threads: int | None = None                 # CPU worker threads (default: one per core)
    device_kinds: tuple[str, ...] = DEFAULT_DEVICES   # cpu, opencl, opencl-gpu, openclP.D
    opencl_kernel_time: float | None = None    # seconds one OpenCL launch should take
    #: run one CPU thread fewer per OpenCL GPU (its host thread's core) when threads is auto
    reserve_core_per_gpu: bool = False
    impl: str | None = None                    # CPU kernel (default: fastest available)
    batch_time: float = DEFAULT_BATCH_TIME     # seconds one batch should take
    local_jobs: int | None = 3                 # embedded pool: jobs to issue (None: forever)
    local_difficulty_bits: int = 20            # embedded pool: leading zero bits of the share target
    local_difficulty: float | None = None      # embedded pool: pool difficulty (wins over bits)
    local_job_interval: float = 15.0           # embedded pool: seconds per job
    local_clean_jobs: bool = True
    version_rolling: bool = True
    suggest_difficulty: float | None = None    # pools: mining.suggest_difficulty
    ssl_cafile: str | None = None              # private CA for stratum+ssl:// (and an https node)
    ssl_verify: bool = True                    # False: no certificate checks
    solo: SoloConfig | None = None             # solo mining against a node (no pools then)

    def validate(self) -> None:
        """Raise ValueError with a clear message for any bad setting."""
        if self.threads is not None and not 1 <= self.threads <= 1024:
            raise ValueError(f"threads must be in 1..1024, got {self.threads}")
        check_device_selection(tuple(self.device_kinds))
        if self.opencl_kernel_time is not None and not 0.0005 <= self.opencl_kernel_time <= 1:
            raise ValueError(f"OpenCL kernel time must be in 0.0005..1 s, got {self.opencl_kernel_time}")
        if self.impl is not None:
            _native.require_implementation(self.impl)
        if not 0.001 <= self.batch_time <= 60:
            raise ValueError(f"batch time must be in 0.001..60 s, got {self.batch_time}")
        if self.local_jobs is not None and self.local_jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {self.local_jobs}")
        if not 1 <= self.local_difficulty_bits <= 255:
            raise ValueError(f"difficulty bits must be in 1..255, got {self.local_difficulty_bits}")
        if not self.local_job_interval > 0:
            raise ValueError(f"duration must be > 0, got {self.local_job_interval}")
        for p in self.pools:
            parse_pool_url(p.url, p.user, p.password)  # raises ValueError on a bad URL
        if self.suggest_difficulty is not None and not 0 < self.suggest_difficulty < float("inf"):
            raise ValueError(f"suggested difficulty must be a positive number, got "
                             f"{self.suggest_difficulty}")
        if self.ssl_cafile is not None and not self.ssl_verify:
            raise ValueError("a private CA (--cert) and no certificate checks (--no-verify) "
                             "contradict each other")
        if self.solo is not None:
            if self.pools:
                raise ValueError("solo mining takes the node's URL, not pools")
            self.solo.validate()


def tls_context(cafile: str | None, verify: bool) -> ssl.SSLContext | None:
    """The TLS context for a private CA or for no certificate checks (None: defaults)."""
    if cafile is not None:
        return ssl.create_default_context(cafile=cafile)
    if not verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    return None


class SubmitSlots:
    """Shares in flight, at most ``size``: taken before a share is sent, given back when
    its verdict comes.  Unlike a semaphore it takes and gives many at once (a drain's
    shares, a read's verdicts: one lock round trip each)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._free = size
        self._cond = threading.Condition(threading.Lock())

    @property
    def in_use(self) -> int:
        return self.size - self._free

    def take_upto(self, n: int) -> int:
        """Take up to ``n`` free slots without waiting; how many were taken."""
        with self._cond:
            k = min(n, self._free)
            self._free -= k
            return k

    def take_one(self, timeout: float) -> bool:
        """Take one slot, waiting up to ``timeout`` s for one to be given back."""
        with self._cond:
            if not self._free:
                self._cond.wait(timeout)
            if self._free:
                self._free -= 1
                return True
            return False

    def give(self, n: int) -> None:
        with self._cond:
            if self._free + n > self.size:
                raise ValueError(f"{n} slots given back, only {self.size - self._free} taken")
            self._free += n
            self._cond.notify()


class Miner:
    """Start/stop mining, toggle devices, observe everything through telemetry events."""

    def __init__(self, config: MinerConfig, telemetry: Telemetry | None = None) -> None:
        config.validate()
        self.config = config
        self.telemetry = telemetry or Telemetry()
        self.scheduler = Scheduler(self.telemetry, submit=self._submit_from_device,
                                   submit_batch=self._submit_batch,
                                   batch_time=config.batch_time)
        self.devices: list[Device] = []
        self.local_pool: LocalPool | None = None
        self.client: StratumClient | None = None
        self.solo: SoloClient | None = None     # the work source in solo mode
        self.finished = threading.Event()     # the embedded pool issued all its jobs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._net_thread: threading.Thread | None = None
        self._net_ready = threading.Event()
        self._net_error: BaseException | None = None
        self._stop_net: asyncio.Event | None = None
        self._pending: set[Future[Any]] = set()
        self._pending_lock = threading.Lock()
        self._submit_slots = SubmitSlots(MAX_SUBMITS_IN_FLIGHT)
        self._started_at = 0.0
        self._stopped_at: float | None = None
        self._stop_deadline = 0.0
        self._running = False
        #: shares the pool received but never answered (counted neither way)
        self.unanswered = 0
        #: one per config.pools entry: switched off by the user (cgminer's disablepool)
        self.pool_disabled: list[bool] = [False] * len(config.pools)
        #: the client's endpoint of each config.pools entry (the client's own list holds
        #: only the enabled ones, in priority order)
        self._endpoints: list[Any] = []

    # ------------------------------------------------------------------ devices
    def _make_devices(self) -> list[Device]:
        cfg = self.config
        devices: list[Device] = []
        opencl: list[Device] = []
        if any(k != "cpu" for k in cfg.device_kinds):
            from sgm.devices.opencl import make_devices

            opencl.extend(make_devices(cfg.device_kinds, kernel_time=cfg.opencl_kernel_time))
        if "cpu" in cfg.device_kinds:
            n = cfg.threads or cpu_count()
            if cfg.threads is None and cfg.reserve_core_per_gpu:
                n = max(1, n - sum(getattr(d, "device_type", "") == "GPU" for d in opencl))
            devices.extend(CpuDevice(i, cfg.impl) for i in range(n))
        devices.extend(opencl)
        if not devices:
            raise ValueError("no usable device: enable the CPU (--devices cpu)")
        return devices

    def device(self, name: str) -> Device:
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(f"no device named {name!r}; devices: {', '.join(d.name for d in self.devices)}")

    def set_device_enabled(self, name: str, enabled: bool) -> None:
        self.device(name).set_enabled(enabled)

    # ------------------------------------------------------------------ lifecycle
    def start(self, disabled: Iterable[str] = ()) -> None:
        """Start the network side and every device; on any failure, undo what was started
        and raise (RuntimeError / ValueError with the reason).

        ``disabled``: names of devices to start switched off (the desktop app's remembered
        choice): they never hash until :meth:`set_device_enabled` turns them on; names of
        devices this machine does not have are ignored."""
        if self._running:
            raise RuntimeError("miner already running")
        self.devices = self._make_devices()
        off = set(disabled)
        for d in self.devices:
            if d.name in off:
                d.set_enabled(False)
        try:
            for d in self.devices:   # measure each device before the pool's clock starts
                d.score = d.calibrate()
            self._started_at = time.monotonic()
            self._net_error = None
            self._net_ready.clear()
            self._net_thread = threading.Thread(target=self._net_main, name="sgm-net", daemon=True)
            self._net_thread.start()
            if not self._net_ready.wait(NET_START_TIMEOUT):
                raise RuntimeError(f"network start failed: not ready within {NET_START_TIMEOUT:g} s")
            if self._net_error is not None:
                raise RuntimeError(f"network start failed: {self._net_error}") from self._net_error
            for d in self.devices:
                d.start(self.scheduler)
        except BaseException:
            self._running = True     # let stop() undo everything started so far
            self.stop()
            raise
        self._running = True

    def stop(self, timeout: float = 5.0) -> None:
        """Stop devices, wait briefly for shares in flight, close the network side."""
        if not self._running:
            return
        # shares already found are still submitted for a moment (the pool's connection is
        # up until the end); past this they are counted stale, never sent
        self._stop_deadline = time.monotonic() + min(STOP_SUBMIT_GRACE, timeout)
        self._running = False
        self.scheduler.close()
        for d in self.devices:
            d.stop()
        # every candidate found is re-checked and counted (submitted or stale) before the
        # network side closes
        self.scheduler.shutdown(timeout)
        with self._pending_lock:
            pending = list(self._pending)
        if pending:  # let shares already found reach the pool
            futures_wait(pending, timeout)
        loop, stop_net = self._loop, self._stop_net
        if loop is not None and stop_net is not None:
            with contextlib.suppress(RuntimeError):   # loop already closed
                loop.call_soon_threadsafe(stop_net.set)
        if self._net_thread is not None:
            self._net_thread.join(timeout)
            if self._net_thread.is_alive():
                log.warning("network thread did not stop within %.0f s", timeout)
        self._stopped_at = time.monotonic()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the embedded pool finished its jobs (True) or timeout (False)."""
        return self.finished.wait(timeout)

    @property
    def running(self) -> bool:
        return self._running

    def subscribe(self, callback: Callable[[Event], Any] | None = None,
                  maxsize: int = 1000, gather: float = 0.0) -> Subscription:
        """Telemetry events: with ``callback``, called on a dispatcher thread of the
        subscription's own (never the network or a device thread, which only append to its
        buffer of ``maxsize`` events, dropping the oldest when full); without, a queue to
        pull from.  Close the subscription when done; closing it after :meth:`stop` lets
        the callback see the last events (it waits, bounded, for the buffer to drain).
        ``gather``: seconds the callback's events may gather first (see EventBus.subscribe)."""
        return self.telemetry.subscribe(callback, maxsize, gather=gather)

    def add_pool(self, url: str, user: str = "", password: str = "x") -> None:
        """Append a failover pool (lowest priority)."""
        endpoint = parse_pool_url(url, user, password)

        def add() -> None:
            self.config.pools.append(PoolConfig(url, user, password))
            self.pool_disabled.append(False)
            if self.client is not None and self._endpoints:
                self._endpoints.append(endpoint)
                self.client.pools.append(endpoint)
        self._on_loop(add)

    # ------------------------------------------------------------------ pool control
    # The monitoring API's switchpool / enablepool / disablepool / removepool /
    # poolpriority.  Each raises ValueError with the reason for a request it refuses; the
    # change runs on the network loop (the client's pool list is the loop's).
    def _check_pool_index(self, index: int) -> None:
        if self.config.solo is not None or not self.config.pools:
            raise ValueError("the pool list is fixed: "
                             + ("solo mining" if self.config.solo else "the embedded local pool"))
        if not 0 <= index < len(self.config.pools):
            raise ValueError(f"invalid pool id {index}: range is 0 - {len(self.config.pools) - 1}")

    def switch_pool(self, index: int) -> None:
        """Mine pool ``index`` now (it becomes the first in priority, as the pools before
        it keep their order behind it); a disabled pool is enabled."""
        self._check_pool_index(index)
        order = [index] + [i for i in range(len(self.config.pools)) if i != index]
        self.pool_disabled[index] = False
        self.set_pool_priority(order)

    def set_pool_enabled(self, index: int, enabled: bool) -> None:
        """Switch pool ``index`` on or off (the last enabled pool cannot be switched off)."""
        self._check_pool_index(index)
        if not enabled and sum(not d for d in self.pool_disabled) <= 1 \
                and not self.pool_disabled[index]:
            raise ValueError(f"cannot disable the last enabled pool {index}")
        self.pool_disabled[index] = not enabled
        self._on_loop(self._apply_pools)

    def remove_pool(self, index: int) -> PoolConfig:
        """Remove pool ``index`` (not the last one, nor the one mined now)."""
        self._check_pool_index(index)
        if len(self.config.pools) == 1:
            raise ValueError(f"cannot remove the last pool {index}")
        if any(row["active"] for row in self.pool_status()[index:index + 1]):
            raise ValueError(f"cannot remove the active pool {index}")
        result: list[PoolConfig] = []

        def remove() -> None:
            result.append(self.config.pools.pop(index))
            self.pool_disabled.pop(index)
            if self._endpoints:
                self._endpoints.pop(index)
            self._apply_pools()
        self._on_loop(remove)
        return result[0]

    def set_pool_priority(self, order: list[int]) -> None:
        """Reorder the pools: ``order`` lists pool ids, highest priority first; ids not
        named keep their order after those named."""
        n = len(self.config.pools)
        for i in order:
            self._check_pool_index(i)
        if len(set(order)) != len(order):
            raise ValueError("a pool id is given twice")
        full = list(order) + [i for i in range(n) if i not in order]

        def reorder() -> None:
            self.config.pools[:] = [self.config.pools[i] for i in full]
            self.pool_disabled[:] = [self.pool_disabled[i] for i in full]
            if self._endpoints:
                self._endpoints[:] = [self._endpoints[i] for i in full]
            self._apply_pools()
        self._on_loop(reorder)

    def _apply_pools(self) -> None:
        """(Loop thread.)  Give the client the enabled pools in priority order and move to
        the first of them when it is not the pool mined now."""
        client = self.client
        if client is None or not self._endpoints:
            return
        enabled = [e for e, off in zip(self._endpoints, self.pool_disabled, strict=False) if not off]
        client.pools[:] = enabled
        if client.current_pool is not enabled[0] or not client.connected:
            client.switch_to(0)

    def _on_loop(self, fn: Callable[[], Any], timeout: float = 10.0) -> None:
        """Run ``fn`` on the network loop and wait for it (directly when not mining)."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self._running \
                or threading.current_thread() is self._net_thread:
            fn()
            return

        async def call() -> None:
            fn()
        asyncio.run_coroutine_threadsafe(call(), loop).result(timeout)

    def network_difficulty(self) -> float | None:
        """The block difficulty of the work mined now (from its nbits), None without work."""
        job = self.scheduler.current_job
        if job is None:
            return None
        from sgm.hashing import nbits_to_target, target_to_difficulty
        try:
            difficulty = target_to_difficulty(nbits_to_target(job.nbits))
        except (ValueError, ZeroDivisionError):
            return None
        # a zero target (nbits of a broken template) has no finite difficulty: unknown
        return difficulty if 0 < difficulty < float("inf") else None

    def pool_status(self) -> list[dict[str, Any]]:
        """One row per pool in priority order, for a status display (any thread may call).

        ``{"url", "user", "state", "active", "difficulty", "last_submit_ms", "error",
        "retry_in_s"}``: ``error`` is why the pool's last session failed in plain words
        (None once it sent a job), ``retry_in_s`` the seconds until the client tries it
        again (None unless it is waiting to).  State is
        "connected", "connecting" (a session is being opened, or the client waits to retry
        it), "disconnected" or "disabled" (switched off by the user); the embedded pool is
        one row with state "local".  Only the pool the client works with (``active``) has
        a difficulty and a submit round trip (ms, write to the pool's answer; None until
        one share was answered).  The values are read without locking from the network
        thread's client: each is one attribute read, so a row may mix two moments but never
        holds a torn value.
        """
        client = self.client
        running = self._running
        difficulty = client.difficulty if client is not None else None
        latency = client.last_submit_ms if client is not None else None
        if self.config.solo is not None:
            return []
        if not self.config.pools:
            local = self.local_pool
            connected = running and client is not None and client.connected
            return [{"url": local.url if local is not None else "embedded local pool",
                     "user": "sgm.local", "state": "local", "active": bool(connected),
                     "difficulty": difficulty if connected else None,
                     "last_submit_ms": latency if connected else None,
                     "error": None, "retry_in_s": None}]
        rows: list[dict[str, Any]] = []
        endpoints = list(self._endpoints)
        current = client.current_pool if client is not None and client.connected else None
        attempting = client.attempting if client is not None else None
        errors = dict(client.last_errors) if client is not None else {}
        retry = client.retry_at if client is not None else None
        now = time.monotonic()
        for i, pool in enumerate(self.config.pools):
            endpoint = endpoints[i] if i < len(endpoints) else None
            if not running or endpoint is None:
                state = "disconnected"
            elif current is endpoint:
                state = "connected"
            elif attempting is endpoint:
                state = "connecting"
            else:
                state = "disconnected"
            active = state == "connected"
            if i < len(self.pool_disabled) and self.pool_disabled[i]:
                state = "disabled"
            retry_in = max(0.0, retry[1] - now) \
                if running and retry is not None and retry[0] == i else None
            rows.append({"url": pool.url, "user": pool.user, "state": state, "active": active,
                         "difficulty": difficulty if active else None,
                         "last_submit_ms": latency if active else None,
                         "error": errors.get(i) if running and not active else None,
                         "retry_in_s": retry_in})
        return rows

    # ------------------------------------------------------------------ network thread
    def _net_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._net())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._net_error = exc
            log.exception("network thread failed")
        finally:
            self._net_ready.set()
            loop.close()

    async def _net(self) -> None:
        self._stop_net = asyncio.Event()
        cfg = self.config
        if cfg.solo is not None:
            await self._net_solo(cfg.solo)
            return
        if cfg.pools:
            entries = [(p.url, p.user, p.password) for p in cfg.pools]
        else:
            self.local_pool = LocalPool(
                difficulty_bits=cfg.local_difficulty_bits, difficulty=cfg.local_difficulty,
                jobs=cfg.local_jobs, job_interval=cfg.local_job_interval,
                clean_jobs=cfg.local_clean_jobs,
                # the embedded pool's job changes are timer ticks, not new blocks: shares of
                # the previous job still in flight are accepted for a moment, as pools do
                stale_grace=min(2.0, cfg.local_job_interval / 4))
            self.local_pool.on_finished.append(self.finished.set)
            await self.local_pool.start()
            entries = [(self.local_pool.url, "sgm.local", "x")]
        self.client = StratumClient(entries, on_job=self.scheduler.set_job,
                                    on_job_update=self.scheduler.update_job,
                                    on_event=self._on_pool_event,
                                    version_rolling=cfg.version_rolling,
                                    suggest_difficulty=cfg.suggest_difficulty,
                                    ssl_verify=cfg.ssl_verify,
                                    ssl_context=tls_context(cfg.ssl_cafile, cfg.ssl_verify))
        if cfg.pools:
            self._endpoints = list(self.client.pools)
        client_task = asyncio.create_task(self.client.run())
        self._net_ready.set()
        try:
            await self._stop_net.wait()
        finally:
            await self.client.close()
            client_task.cancel()
            await asyncio.gather(client_task, return_exceptions=True)
            if self.local_pool is not None:
                await self.local_pool.stop()

    async def _net_solo(self, solo_cfg: SoloConfig) -> None:
        """Solo mode: a node's templates instead of a pool's jobs (start() fails with the
        reason when the node, the credentials or the address are not right)."""
        assert self._stop_net is not None
        try:
            self.solo = SoloClient(solo_cfg, on_job=self.scheduler.set_job,
                                   on_event=self._on_solo_event,
                                   ssl_context=tls_context(self.config.ssl_cafile,
                                                           self.config.ssl_verify))
            await self.solo.start()
        except (SoloError, ValueError, OSError) as exc:
            self._net_error = exc
            return
        task = asyncio.create_task(self.solo.run())
        self._net_ready.set()
        try:
            await self._stop_net.wait()
        finally:
            await self.solo.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _on_solo_event(self, ev: SoloEvent) -> None:
        """Solo happenings: pause the devices when the node is gone or a block was found
        for the current work; show the message."""
        if ev.pause:
            self.scheduler.clear_jobs()
        stopping = self._stop_net is not None and self._stop_net.is_set()
        if ev.level != "DEBUG" and not stopping:
            self.telemetry.log(ev.level, f"solo: {ev.message}")

    def _on_pool_event(self, ev: object) -> None:
        """Pool-side happenings worth showing to the user, as telemetry log events.

        Runs on the network loop; publishing only buffers the event for subscribers."""
        tel = self.telemetry
        if isinstance(ev, Connected):
            tel.log("INFO", f"pool: connected to {ev.url}")
        elif isinstance(ev, Disconnected):
            # not our own shutdown (also reported while start() is still starting devices)
            if self._stop_net is None or not self._stop_net.is_set():
                tel.log("WARNING", f"pool: disconnected from {ev.url}: {ev.reason}; "
                                   "devices wait for the next job")
                # shares of this session's jobs can no longer be submitted: stop hashing them
                self.scheduler.clear_jobs()
        elif isinstance(ev, DifficultyChanged):
            tel.log("INFO", f"pool: share difficulty {ev.difficulty:.6g}")
        elif isinstance(ev, Authorized) and not ev.ok:
            tel.log("ERROR", f"pool: worker not authorized: {ev.reason}")
        elif isinstance(ev, ProtocolError):
            tel.log("WARNING", f"pool: {ev.message}")
        elif isinstance(ev, ServerMessage):
            tel.log("INFO", f"pool says: {ev.text}")

    def _submit_from_device(self, share: Share, device: str) -> None:
        """Called on a device thread for each verified share: submit it on the loop.

        Blocks while MAX_SUBMITS_IN_FLIGHT shares await the pool's answer, so a flood of
        shares (a very low difficulty) slows the devices instead of piling up."""
        if not self._wait_submit_slot():
            self.telemetry.record_stale(device, share.job_id, share.nonce_int, share.difficulty)
            log.info("%s: share %s not submitted: the miner is stopping", device, share.nonce)
            return
        loop = self._loop
        client: StratumClient | SoloClient | None = self.solo or self.client
        if loop is None or client is None or loop.is_closed():
            self._submit_slots.give(1)
            self._count_verdict(device, share, Verdict(False, NOT_CONNECTED, sent=False))
            return

        async def submit() -> None:
            self._count_verdict(device, share, await client.submit(share))

        coro = submit()
        try:
            fut = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # the loop closed meanwhile (stopping): never sent, counted stale
            coro.close()
            self._submit_slots.give(1)
            self._count_verdict(device, share, Verdict(False, NOT_CONNECTED, sent=False))
            return
        with self._pending_lock:
            self._pending.add(fut)
        fut.add_done_callback(self._forget)

    def _submit_batch(self, shares: list[tuple[Share, str]]) -> None:
        """Called on the collector thread with the verified shares of one drain: one
        hand-over to the loop for as many as there are free submit slots (a flood costs a
        wake-up per drain, not one per share).  Blocks, like _submit_from_device, while
        MAX_SUBMITS_IN_FLIGHT shares await the pool's answer."""
        loop = self._loop
        client: StratumClient | SoloClient | None = self.solo or self.client
        if loop is None or client is None or loop.is_closed():
            for share, device in shares:
                self._count_verdict(device, share, Verdict(False, NOT_CONNECTED, sent=False))
            return
        slots = self._submit_slots
        i, n = 0, len(shares)
        while i < n:
            k = slots.take_upto(n - i)      # as many as are free, in one lock round trip
            if k:
                self._send_batch(loop, client, shares[i:i + k])
                i += k
                continue
            if not self._wait_submit_slot():
                # stopped: found, never sent
                self.telemetry.record_stale_count(shares[i][1], 1, unchecked=False)
                i += 1
                continue
            self._send_batch(loop, client, shares[i:i + 1])
            i += 1

    @property
    def submits_in_flight(self) -> int:
        """Shares sent (or being sent) whose answer has not come yet."""
        return self._submit_slots.in_use

    def _wait_submit_slot(self) -> bool:
        """Wait for a free submit slot; False once a stop's grace for shares ran out."""
        while True:
            if not self._running and time.monotonic() >= self._stop_deadline:
                return False
            if self._submit_slots.take_one(timeout=0.1):
                return True

    def _send_batch(self, loop: asyncio.AbstractEventLoop, client: StratumClient | SoloClient,
                    ready: list[tuple[Share, str]]) -> None:
        """Submit shares that each hold a submit slot (released as each is answered)."""
        if isinstance(client, StratumClient):
            self._send_batch_stratum(loop, client, ready)
            return
        async def submit_one(share: Share, device: str) -> None:
            try:
                self._count_verdict(device, share, await client.submit(share))
            finally:
                self._submit_slots.give(1)

        async def submit_all() -> None:
            await asyncio.gather(*(submit_one(s, d) for s, d in ready))

        coro = submit_all()
        try:
            fut = asyncio.run_coroutine_threadsafe(coro, loop)
        except RuntimeError:  # the loop closed meanwhile (stopping): never sent, counted stale
            coro.close()
            for share, device in ready:
                self._submit_slots.give(1)
                self._count_verdict(device, share, Verdict(False, NOT_CONNECTED, sent=False))
            return
        with self._pending_lock:
            self._pending.add(fut)
        fut.add_done_callback(self._forget_batch)

    def _send_batch_stratum(self, loop: asyncio.AbstractEventLoop, client: StratumClient,
                            ready: list[tuple[Share, str]]) -> None:
        """One hand-over to the loop and one write for the whole batch; the verdicts come
        back in batches too (one per read from the pool).  ``done`` lets stop() wait for
        the batch's last verdict."""
        done: Future[None] = Future()
        left = len(ready)

        def sink(items: list[tuple[Share, str, Verdict]]) -> None:    # on the loop
            nonlocal left
            try:
                self._count_verdicts(items)
            finally:
                self._submit_slots.give(len(items))
                left -= len(items)
                if left <= 0 and not done.done():
                    done.set_result(None)

        with self._pending_lock:
            self._pending.add(done)
        done.add_done_callback(self._forget_batch)
        try:
            loop.call_soon_threadsafe(client.submit_many, ready, sink)
        except RuntimeError:  # the loop closed meanwhile (stopping): never sent, counted stale
            sink([(share, device, Verdict(False, NOT_CONNECTED, sent=False)) for share, device in ready])

    def _count_verdicts(self, items: list[tuple[Share, str, Verdict]]) -> None:
        """Count a batch of verdicts: the accepted and rejected ones in one telemetry call."""
        judged: list[tuple[str, str, int, float, bool, str | None]] = []
        for share, device, verdict in items:
            if verdict.accepted is None or verdict.stale:
                self._count_verdict(device, share, verdict)
                continue
            judged.append((device, share.job_id, share.nonce_int, share.difficulty,
                           bool(verdict.accepted), verdict.reason))
            if not verdict.accepted:   # the CLI prints the REJECTED line from telemetry
                log.info("%s: share %s rejected: %s", device, share.nonce, verdict.reason)
        if judged:
            self.telemetry.record_share_results(judged)

    def _forget_batch(self, fut: Future[Any]) -> None:
        with self._pending_lock:
            self._pending.discard(fut)

    def _count_verdict(self, device: str, share: Share, verdict: Verdict) -> None:
        """Count a share as the pool judged it: accepted, rejected, stale or unanswered."""
        if verdict.accepted is None:
            # the pool may have counted it or not: neither accepted nor rejected
            self.unanswered += 1
            log.warning("%s: share %s: %s", device, share.nonce, verdict.reason)
        elif verdict.stale:
            # its job was gone: never sent, or (sent) refused by the pool as stale
            self.telemetry.record_stale(device, share.job_id, share.nonce_int, share.difficulty,
                                        refused=verdict.sent)
            log.info("%s: share %s stale: %s", device, share.nonce, verdict.reason)
        else:
            self.telemetry.record_share_result(device, share.job_id, share.nonce_int,
                                               share.difficulty, verdict.accepted, verdict.reason)
            if not verdict.accepted:   # the CLI prints the REJECTED line from telemetry
                log.info("%s: share %s rejected: %s", device, share.nonce, verdict.reason)

    def _forget(self, fut: Future[Any]) -> None:
        with self._pending_lock:
            self._pending.discard(fut)
        self._submit_slots.give(1)

    # ------------------------------------------------------------------ reporting
    def summary(self) -> dict[str, Any]:
        """Final (or current) statistics in the --summary-json shape of the contract."""
        self.scheduler.sample_devices()     # the native workers' latest counts
        snap = self.telemetry.snapshot()
        end = self._stopped_at or time.monotonic()
        elapsed = max(1e-9, end - self._started_at) if self._started_at else snap["elapsed_s"]
        devices = []
        by_name = {d["name"]: d for d in snap["devices"]}
        for dev in self.devices:
            d = by_name.get(dev.name, {})
            hashes = int(d.get("hashes", 0))
            devices.append({
                "name": dev.name, "kind": dev.kind, "impl": dev.impl,
                "hashes": hashes, "hashrate": hashes / elapsed,
                "accepted": int(d.get("accepted", 0)), "rejected": int(d.get("rejected", 0)),
                "stale": int(d.get("stale", 0)), "hw_errors": int(d.get("hw_errors", 0)),
                "latency_ms": float(d.get("latency_ms", 0.0)),
                "batch_size": int(d.get("batch_size", 0)),
                "utilisation": float(d.get("utilisation", 0.0)),
                "best_share_diff": float(d.get("best_share_diff", 0.0)),
                "rates": d.get("rates", {}),   # decaying averages: 5s, 1m, 5m, 15m
                "score": dev.score, "enabled": dev.enabled,
                "error_rate": (int(d.get("hw_errors", 0)) / max(1, int(d.get("found", 0))
                                                                + int(d.get("hw_errors", 0)))),
            })
        return {
            "elapsed_s": elapsed,
            "hashes": int(snap["hashes"]),
            "hashrate": snap["hashes"] / elapsed,
            "accepted": int(snap["accepted"]),
            "rejected": int(snap["rejected"]),
            "rejected_reasons": snap["rejected_reasons"],
            "stale": int(snap["stale"]),     # = stale_dropped + rejected_stale
            "stale_dropped": int(snap["stale_dropped"]),     # never sent: its job went away
            "rejected_stale": int(snap["rejected_stale"]),   # sent, refused by the pool as stale
            # the ledger: candidates = found + stale_unchecked + rules_dropped + duplicates
            # + hw_errors; found = accepted + rejected + rejected_stale + unanswered + unsent
            # (+ shares still awaiting an answer while mining)
            "candidates": int(snap["candidates"]),
            "found": int(snap["found"]),
            "stale_unchecked": int(snap["stale_unchecked"]),
            "rules_dropped": int(snap["rules_dropped"]),
            "duplicates": int(snap["duplicates_suppressed"]),
            "unsent": int(snap["unsent"]),
            "unanswered": self.unanswered,
            "blocks_found": self.solo.blocks_found if self.solo else 0,
            "blocks_accepted": self.solo.blocks_accepted if self.solo else 0,
            "blocks_rejected": self.solo.blocks_rejected if self.solo else 0,
            "blocks_stale": self.solo.blocks_stale if self.solo else 0,
            "blocks_unanswered": self.solo.blocks_unanswered if self.solo else 0,
            "hw_errors": int(snap["hw_errors"]),
            "best_share_diff": float(snap["best_share_diff"]),
            "rates": snap["rates"],
            "devices": devices,
        }
