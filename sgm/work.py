"""What the scheduler hands a device: a :class:`Batch`.

A batch is one *work unit* of the native queue -- a contiguous nonce range of one midstate
of one job generation -- together with everything a hash core needs to scan it: the
precomputed work of that midstate (midstate of header[0:64], header[64:76]) and the share
target in force when the batch was handed out.  Devices know nothing else of jobs or pools.
"""
from __future__ import annotations

from dataclasses import dataclass

from sgm._native import NONCE_SPACE
from sgm.jobs import Job, PreparedWork

__all__ = ["Batch"]


@dataclass(frozen=True, slots=True)
class Batch:
    """Nonces [start, start + count) of midstate ``work.midstate_id`` of ``job``, generation
    ``generation``, to be scanned against ``target``."""

    generation: int
    job: Job
    work: PreparedWork
    start: int
    count: int
    target: int
    pulled_at: float          # perf_counter() when the scheduler handed it out

    def __post_init__(self) -> None:
        if not 0 <= self.start < NONCE_SPACE:
            raise ValueError(f"start must be in [0, 2**32), got {self.start}")
        if self.count < 1 or self.start + self.count > NONCE_SPACE:
            raise ValueError(f"count must be >= 1 and end at or below 2**32, got {self.count} "
                             f"at start={self.start}")
        if self.work.job_id != self.job.job_id:
            raise ValueError(f"work of job {self.work.job_id} in a batch of job {self.job.job_id}")

    @property
    def midstate_id(self) -> int:
        return self.work.midstate_id

    @property
    def end(self) -> int:
        """One past the last nonce of the batch."""
        return self.start + self.count

    def __str__(self) -> str:
        return (f"{self.job.job_id}/g{self.generation}/m{self.midstate_id}"
                f"[{self.start:#x}+{self.count}]")
