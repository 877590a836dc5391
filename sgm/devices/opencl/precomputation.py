"""The kernel's nonce-independent arguments, computed on the host once per work unit
(see kernels/sha256d.cl: midstate, rounds 0..3 of the second block, the constant message
words folded into their additions)."""
from __future__ import annotations

import struct

_M = 0xFFFFFFFF
_K = (0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
      0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
      0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786)


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (32 - n))) & _M


def _bsig0(x: int) -> int:
    return _rotr(x, 2) ^ _rotr(x, 13) ^ _rotr(x, 22)


def _bsig1(x: int) -> int:
    return _rotr(x, 6) ^ _rotr(x, 11) ^ _rotr(x, 25)


def _ssig0(x: int) -> int:
    return _rotr(x, 7) ^ _rotr(x, 18) ^ (x >> 3)


def _ssig1(x: int) -> int:
    return _rotr(x, 17) ^ _rotr(x, 19) ^ (x >> 10)


def precompute(midstate: bytes, tail: bytes) -> tuple[int, ...]:
    """The 27 nonce-independent kernel arguments of one work unit (see sha256d.cl).

    midstate: 8 little-endian state words after header[0:64] (as sgm's native core gives
    it); tail: header[64:76].  The last one is the constant 1 (`one`): the NVIDIA build
    multiplies by it to put additions on the FMA pipe, and must not see it as a literal.
    """
    ms = struct.unpack("<8I", midstate)
    w = struct.unpack(">3I", tail)
    a, b, c, d, e, f, g, h = ms
    for i in range(3):   # block 2, rounds 0..2: W0..W2 = merkle tail, ntime, nbits
        t1 = (h + _bsig1(e) + ((e & f) ^ (~e & g)) + _K[i] + w[i]) & _M
        t2 = (_bsig0(a) + ((a & b) ^ (a & c) ^ (b & c))) & _M
        h, g, f, e, d, c, b, a = g, f, e, (d + t1) & _M, c, b, a, (t1 + t2) & _M
    t1_3 = (h + _bsig1(e) + ((e & f) ^ (~e & g)) + _K[3]) & _M    # round 3 without W3
    big_a4 = (t1_3 + _bsig0(a) + ((a & b) ^ (a & c) ^ (b & c))) & _M
    big_e4 = (d + t1_3) & _M
    r4 = (g + _K[4] + 0x80000000) & _M          # h of round 4 is g after round 2 ...
    r5 = (f + _K[5]) & _M                       # ... of round 5 f, of round 6 e
    r6 = (e + _K[6]) & _M
    w16 = (_ssig0(w[1]) + w[0]) & _M                           # s1(W14) = W9 = 0
    w17 = (_ssig1(640) + _ssig0(w[2]) + w[1]) & _M             # W10 = 0
    w18p = (_ssig1(w16) + w[2]) & _M                           # + s0(W3)
    w19p = (_ssig1(w17) + _ssig0(0x80000000)) & _M             # + W3
    k16 = (_K[16] + w16) & _M
    k17 = (_K[17] + w17) & _M
    p31 = (_ssig0(w16) + 640) & _M
    p32 = (_ssig0(w17) + w16) & _M
    return (*ms, a, b, c, e, f, big_a4, big_e4, r4, r5, r6,
            w16, w17, k16, k17, w18p, w19p, p31, p32, 1)
