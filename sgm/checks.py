"""Small input checks shared by every layer: hex text and "an int, but not a bool".

Imports nothing from sgm, so any module may use it.
"""
from __future__ import annotations

import re
from typing import Any

__all__ = ["HEX_RE", "is_hex", "is_int", "is_number", "check_int"]

#: Hex digits only (possibly empty); callers check the length.
HEX_RE = re.compile(r"\A[0-9a-fA-F]*\Z")


def is_hex(value: Any, digits: int | None = None) -> bool:
    """True for a str of hex digits (an even count, or exactly ``digits`` when given)."""
    if not isinstance(value, str) or not HEX_RE.match(value):
        return False
    return len(value) == digits if digits is not None else len(value) % 2 == 0


def is_int(value: Any) -> bool:
    """An int that is not a bool (JSON true/false must never pass as 1/0)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(value: Any, name: str, lo: int | None = None, hi: int | None = None,
              error: type[Exception] = ValueError) -> int:
    """``value`` if it is an int (not a bool) in lo..hi, else ``error`` naming ``name``.

    A value of the wrong type raises TypeError unless ``error`` is given, in which case
    every failure raises ``error`` (e.g. a JobError that names the field).
    """
    if not is_int(value):
        exc = TypeError if error is ValueError else error
        raise exc(f"{name}: expected an int, got {type(value).__name__}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_s = "" if lo is None else str(lo)
        hi_s = "" if hi is None else str(hi)
        raise error(f"{name}: {value} is outside {lo_s}..{hi_s}")
    checked: int = value     # is_int() said so; the annotation tells the type checker
    return checked
