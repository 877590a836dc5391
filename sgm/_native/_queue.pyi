"""Type stub for sgm._native._queue (the native batch queue)."""
from typing import Final, TypedDict

NONCE_SPACE: Final[int]
DEFAULT_MAX_PENDING: Final[int]
MAX_GENERATION: Final[int]
MAX_MIDSTATES: Final[int]

class QueueStats(TypedDict):
    has_job: bool
    generation: int
    n_midstates: int
    nonce_start: int
    nonce_end: int
    cursor: tuple[int, int] | None
    handed_out: int
    given_back: int
    returned_pending: int
    pending_units: int
    remaining: int
    exhausted: bool
    stale_dropped: int

class WorkQueue:
    def __init__(self, max_pending: int = ...) -> None: ...
    def set_job(
        self,
        generation: int,
        n_midstates: int,
        nonce_start: int = 0,
        nonce_end: int = 4294967296,
    ) -> None: ...
    def pull(self, max_nonces: int) -> tuple[int, int, int, int] | None: ...
    def give_back(
        self, generation: int, midstate_id: int, nonce_start: int, nonce_count: int
    ) -> bool: ...
    def flush(self) -> int: ...
    def stats(self) -> QueueStats: ...
    @property
    def generation(self) -> int: ...
    @property
    def has_job(self) -> bool: ...
    @property
    def n_midstates(self) -> int: ...
    @property
    def handed_out(self) -> int: ...
    @property
    def given_back(self) -> int: ...
    @property
    def returned_pending(self) -> int: ...
    @property
    def pending_units(self) -> int: ...
    @property
    def remaining(self) -> int: ...
    @property
    def exhausted(self) -> bool: ...
    @property
    def stale_dropped(self) -> int: ...
    @property
    def max_pending(self) -> int: ...
