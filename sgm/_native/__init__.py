"""sgm's native core (Cython over C): SHA-256 midstate, nonce scanning, the batch queue."""
from sgm._native import _sha256d as _kernels, choice as _choice
from sgm._native._queue import MAX_MIDSTATES, WorkQueue
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

# the default kernel is calibrated once per CPU model and build and kept (sgm._native.choice)
_kernels._set_chooser(_choice.choose)


def require_implementation(name: str | None) -> str:
    """The kernel to use for `name`: `name` itself when this CPU can run it, the default
    (fastest available, or SGM_IMPL) when it is None.

    Raises ValueError with one message for every caller: an unknown name lists the kernels
    built into this extension, a built kernel this CPU lacks lists the available ones; both
    name what is available.  TypeError when `name` is not a str.
    """
    if name is None:
        return default_implementation()
    if not isinstance(name, str):
        raise TypeError(f"implementation name must be a str, not {type(name).__name__}")
    available = available_implementations()
    if name in available:
        return name
    built = all_implementations()
    if name not in built:
        raise ValueError(f"implementation {name!r} is unknown; built: {', '.join(built)}; "
                         f"available on this CPU: {', '.join(available)}")
    raise ValueError(f"implementation {name!r} is built but not supported by this CPU; "
                     f"available: {', '.join(available)}")


__all__ = [
    "ABORT_STRIDE", "DEFAULT_MAX_RESULTS", "MAX_MIDSTATES", "MAX_RESULTS_LIMIT", "NONCE_SPACE",
    "AbortFlag", "WorkQueue",
    "ScanResult", "all_implementations", "available_implementations", "calibration", "cpu_features",
    "default_implementation", "implementation_lanes", "require_implementation", "scan",
    "sha256_midstate", "sha256d_final_state",
]
