/* scan_scalar.h - portable C scan kernel (one nonce at a time).
 *
 * Used on every CPU (aarch64 included) and as the reference the SIMD kernels are tested
 * against.  Shortcuts: rounds 0..2 and the nonce-independent schedule words come from
 * sgm_work_prepare; the padding words are constants; the second hash stops after round 60,
 * whose e value alone decides the most significant 32 bits of the hash, and only nonces
 * that pass that filter get the full re-check (sgm_check_nonce).
 */
#ifndef SGM_SCAN_SCALAR_H
#define SGM_SCAN_SCALAR_H

#include "sgm_sha256.h"

#define SGM_STEP(kw)                                                  \
    do {                                                              \
        uint32_t t1_ = h + SGM_S1(e) + SGM_CH(e, f, g) + (kw);        \
        uint32_t t2_ = SGM_S0(a) + SGM_MAJ(a, b, c);                  \
        h = g; g = f; f = e; e = d + t1_; d = c; c = b; b = a;        \
        a = t1_ + t2_;                                                \
    } while (0)

/* Returns the e value after round 60 of the second hash (H7 = that + H0[7]). */
static inline uint32_t sgm_scalar_e60(const sgm_work *wk, uint32_t nonce_be) {
    uint32_t W[64];
    uint32_t a, b, c, d, e, f, g, h;
    int i;

    /* ---- first hash, block 2, from the state after round 2 ---- */
    W[0] = wk->tail[0]; W[1] = wk->tail[1]; W[2] = wk->tail[2]; W[3] = nonce_be;
    W[4] = 0x80000000u;
    for (i = 5; i < 15; i++) W[i] = 0;
    W[15] = 640;
    W[16] = wk->w16; W[17] = wk->w17;
    W[18] = wk->w18_part + SGM_s0(nonce_be);
    W[19] = wk->w19_part + nonce_be;
#pragma GCC unroll 64
    for (i = 20; i < 64; i++) W[i] = SGM_s1(W[i - 2]) + W[i - 7] + SGM_s0(W[i - 15]) + W[i - 16];

    a = wk->st3[0]; b = wk->st3[1]; c = wk->st3[2]; d = wk->st3[3];
    e = wk->st3[4]; f = wk->st3[5]; g = wk->st3[6]; h = wk->st3[7];
    {   /* round 3: h + S1(e) + Ch(e,f,g) + K[3] precomputed */
        uint32_t t1_ = wk->t1_3 + nonce_be;
        uint32_t t2_ = SGM_S0(a) + SGM_MAJ(a, b, c);
        h = g; g = f; f = e; e = d + t1_; d = c; c = b; b = a; a = t1_ + t2_;
    }
#pragma GCC unroll 64
    for (i = 4; i < 64; i++) SGM_STEP(SGM_K[i] + W[i]);

    W[0] = wk->midstate[0] + a; W[1] = wk->midstate[1] + b;
    W[2] = wk->midstate[2] + c; W[3] = wk->midstate[3] + d;
    W[4] = wk->midstate[4] + e; W[5] = wk->midstate[5] + f;
    W[6] = wk->midstate[6] + g; W[7] = wk->midstate[7] + h;

    /* ---- second hash: W8 = 0x80000000, W9..W14 = 0, W15 = 256 ---- */
    W[8] = 0x80000000u;
    for (i = 9; i < 15; i++) W[i] = 0;
    W[15] = 256;
#pragma GCC unroll 64
    for (i = 16; i < 61; i++) W[i] = SGM_s1(W[i - 2]) + W[i - 7] + SGM_s0(W[i - 15]) + W[i - 16];

    a = SGM_H0[0]; b = SGM_H0[1]; c = SGM_H0[2]; d = SGM_H0[3];
    e = SGM_H0[4]; f = SGM_H0[5]; g = SGM_H0[6]; h = SGM_H0[7];
#pragma GCC unroll 64
    for (i = 0; i < 61; i++) SGM_STEP(SGM_K[i] + W[i]);
    /* e after round 60 becomes h after round 63: H7 = H0[7] + e */
    return e;
}

static void sgm_scan_scalar(const sgm_work *wk, uint32_t start, uint64_t count, uint32_t *out,
                            uint32_t cap, const volatile int *abort, sgm_scan_result *res) {
    const uint32_t h7_add = SGM_H0[7];
    const uint32_t t7 = wk->target[7];
    uint64_t i = 0;
    uint32_t found = 0;
    res->status = SGM_SCAN_DONE;
    while (i < count) {
        uint64_t stop = count - i > SGM_ABORT_STRIDE ? i + SGM_ABORT_STRIDE : count;
        if (sgm_flag_load(abort)) { res->status = SGM_SCAN_ABORTED; break; }
        for (; i < stop; i++) {
            uint32_t nonce = start + (uint32_t)i;
            uint32_t h7 = sgm_scalar_e60(wk, sgm_bswap32(nonce)) + h7_add;
            if (sgm_bswap32(h7) <= t7 && sgm_check_nonce(wk, nonce)) {
                if (found == cap) { res->status = SGM_SCAN_FULL; goto out; }
                out[found++] = nonce;
            }
        }
    }
out:
    res->done = i;
    res->n_found = found;
}

#endif /* SGM_SCAN_SCALAR_H */
