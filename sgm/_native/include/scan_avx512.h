/* scan_avx512.h - AVX-512F scan kernel: 16 nonces side by side, one per 32-bit lane of a
 * __m512i.
 *
 * Same contract as sgm_scan_scalar (see sgm_sha256.h) and the same structure and shortcuts
 * as the AVX2 kernel (scan_avx2.h: rounds 0..2 from wk->st3, round 3 as two adds, constant
 * padding words folded into K, zero schedule terms dropped, second hash stopped after
 * round 60 with the H7 filter and a scalar sgm_check_nonce confirmation), written with
 * AVX-512F only:
 *   - rotates are native (vprord / vprold);
 *   - three-input logic is one vpternlogd: Ch = 0xCA, Maj = 0xE8, the 3-way XORs of
 *     S0/S1/s0/s1 = 0x96 (imm8 = f(0xF0, 0xCC, 0xAA) for inputs a, b, c);
 *   - byte swap without AVX-512BW's vpshufb: a bit-select (vpternlogd 0xCA) of
 *     ror(x, 8) and rol(x, 8) under the mask 0xFF00FF00;
 *   - the unsigned filter compare is vpcmpud into a 16-bit mask register.
 * All functions carry target("avx512f"); the extension stays baseline x86-64.
 *
 * Define SGM_USE_SIMDE before including to build on SIMDe (portable emulation of the
 * intrinsics): that is how the kernel is verified on machines without AVX-512
 * (tests/native/simde_avx512_check.c).
 */
#ifndef SGM_SCAN_AVX512_H
#define SGM_SCAN_AVX512_H

#include "sgm_sha256.h"

#ifdef SGM_USE_SIMDE
#ifndef SIMDE_ENABLE_NATIVE_ALIASES
#define SIMDE_ENABLE_NATIVE_ALIASES
#endif
#include <simde/x86/avx512.h>
#define SGM_AVX512_TARGET
#else
#include <immintrin.h>
#define SGM_AVX512_TARGET __attribute__((target("avx512f")))
#endif

/* ---- 16-lane primitives ---- */
#define A5_C(x) _mm512_set1_epi32((int)(uint32_t)(x))
#define A5_ADD(x, y) _mm512_add_epi32((x), (y))
#define A5_ROR(x, n) _mm512_ror_epi32((x), (n))
#define A5_XOR3(x, y, z) _mm512_ternarylogic_epi32((x), (y), (z), 0x96)
#define A5_S0(x) A5_XOR3(A5_ROR(x, 2), A5_ROR(x, 13), A5_ROR(x, 22))
#define A5_S1(x) A5_XOR3(A5_ROR(x, 6), A5_ROR(x, 11), A5_ROR(x, 25))
#define A5_s0(x) A5_XOR3(A5_ROR(x, 7), A5_ROR(x, 18), _mm512_srli_epi32((x), 3))
#define A5_s1(x) A5_XOR3(A5_ROR(x, 17), A5_ROR(x, 19), _mm512_srli_epi32((x), 10))
#define A5_CH(e, f, g) _mm512_ternarylogic_epi32((e), (f), (g), 0xCA)
#define A5_MAJ(a, b, c) _mm512_ternarylogic_epi32((a), (b), (c), 0xE8)
/* bswap32 per lane: bytes 3 and 1 from ror(x, 8), bytes 2 and 0 from rol(x, 8) */
#define A5_BSWAP(x) _mm512_ternarylogic_epi32(tab[A5_BMASK], _mm512_ror_epi32((x), 8), \
                                              _mm512_rol_epi32((x), 8), 0xCA)

/* One round in place: d += t1, h = t1 + t2, kw = K[i] + W[i]. */
#define A5_RND(a, b, c, d, e, f, g, h, kw)                                          \
    do {                                                                            \
        const __m512i t1_ = A5_ADD(A5_ADD(A5_ADD(h, kw), A5_CH(e, f, g)), A5_S1(e)); \
        const __m512i t2_ = A5_ADD(A5_S0(a), A5_MAJ(a, b, c));                      \
        d = A5_ADD(d, t1_);                                                         \
        h = A5_ADD(t1_, t2_);                                                       \
    } while (0)

