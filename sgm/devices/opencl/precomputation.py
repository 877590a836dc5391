"""The kernel's nonce-independent arguments, computed on the host once per work unit.

They come from the native core's own precomputation (``sgm_work_prepare``, the one the CPU
kernels use: midstate, rounds 0..3 of the second block, the nonce-free schedule words), so
the SHA-256 arithmetic lives in one place (see kernels/sha256d.cl for each argument).
"""
from __future__ import annotations

from sgm._native._sha256d import opencl_args

_M = 0xFFFFFFFF


def precompute(midstate: bytes, tail: bytes) -> tuple[int, ...]:
    """The 27 nonce-independent kernel arguments of one work unit (see sha256d.cl).

    midstate: 8 little-endian state words after header[0:64] (as sgm's native core gives
    it); tail: header[64:76].  The last one is the constant 1 (`one`): the NVIDIA build
    multiplies by it to put additions on the FMA pipe, and must not see it as a literal.
    """
    return (*opencl_args(midstate, tail), 1)
