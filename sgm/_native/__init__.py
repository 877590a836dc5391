"""sgm's native core (Cython over C): SHA-256 midstate, nonce scanning, the batch queue."""
from sgm._native._sha256d import (
    ABORT_STRIDE,
    DEFAULT_MAX_RESULTS,
    MAX_RESULTS_LIMIT,
    NONCE_SPACE,
    AbortFlag,
    ScanResult,
    all_implementations,
    available_implementations,
    calibration,
    cpu_features,
    default_implementation,
    implementation_lanes,
    scan,
    sha256_midstate,
    sha256d_final_state,
)
from sgm._native._queue import MAX_MIDSTATES, WorkQueue

__all__ = [
    "ABORT_STRIDE", "DEFAULT_MAX_RESULTS", "MAX_MIDSTATES", "MAX_RESULTS_LIMIT", "NONCE_SPACE",
    "AbortFlag", "WorkQueue",
    "ScanResult", "all_implementations", "available_implementations", "calibration", "cpu_features",
    "default_implementation", "implementation_lanes", "scan", "sha256_midstate",
    "sha256d_final_state",
]