/* round i uses A5_R<i mod 8>: the variable holding word a moves back one name per round */
#define A5_R0(kw) A5_RND(a, b, c, d, e, f, g, h, kw)
#define A5_R1(kw) A5_RND(h, a, b, c, d, e, f, g, kw)
#define A5_R2(kw) A5_RND(g, h, a, b, c, d, e, f, kw)
#define A5_R3(kw) A5_RND(f, g, h, a, b, c, d, e, kw)
#define A5_R4(kw) A5_RND(e, f, g, h, a, b, c, d, kw)
#define A5_R5(kw) A5_RND(d, e, f, g, h, a, b, c, kw)
#define A5_R6(kw) A5_RND(c, d, e, f, g, h, a, b, kw)
#define A5_R7(kw) A5_RND(b, c, d, e, f, g, h, a, kw)
/* rounds k..k+7 (k a multiple of 8) reading K + W from tab[base + i] */
#define A5_BLOCK8(base, k)                                                          \
    do {                                                                            \
        A5_R0(tab[(base) + (k) + 0]); A5_R1(tab[(base) + (k) + 1]);                 \
        A5_R2(tab[(base) + (k) + 2]); A5_R3(tab[(base) + (k) + 3]);                 \
        A5_R4(tab[(base) + (k) + 4]); A5_R5(tab[(base) + (k) + 5]);                 \
        A5_R6(tab[(base) + (k) + 6]); A5_R7(tab[(base) + (k) + 7]);                 \
    } while (0)

/* message schedule: w[] holds W, tab[base + i] receives K[i] + W[i] */
#define A5_PUT(base, i, val)                                                        \
    do {                                                                            \
        w[i] = (val);                                                               \
        tab[(base) + (i)] = A5_ADD(w[i], tab[A5_K + (i)]);                          \
    } while (0)
#define A5_SCHED(base, i)                                                           \
    A5_PUT(base, i, A5_ADD(A5_ADD(A5_s1(w[(i) - 2]), w[(i) - 7]),                   \
                           A5_ADD(A5_s0(w[(i) - 15]), w[(i) - 16])))

/* Slots of the per-call table (in __m512i units). */
enum {
    A5_WK1 = 0,   /* 64: K[i] + W[i] of block 2: [4..17] constant, [18..63] per batch */
    A5_WK2 = 64,  /* 64: K[i] + W[i] of the second hash: [8..15] constant, rest per batch */
    A5_K = 128,   /* 64: K[i] */
    A5_ST3 = 192, /* 8: wk->st3 */
    A5_IV = 200,  /* 8: SGM_H0 */
    A5_MID = 208, /* 8: wk->midstate */
    A5_E4C = 216, A5_A4C, A5_W18P, A5_W19P, A5_W16, A5_W17, A5_W30C, A5_W31C,
    A5_W32C, A5_C640, A5_C80, A5_C256, A5_E1C, A5_A1C, A5_V17C, A5_V23C, A5_V30C,
    A5_T7, A5_LANES, A5_BMASK, A5_NSLOTS
};

