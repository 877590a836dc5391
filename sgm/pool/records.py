"""The local pool's own accounting: what it accepted, what it refused and why, per worker.

Every count is exact (each share is counted once, under one lock) and every collection is
bounded: the reasons are a fixed set, the accepted-share log keeps the latest
``KEEP_ACCEPTED_SHARES`` entries, and at most ``MAX_TRACKED_WORKERS`` worker names get
their own row (later names are counted together under ``OTHER_WORKERS``).

Read it with ``LocalPool.stats`` / ``PoolThread.stats``: a deep copy taken under the lock.
"""
from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field

__all__ = [
    "REJECT_REASONS", "STALE", "KEEP_ACCEPTED_SHARES", "MAX_TRACKED_WORKERS", "OTHER_WORKERS",
    "WorkerStats", "AcceptedShare", "PoolStats", "Ledger",
]

# Reject reasons: the keys of PoolStats.rejected / WorkerStats.rejected_reasons.
NOT_SUBSCRIBED = "not subscribed"          # code 25
UNAUTHORIZED = "unauthorized"              # code 24
MALFORMED = "malformed"                    # code 20: shape, hex, sizes, ntime range
INVALID_VERSION_BITS = "invalid version bits"   # code 20: bits outside the granted mask
JOB_NOT_FOUND = "job not found"            # code 21: a job id the pool never issued
STALE = "stale"                            # code 21: a job replaced by a newer one
DUPLICATE = "duplicate"                    # code 22
LOW_DIFFICULTY = "low difficulty"          # code 23
OTHER = "other"                            # code 20: anything else

REJECT_REASONS = (NOT_SUBSCRIBED, UNAUTHORIZED, MALFORMED, INVALID_VERSION_BITS, JOB_NOT_FOUND,
                  STALE, DUPLICATE, LOW_DIFFICULTY, OTHER)

#: How many of the latest accepted shares PoolStats.accepted_shares keeps (at least half).
KEEP_ACCEPTED_SHARES = 1000
#: Worker names with a row of their own in PoolStats.workers.
MAX_TRACKED_WORKERS = 1024
#: The row that counts every worker past MAX_TRACKED_WORKERS.
OTHER_WORKERS = "*other workers*"


@dataclass
class WorkerStats:
    """One worker name's shares (as given to mining.authorize / mining.submit)."""

    accepted: int = 0
    rejected: int = 0
    best_difficulty: float = 0.0
    rejected_reasons: dict[str, int] = field(default_factory=dict)
    #: accepted shares for a job already replaced (within the pool's stale_grace)
    accepted_after_replace: int = 0

    @property
    def stale(self) -> int:
        """Shares refused because their job had been replaced."""
        return self.rejected_reasons.get(STALE, 0)


@dataclass(frozen=True)
class AcceptedShare:
    """A share the pool accepted, with the header it built and hashed for it."""

    job_id: str
    worker: str
    extranonce1: str
    extranonce2: str
    ntime: str
    nonce: str
    version_bits: str | None   # the 6th submit parameter as sent (lower case), if any
    header: bytes
    hash: bytes
    difficulty: float
    version: int = 0           # the header version the pool derived from version_bits
    block: bool = False        # the hash also meets the job's nBits target

    @property
    def hash_hex(self) -> str:
        return self.hash[::-1].hex()


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
    accepted_after_replace: int = 0
    version_mask_changes: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def stale(self) -> int:
        """Shares refused because their job had been replaced."""
        return self.rejected.get(STALE, 0)

    @property
    def submitted(self) -> int:
        """Every mining.submit the pool answered (accepted + rejected)."""
        return self.accepted + self.rejected_total


class Ledger:
    """The pool's statistics behind one lock (written on the pool's loop, read anywhere)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats = PoolStats()

    def snapshot(self) -> PoolStats:
        """A consistent deep copy."""
        with self._lock:
            return copy.deepcopy(self._stats)

    def _worker(self, name: str) -> WorkerStats:
        workers = self._stats.workers
        row = workers.get(name)
        if row is None:
            key = name if len(workers) < MAX_TRACKED_WORKERS else OTHER_WORKERS
            row = workers.setdefault(key, WorkerStats())
        return row

    def accept(self, share: AcceptedShare, *, after_replace: bool = False) -> None:
        with self._lock:
            st = self._stats
            st.accepted += 1
            st.accepted_shares.append(share)
            if len(st.accepted_shares) > KEEP_ACCEPTED_SHARES:  # bounded: long runs stay flat
                del st.accepted_shares[:len(st.accepted_shares) - KEEP_ACCEPTED_SHARES // 2]
            st.best_share_difficulty = max(st.best_share_difficulty, share.difficulty)
            row = self._worker(share.worker)
            row.accepted += 1
            row.best_difficulty = max(row.best_difficulty, share.difficulty)
            if after_replace:
                st.accepted_after_replace += 1
                row.accepted_after_replace += 1
            if share.block:
                st.blocks_found += 1

    def reject(self, reason: str, worker: str | None) -> None:
        """Count a refused share; ``worker`` None when it names no worker of its connection."""
        if reason not in REJECT_REASONS:
            reason = OTHER
        with self._lock:
            st = self._stats
            st.rejected[reason] = st.rejected.get(reason, 0) + 1
            if worker is not None:
                row = self._worker(worker)
                row.rejected += 1
                row.rejected_reasons[reason] = row.rejected_reasons.get(reason, 0) + 1

    def job_issued(self) -> int:
        """Count a job; returns how many were issued so far."""
        with self._lock:
            self._stats.jobs_issued += 1
            return self._stats.jobs_issued

    @property
    def jobs_issued(self) -> int:
        with self._lock:
            return self._stats.jobs_issued

    def connected(self) -> None:
        with self._lock:
            self._stats.connections += 1
            self._stats.connections_total += 1

    def disconnected(self) -> None:
        with self._lock:
            self._stats.connections -= 1

    def misbehaved(self) -> None:
        with self._lock:
            self._stats.disconnects_for_misbehaviour += 1

    def version_mask_changed(self) -> None:
        with self._lock:
            self._stats.version_mask_changes += 1
