"""The embedded local pool: a real Stratum v1 server on 127.0.0.1.

One module per concern:

* :mod:`~sgm.pool.template` — block templates: coinbase (BIP 34 height), merkle branch,
  the jobs the pool issues (:class:`PoolJob`);
* :mod:`~sgm.pool.records`  — the pool's own accounting (:class:`PoolStats`, per worker);
* :mod:`~sgm.pool.shares`   — the share check, with its own header assembly (independent
  of the miner's ``sgm.jobs``) and the three readings of BIP 310 version bits;
* :mod:`~sgm.pool.server`   — the asyncio server (:class:`LocalPool`), error codes 20–25;
* :mod:`~sgm.pool.thread`   — :class:`PoolThread` / :func:`start_in_thread` for sync code.
"""
from __future__ import annotations

from sgm.bitcoin import DEFAULT_VERSION_MASK
from sgm.pool.records import AcceptedShare, PoolStats, WorkerStats
from sgm.pool.server import LOOPBACK_HOSTS, LocalPool
from sgm.pool.shares import VERSION_READINGS, VersionReading
from sgm.pool.template import DEFAULT_VERSION, PoolJob, build_coinbase_parts
from sgm.pool.thread import PoolThread, start_in_thread

__all__ = [
    "LocalPool", "PoolThread", "start_in_thread", "PoolStats", "WorkerStats", "AcceptedShare",
    "PoolJob", "build_coinbase_parts", "LOOPBACK_HOSTS",
    "DEFAULT_VERSION", "DEFAULT_VERSION_MASK", "VERSION_READINGS", "VersionReading",
]