SGM_AVX512_TARGET
static void sgm_avx512_fill_table(const sgm_work *wk, __m512i *tab) {
    const uint32_t *s3 = wk->st3;
    int k;
    for (k = 0; k < 64; k++) {
        tab[A5_K + k] = A5_C(SGM_K[k]);
        tab[A5_WK1 + k] = tab[A5_WK2 + k] = _mm512_setzero_si512();
    }
    /* block 2: W4 = 0x80000000, W5..W14 = 0, W15 = 640, W16/W17 from sgm_work */
    for (k = 4; k < 18; k++) tab[A5_WK1 + k] = A5_C(SGM_K[k]);
    tab[A5_WK1 + 4] = A5_C(SGM_K[4] + 0x80000000u);
    tab[A5_WK1 + 15] = A5_C(SGM_K[15] + 640u);
    tab[A5_WK1 + 16] = A5_C(SGM_K[16] + wk->w16);
    tab[A5_WK1 + 17] = A5_C(SGM_K[17] + wk->w17);
    /* second hash: W8 = 0x80000000, W9..W14 = 0, W15 = 256 */
    for (k = 8; k < 16; k++) tab[A5_WK2 + k] = A5_C(SGM_K[k]);
    tab[A5_WK2 + 8] = A5_C(SGM_K[8] + 0x80000000u);
    tab[A5_WK2 + 15] = A5_C(SGM_K[15] + 256u);
    for (k = 0; k < 8; k++) {
        tab[A5_ST3 + k] = A5_C(s3[k]);
        tab[A5_IV + k] = A5_C(SGM_H0[k]);
        tab[A5_MID + k] = A5_C(wk->midstate[k]);
    }
    /* round 3: e = d + t1_3 + W3, a = t1_3 + S0(a) + Maj(a,b,c) + W3 */
    tab[A5_E4C] = A5_C(s3[3] + wk->t1_3);
    tab[A5_A4C] = A5_C(wk->t1_3 + SGM_S0(s3[0]) + SGM_MAJ(s3[0], s3[1], s3[2]));
    tab[A5_W18P] = A5_C(wk->w18_part);
    tab[A5_W19P] = A5_C(wk->w19_part);
    tab[A5_W16] = A5_C(wk->w16);
    tab[A5_W17] = A5_C(wk->w17);
    tab[A5_W30C] = A5_C(SGM_s0(640u));                /* s0(W15) */
    tab[A5_W31C] = A5_C(SGM_s0(wk->w16) + 640u);      /* s0(W16) + W15 */
    tab[A5_W32C] = A5_C(SGM_s0(wk->w17) + wk->w16);   /* s0(W17) + W16 */
    tab[A5_C640] = A5_C(640u);
    tab[A5_C80] = A5_C(0x80000000u);
    tab[A5_C256] = A5_C(256u);
    {   /* second hash, round 0 from the IV: e1 = W0 + e1c, a1 = W0 + a1c */
        const uint32_t t1c = SGM_H0[7] + SGM_S1(SGM_H0[4]) +
                             SGM_CH(SGM_H0[4], SGM_H0[5], SGM_H0[6]) + SGM_K[0];
        tab[A5_E1C] = A5_C(SGM_H0[3] + t1c);
        tab[A5_A1C] = A5_C(t1c + SGM_S0(SGM_H0[0]) + SGM_MAJ(SGM_H0[0], SGM_H0[1], SGM_H0[2]));
    }
    tab[A5_V17C] = A5_C(SGM_s1(256u));           /* s1(W15) */
    tab[A5_V23C] = A5_C(SGM_s0(0x80000000u));    /* s0(W8) */
    tab[A5_V30C] = A5_C(SGM_s0(256u));           /* s0(W15) */
    tab[A5_T7] = A5_C(wk->target[7]);
    tab[A5_LANES] = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    tab[A5_BMASK] = A5_C(0xFF00FF00u);
}

