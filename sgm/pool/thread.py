"""Run a LocalPool on an event loop in a thread of its own (for synchronous code and tests).

Every control method hands its work to the pool's loop and waits for it, so a call such as
``set_version_mask`` has queued its message to every client when it returns.
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from sgm.pool.records import PoolStats
from sgm.pool.server import ConnectionInfo, LocalPool
from sgm.pool.template import PoolJob

__all__ = ["PoolThread", "start_in_thread"]

T = TypeVar("T")


class PoolThread:
    """A LocalPool (built from ``pool_kwargs``) on a daemon loop thread."""

    #: the pool built on the thread (sgm.pool.faults runs its FaultPool this way)
    pool_class: type[LocalPool] = LocalPool

    def __init__(self, **pool_kwargs: Any) -> None:
        self._kwargs = pool_kwargs
        self.pool: LocalPool | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._error: BaseException | None = None

    def start(self, timeout: float = 30.0) -> PoolThread:
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
            self.pool = self.pool_class(**self._kwargs)
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

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def _pool(self) -> LocalPool:
        if self.pool is None:
            raise RuntimeError("the pool thread is not started")
        return self.pool

    @property
    def port(self) -> int:
        return self._pool().port

    @property
    def url(self) -> str:
        return self._pool().url

    @property
    def stats(self) -> PoolStats:
        """A consistent snapshot of the pool's accounting (see sgm.pool.records)."""
        return self._pool().stats

    def new_job(self, clean: bool = True, *, version: int | None = None) -> PoolJob:
        return self._call(self._pool().new_job(clean, version=version))

    def current_job(self) -> PoolJob | None:
        pool = self._pool()

        async def get() -> PoolJob | None:
            return pool.current_job
        return self._call(get())

    def connections(self) -> list[ConnectionInfo]:
        """The connected clients now (read on the pool's loop)."""
        pool = self._pool()

        async def get() -> list[ConnectionInfo]:
            return pool.connections()
        return self._call(get())

    def set_difficulty(self, difficulty: float) -> None:
        self._call(self._pool().set_difficulty(difficulty))

    def set_version_mask(self, mask: int) -> int:
        """Send mining.set_version_mask to every rolling client; returns how many."""
        return self._call(self._pool().set_version_mask(mask))

    def disconnect_all(self) -> int:
        return self._call(self._pool().disconnect_all())

    def wait_finished(self, timeout: float | None = None) -> bool:
        return self._finished.wait(timeout)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    @property
    def timer_running(self) -> bool:
        """Whether the job timer may still issue jobs."""
        pool = self._pool()

        async def get() -> bool:
            return pool.timer_running
        return self._call(get())

    def stop(self, timeout: float = 10.0) -> None:
        if self.loop is not None and self._stopped is not None and self._thread is not None \
                and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout)

    def __enter__(self) -> PoolThread:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_in_thread(**pool_kwargs: Any) -> PoolThread:
    """Start a LocalPool on its own loop thread; call ``.stop()`` when done."""
    return PoolThread(**pool_kwargs).start()
