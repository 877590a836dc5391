# cython: language_level=3
"""Argument checks and limits shared by the native modules (cimport only)."""
from cpython.number cimport PyNumber_Index

cdef extern from "include/sgm_limits.h":
    unsigned long long SGM_NONCE_SPACE
    unsigned long long SGM_MAX_MIDSTATES


cdef inline object int_arg(object value, str name, object lo=None, object hi=None):
    """value as a Python int in lo..hi, else TypeError/ValueError naming the argument
    (bool is refused: JSON true/false must never pass as 1/0)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not bool")
    try:
        value = PyNumber_Index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value