/* bit s of the result: lane s (nonce n0 + s) passes the H7 filter */
SGM_AVX512_TARGET
static inline uint32_t sgm_avx512_batch(__m512i *tab, uint32_t n0) {
    __m512i a, b, c, d, e, f, g, h, w3, w[64];
    int k;

    /* ================= first hash, block 2 ================= */
    w3 = A5_ADD(A5_C(n0), tab[A5_LANES]);
    w3 = A5_BSWAP(w3);
    /* schedule W18..W63, zero terms dropped from W18..W33 */
    A5_PUT(A5_WK1, 18, A5_ADD(tab[A5_W18P], A5_s0(w3)));
    A5_PUT(A5_WK1, 19, A5_ADD(tab[A5_W19P], w3));
    A5_PUT(A5_WK1, 20, A5_ADD(A5_s1(w[18]), tab[A5_C80]));   /* + W4 */
    A5_PUT(A5_WK1, 21, A5_s1(w[19]));
    A5_PUT(A5_WK1, 22, A5_ADD(A5_s1(w[20]), tab[A5_C640]));  /* + W15 */
    A5_PUT(A5_WK1, 23, A5_ADD(A5_s1(w[21]), tab[A5_W16]));
    A5_PUT(A5_WK1, 24, A5_ADD(A5_s1(w[22]), tab[A5_W17]));
    A5_PUT(A5_WK1, 25, A5_ADD(A5_s1(w[23]), w[18]));
    A5_PUT(A5_WK1, 26, A5_ADD(A5_s1(w[24]), w[19]));
    A5_PUT(A5_WK1, 27, A5_ADD(A5_s1(w[25]), w[20]));
    A5_PUT(A5_WK1, 28, A5_ADD(A5_s1(w[26]), w[21]));
    A5_PUT(A5_WK1, 29, A5_ADD(A5_s1(w[27]), w[22]));
    A5_PUT(A5_WK1, 30, A5_ADD(A5_ADD(A5_s1(w[28]), w[23]), tab[A5_W30C]));
    A5_PUT(A5_WK1, 31, A5_ADD(A5_ADD(A5_s1(w[29]), w[24]), tab[A5_W31C]));
    A5_PUT(A5_WK1, 32, A5_ADD(A5_ADD(A5_s1(w[30]), w[25]), tab[A5_W32C]));
    A5_PUT(A5_WK1, 33, A5_ADD(A5_ADD(A5_s1(w[31]), w[26]), A5_ADD(A5_s0(w[18]), tab[A5_W17])));
    _Pragma("GCC unroll 1")
    for (k = 34; k < 64; k++) A5_SCHED(A5_WK1, k);

    /* round 3; the state before round 4 in round-4 naming (word a in `e`) */
    e = A5_ADD(w3, tab[A5_A4C]);
    f = tab[A5_ST3 + 0]; g = tab[A5_ST3 + 1]; h = tab[A5_ST3 + 2];
    a = A5_ADD(w3, tab[A5_E4C]);
    b = tab[A5_ST3 + 4]; c = tab[A5_ST3 + 5]; d = tab[A5_ST3 + 6];
    A5_R4(tab[A5_WK1 + 4]);
    A5_R5(tab[A5_WK1 + 5]);
    A5_R6(tab[A5_WK1 + 6]);
    A5_R7(tab[A5_WK1 + 7]);
    _Pragma("GCC unroll 8")
    for (k = 8; k < 64; k += 8) A5_BLOCK8(A5_WK1, k);

    /* ================= second hash ================= */
    /* after round 63 the names are back in place: W0..W7 = state + midstate */
    A5_PUT(A5_WK2, 0, A5_ADD(a, tab[A5_MID + 0]));
    A5_PUT(A5_WK2, 1, A5_ADD(b, tab[A5_MID + 1]));
    A5_PUT(A5_WK2, 2, A5_ADD(c, tab[A5_MID + 2]));
    A5_PUT(A5_WK2, 3, A5_ADD(d, tab[A5_MID + 3]));
    A5_PUT(A5_WK2, 4, A5_ADD(e, tab[A5_MID + 4]));
    A5_PUT(A5_WK2, 5, A5_ADD(f, tab[A5_MID + 5]));
    A5_PUT(A5_WK2, 6, A5_ADD(g, tab[A5_MID + 6]));
    A5_PUT(A5_WK2, 7, A5_ADD(h, tab[A5_MID + 7]));
    /* W8 = 0x80000000, W9..W14 = 0, W15 = 256: zero terms dropped from W16..W31 */
    A5_PUT(A5_WK2, 16, A5_ADD(A5_s0(w[1]), w[0]));
    A5_PUT(A5_WK2, 17, A5_ADD(A5_ADD(A5_s0(w[2]), w[1]), tab[A5_V17C]));
    A5_PUT(A5_WK2, 18, A5_ADD(A5_ADD(A5_s1(w[16]), A5_s0(w[3])), w[2]));
    A5_PUT(A5_WK2, 19, A5_ADD(A5_ADD(A5_s1(w[17]), A5_s0(w[4])), w[3]));
    A5_PUT(A5_WK2, 20, A5_ADD(A5_ADD(A5_s1(w[18]), A5_s0(w[5])), w[4]));
    A5_PUT(A5_WK2, 21, A5_ADD(A5_ADD(A5_s1(w[19]), A5_s0(w[6])), w[5]));
    A5_PUT(A5_WK2, 22, A5_ADD(A5_ADD(A5_s1(w[20]), A5_s0(w[7])), A5_ADD(w[6], tab[A5_C256])));
    A5_PUT(A5_WK2, 23, A5_ADD(A5_ADD(A5_s1(w[21]), w[16]), A5_ADD(w[7], tab[A5_V23C])));
    A5_PUT(A5_WK2, 24, A5_ADD(A5_ADD(A5_s1(w[22]), w[17]), tab[A5_C80]));
    A5_PUT(A5_WK2, 25, A5_ADD(A5_s1(w[23]), w[18]));
    A5_PUT(A5_WK2, 26, A5_ADD(A5_s1(w[24]), w[19]));
    A5_PUT(A5_WK2, 27, A5_ADD(A5_s1(w[25]), w[20]));
    A5_PUT(A5_WK2, 28, A5_ADD(A5_s1(w[26]), w[21]));
    A5_PUT(A5_WK2, 29, A5_ADD(A5_s1(w[27]), w[22]));
    A5_PUT(A5_WK2, 30, A5_ADD(A5_ADD(A5_s1(w[28]), w[23]), tab[A5_V30C]));
    A5_PUT(A5_WK2, 31, A5_ADD(A5_ADD(A5_s1(w[29]), w[24]), A5_ADD(A5_s0(w[16]), tab[A5_C256])));
    _Pragma("GCC unroll 1")
    for (k = 32; k < 61; k++) A5_SCHED(A5_WK2, k);

    /* round 0 from the IV; the state before round 1 in round-1 naming (word a in `h`) */
    h = A5_ADD(w[0], tab[A5_A1C]);
    a = tab[A5_IV + 0]; b = tab[A5_IV + 1]; c = tab[A5_IV + 2];
    d = A5_ADD(w[0], tab[A5_E1C]);
    e = tab[A5_IV + 4]; f = tab[A5_IV + 5]; g = tab[A5_IV + 6];
    A5_R1(tab[A5_WK2 + 1]);
    A5_R2(tab[A5_WK2 + 2]);
    A5_R3(tab[A5_WK2 + 3]);
    A5_R4(tab[A5_WK2 + 4]);
    A5_R5(tab[A5_WK2 + 5]);
    A5_R6(tab[A5_WK2 + 6]);
    A5_R7(tab[A5_WK2 + 7]);
    _Pragma("GCC unroll 8")
    for (k = 8; k < 56; k += 8) A5_BLOCK8(A5_WK2, k);
    /* rounds 56..60; the a words of rounds 57..60 are never used (the compiler drops them) */
    A5_R0(tab[A5_WK2 + 56]);
    A5_R1(tab[A5_WK2 + 57]);
    A5_R2(tab[A5_WK2 + 58]);
    A5_R3(tab[A5_WK2 + 59]);
    A5_R4(tab[A5_WK2 + 60]);   /* round 60: its new e lands in `h` */
    (void)a; (void)b;

    /* ---- filter: bswap32(e60 + H0[7]) <= target[7], unsigned ---- */
    h = A5_ADD(h, tab[A5_IV + 7]);
    return (uint32_t)_mm512_cmple_epu32_mask(A5_BSWAP(h), tab[A5_T7]);
}

