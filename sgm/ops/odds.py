"""Odds for solo ("lottery") miners: the expected time to find a block.

A hash meets a target T with probability (T + 1) / 2**256; at difficulty D the target is
DIFF1 / D, so one block takes on average ``D * 2**256 / (DIFF1 + 1)`` hashes, which is
``D * 2**32`` to within 2**-16 (the figure pools and explorers quote).  The time is that
divided by the hash rate; finding a block is a Poisson process, so this is also the
mean wait from any moment, not only from the start.
"""
from __future__ import annotations

import math

HASHES_PER_DIFF1 = 2.0 ** 32


def expected_hashes(network_difficulty: float) -> float:
    """Hashes one block takes on average at this network difficulty."""
    return network_difficulty * HASHES_PER_DIFF1


def expected_block_seconds(network_difficulty: float | None, hashrate: float) -> float | None:
    """Mean seconds to a block at ``hashrate`` (H/s); None when either is unknown or 0."""
    if network_difficulty is None or not network_difficulty > 0 or not hashrate > 0:
        return None
    if not math.isfinite(network_difficulty) or not math.isfinite(hashrate):
        return None
    return expected_hashes(network_difficulty) / hashrate


def format_duration(seconds: float | None) -> str:
    """A short human figure: 42 s, 3.2 h, 5.1 days, 2.3e+09 years."""
    if seconds is None:
        return "?"
    for unit, scale in (("years", 365.25 * 86400), ("days", 86400.0), ("h", 3600.0),
                        ("min", 60.0)):
        if seconds >= scale:
            value = seconds / scale
            return f"{value:.3g} {unit}" if value < 1e6 else f"{value:.2e} {unit}"
    return f"{seconds:.0f} s"
