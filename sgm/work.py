"""Work units and batches: the Python-side view of what the batch queue hands out.

A :class:`WorkUnit` is a contiguous nonce range of one midstate of one job, tagged with the
queue generation it was pulled under.  A :class:`Batch` is what one device scans in one go:
one or more units of the same job, generation and midstate.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

__all__ = ["NONCE_SPACE", "WorkUnit", "Batch", "merge_units"]

log = logging.getLogger(__name__)

#: Nonces per midstate (a 32-bit header nonce).
NONCE_SPACE = 1 << 32


def _check_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class WorkUnit:
    """Nonces [nonce_start, nonce_start + nonce_count) of midstate ``midstate_id``."""

    job_id: str
    generation: int
    midstate_id: int
    nonce_start: int
    nonce_count: int

    def __post_init__(self) -> None:
        if not isinstance(self.job_id, str):
            raise TypeError(f"job_id must be a str, not {type(self.job_id).__name__}")
        for name in ("generation", "midstate_id", "nonce_start", "nonce_count"):
            _check_int(getattr(self, name), name)
        if self.generation < 0:
            raise ValueError(f"generation must be >= 0, got {self.generation}")
        if self.midstate_id < 0:
            raise ValueError(f"midstate_id must be >= 0, got {self.midstate_id}")
        if not 0 <= self.nonce_start < NONCE_SPACE:
            raise ValueError(f"nonce_start must be in [0, 2**32), got {self.nonce_start}")
        if self.nonce_count < 1 or self.nonce_start + self.nonce_count > NONCE_SPACE:
            raise ValueError(
                f"nonce_count must be >= 1 and end at or below 2**32, got {self.nonce_count} "
                f"at nonce_start={self.nonce_start}"
            )

    @classmethod
    def from_pulled(cls, job_id: str, pulled: tuple[int, int, int, int]) -> WorkUnit:
        """Build from the ``(generation, midstate_id, nonce_start, nonce_count)`` tuple
        that ``WorkQueue.pull`` returns."""
        generation, midstate_id, nonce_start, nonce_count = pulled
        return cls(job_id, generation, midstate_id, nonce_start, nonce_count)

    def as_pulled(self) -> tuple[int, int, int, int]:
        """The ``(generation, midstate_id, nonce_start, nonce_count)`` tuple (for give_back)."""
        return (self.generation, self.midstate_id, self.nonce_start, self.nonce_count)

    @property
    def nonce_end(self) -> int:
        """One past the last nonce of the unit."""
        return self.nonce_start + self.nonce_count

    def __len__(self) -> int:
        return self.nonce_count

    def __contains__(self, nonce: object) -> bool:
        return isinstance(nonce, int) and self.nonce_start <= nonce < self.nonce_end

    def split(self, n: int) -> tuple[WorkUnit, WorkUnit]:
        """(first ``n`` nonces, the rest); requires 0 < n < nonce_count."""
        _check_int(n, "n")
        if not 0 < n < self.nonce_count:
            raise ValueError(f"n must satisfy 0 < n < nonce_count={self.nonce_count}, got {n}")
        head = WorkUnit(self.job_id, self.generation, self.midstate_id, self.nonce_start, n)
        tail = WorkUnit(self.job_id, self.generation, self.midstate_id,
                        self.nonce_start + n, self.nonce_count - n)
        return head, tail

    def same_space(self, other: WorkUnit) -> bool:
        """Same job, generation and midstate (the nonces are comparable)."""
        return (self.job_id == other.job_id and self.generation == other.generation
                and self.midstate_id == other.midstate_id)

    def can_merge(self, other: WorkUnit) -> bool:
        """True if ``other`` continues or precedes this unit in the same nonce space."""
        if not isinstance(other, WorkUnit) or not self.same_space(other):
            return False
        return self.nonce_end == other.nonce_start or other.nonce_end == self.nonce_start

    def merge(self, other: WorkUnit) -> WorkUnit:
        """One unit covering both; they must be adjacent (in either order) in one space."""
        if not isinstance(other, WorkUnit):
            raise TypeError(f"other must be a WorkUnit, not {type(other).__name__}")
        if not self.same_space(other):
            raise ValueError(
                f"cannot merge units of different job/generation/midstate: {self} and {other}"
            )
        if self.nonce_end == other.nonce_start:
            first = self
        elif other.nonce_end == self.nonce_start:
            first = other
        else:
            raise ValueError(f"cannot merge non-adjacent units: {self} and {other}")
        return WorkUnit(self.job_id, self.generation, self.midstate_id, first.nonce_start,
                        self.nonce_count + other.nonce_count)

    def __str__(self) -> str:
        return (f"{self.job_id}/g{self.generation}/m{self.midstate_id}"
                f"[{self.nonce_start:#x}+{self.nonce_count}]")


def merge_units(units: list[WorkUnit]) -> list[WorkUnit]:
    """Coalesce adjacent units of the same space; the result is sorted by space and start."""
    ordered = sorted(units, key=lambda u: (u.job_id, u.generation, u.midstate_id, u.nonce_start))
    out: list[WorkUnit] = []
    for unit in ordered:
        if out and out[-1].same_space(unit) and out[-1].nonce_end == unit.nonce_start:
            out[-1] = out[-1].merge(unit)
        else:
            out.append(unit)
    return out


@dataclass(slots=True)
class Batch:
    """What one device scans in one go: units of one job, generation and midstate."""

    device: str
    units: list[WorkUnit] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.device, str):
            raise TypeError(f"device must be a str, not {type(self.device).__name__}")
        self.units = list(self.units)
        if not self.units:
            raise ValueError("units must hold at least one WorkUnit")
        first = self.units[0]
        for unit in self.units:
            if not isinstance(unit, WorkUnit):
                raise TypeError(f"units must hold WorkUnit objects, not {type(unit).__name__}")
            if not unit.same_space(first):
                raise ValueError(
                    f"units must share one job, generation and midstate: {first} vs {unit}"
                )
        ordered = sorted(self.units, key=lambda u: u.nonce_start)
        for a, b in zip(ordered, ordered[1:]):
            if b.nonce_start < a.nonce_end:
                raise ValueError(f"units must not overlap: {a} and {b}")

    @property
    def job_id(self) -> str:
        return self.units[0].job_id

    @property
    def generation(self) -> int:
        return self.units[0].generation

    @property
    def midstate_id(self) -> int:
        return self.units[0].midstate_id

    @property
    def nonce_count(self) -> int:
        """Total nonces in the batch."""
        return sum(u.nonce_count for u in self.units)

    def add(self, unit: WorkUnit) -> None:
        """Append a unit of the same space (merged into the last one when adjacent)."""
        if not isinstance(unit, WorkUnit):
            raise TypeError(f"unit must be a WorkUnit, not {type(unit).__name__}")
        if not unit.same_space(self.units[0]):
            raise ValueError(
                f"unit must share the batch's job, generation and midstate: {unit}"
            )
        for held in self.units:
            if unit.nonce_start < held.nonce_end and held.nonce_start < unit.nonce_end:
                raise ValueError(f"unit overlaps {held} already in the batch: {unit}")
        if self.units[-1].nonce_end == unit.nonce_start:
            self.units[-1] = self.units[-1].merge(unit)
        else:
            self.units.append(unit)