SGM_AVX512_TARGET
static void sgm_scan_avx512(const sgm_work *wk, uint32_t start, uint64_t count, uint32_t *out,
                            uint32_t cap, const volatile int *abort, sgm_scan_result *res) {
    /* nonce-independent vectors, broadcast once per call; the batch code reads them (and
     * the per-batch K + W words) as memory operands.  The empty asm hides the contents from
     * constant propagation, which would otherwise rebuild each constant at every use. */
    __m512i table[A5_NSLOTS];
    __m512i *tab = table;
    uint64_t i = 0;
    uint32_t found = 0;

    sgm_avx512_fill_table(wk, tab);
    __asm__("" : "+r"(tab) : : "memory");

    res->status = SGM_SCAN_DONE;
    while (i < count) {
        const uint64_t stop = count - i > SGM_ABORT_STRIDE ? i + SGM_ABORT_STRIDE : count;
        if (*abort) { res->status = SGM_SCAN_ABORTED; break; }
        for (; i < stop; i += 16) {
            const uint32_t n0 = start + (uint32_t)i;
            uint32_t mask = sgm_avx512_batch(tab, n0);
            while (mask) {
                const uint32_t s = (uint32_t)__builtin_ctz(mask);
                mask &= mask - 1;
                if (i + s >= count) break;   /* lanes past the end of the range */
                if (sgm_check_nonce(wk, n0 + s)) {
                    if (found == cap) { i += s; res->status = SGM_SCAN_FULL; goto out; }
                    out[found++] = n0 + s;
                }
            }
        }
        if (i > count) i = count;
    }
out:
    if (i > count) i = count;
    res->done = i;
    res->n_found = found;
}

#undef A5_C
#undef A5_ADD
#undef A5_ROR
#undef A5_XOR3
#undef A5_S0
#undef A5_S1
#undef A5_s0
#undef A5_s1
#undef A5_CH
#undef A5_MAJ
#undef A5_BSWAP
#undef A5_RND
#undef A5_R0
#undef A5_R1
#undef A5_R2
#undef A5_R3
#undef A5_R4
#undef A5_R5
#undef A5_R6
#undef A5_R7
#undef A5_BLOCK8
#undef A5_PUT
#undef A5_SCHED

#endif /* SGM_SCAN_AVX512_H */
