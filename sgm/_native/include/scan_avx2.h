/* scan_avx2.h - AVX2 scan kernel: 8 nonces side by side, one per 32-bit lane of a __m256i.
 *
 * Same contract as sgm_scan_scalar (see sgm_sha256.h).  Every function here carries a
 * target("avx2") attribute, so the extension itself stays baseline x86-64 and the kernel
 * is picked at run time by CPUID.
 *
 * Shortcuts (the nonce-independent work is done once per call, in scalar code):
 *   - block 2 of the header starts from wk->st3 (rounds 0..2 done); round 3 is two vector
 *     adds (t1_3 + W3 folded with d, and with S0(a) + Maj(a,b,c) of st3);
 *   - block-2 message words W4..W15 are padding constants and W16/W17 come from sgm_work:
 *     rounds 4..17 add one precomputed K[i] + W[i] constant, and the schedule words
 *     W18..W33 drop every zero term and fold the constant ones (w18_part, w19_part, ...);
 *   - second hash: round 0 starts from the constant IV (two adds), W8..W15 are constants
 *     (K + W folded for rounds 8..15, zero terms dropped from W16..W31), and it stops after
 *     round 60, whose e value gives H7 = e60 + 0x5be0cd19 (rounds 57..60 only compute e);
 *   - filter: a lane passes when bswap32(H7) <= target[7] (unsigned, via min_epu32); every
 *     passing lane is confirmed with the scalar sgm_check_nonce, which decides.
 *
 * Layout, chosen by measurement on Zen 3 (AMD EPYC, 1 thread): per batch
 * of 8 nonces the message schedule is expanded first (a short loop) into W[] and a table of
 * K[i] + W[i]; then the rounds run unrolled, reading K[i] + W[i] as memory operands, with
 * the state a..h in registers (the names rotate instead of the values moving).  Expanding
 * the schedule separately keeps the rounds within the 16 ymm registers; interleaving it
 * with the rounds, a rolling 16-word window, two interleaved 8-lane batches and a fully
 * unrolled schedule were all measured slower (11.7 to 12.6 MH/s against 13.5).
 *
 * Define SGM_USE_SIMDE before including to build on SIMDe (portable emulation of the
 * intrinsics), for testing on machines without AVX2.
 */
#ifndef SGM_SCAN_AVX2_H
#define SGM_SCAN_AVX2_H

#include "sgm_sha256.h"

#ifdef SGM_USE_SIMDE
#ifndef SIMDE_ENABLE_NATIVE_ALIASES
#define SIMDE_ENABLE_NATIVE_ALIASES
#endif
#include <simde/x86/avx2.h>
#define SGM_AVX2_TARGET
#else
#include <immintrin.h>
#define SGM_AVX2_TARGET __attribute__((target("avx2")))
#endif

/* ---- 8-lane primitives ---- */
#define A2_C(x) _mm256_set1_epi32((int)(uint32_t)(x))
#define A2_ADD(x, y) _mm256_add_epi32((x), (y))
#define A2_XOR(x, y) _mm256_xor_si256((x), (y))
#define A2_AND(x, y) _mm256_and_si256((x), (y))
#define A2_SRL(x, n) _mm256_srli_epi32((x), (n))
#define A2_SLL(x, n) _mm256_slli_epi32((x), (n))
#define A2_OR(x, y) _mm256_or_si256((x), (y))
/* the two halves of a rotate never overlap, so xor joins them (and reassociates freely) */
#define A2_ROR(x, n) A2_XOR(A2_SRL(x, n), A2_SLL(x, 32 - (n)))
#define A2_S0(x) A2_XOR(A2_XOR(A2_ROR(x, 2), A2_ROR(x, 13)), A2_ROR(x, 22))
#define A2_S1(x) A2_XOR(A2_XOR(A2_ROR(x, 6), A2_ROR(x, 11)), A2_ROR(x, 25))
#define A2_s0(x) A2_XOR(A2_XOR(A2_ROR(x, 7), A2_ROR(x, 18)), A2_SRL(x, 3))
#define A2_s1(x) A2_XOR(A2_XOR(A2_ROR(x, 17), A2_ROR(x, 19)), A2_SRL(x, 10))
#define A2_CH(e, f, g) A2_XOR(A2_AND(A2_XOR(f, g), e), g)
/* (a & b) | (c & (a | b)): one op more than the b ^ ((a ^ b) & (b ^ c)) form with the
 * previous a ^ b carried over, but one register less, and measured slightly faster */
#define A2_MAJ(a, b, c) A2_OR(A2_AND(a, b), A2_AND(c, A2_OR(a, b)))

/* One round in place: d += t1, h = t1 + t2, kw = K[i] + W[i]. */
#define A2_RND(a, b, c, d, e, f, g, h, kw)                                          \
    do {                                                                            \
        const __m256i t1_ = A2_ADD(A2_ADD(A2_ADD(h, kw), A2_CH(e, f, g)), A2_S1(e)); \
        const __m256i t2_ = A2_ADD(A2_S0(a), A2_MAJ(a, b, c));                      \
        d = A2_ADD(d, t1_);                                                         \
        h = A2_ADD(t1_, t2_);                                                       \
    } while (0)

/* round i uses A2_R<i mod 8>: the variable holding word a moves back one name per round */
#define A2_R0(kw) A2_RND(a, b, c, d, e, f, g, h, kw)
#define A2_R1(kw) A2_RND(h, a, b, c, d, e, f, g, kw)
#define A2_R2(kw) A2_RND(g, h, a, b, c, d, e, f, kw)
#define A2_R3(kw) A2_RND(f, g, h, a, b, c, d, e, kw)
#define A2_R4(kw) A2_RND(e, f, g, h, a, b, c, d, kw)
#define A2_R5(kw) A2_RND(d, e, f, g, h, a, b, c, kw)
#define A2_R6(kw) A2_RND(c, d, e, f, g, h, a, b, kw)
#define A2_R7(kw) A2_RND(b, c, d, e, f, g, h, a, kw)
/* rounds k..k+7 (k a multiple of 8) reading K + W from tab[base + i] */
#define A2_BLOCK8(base, k)                                                          \
    do {                                                                            \
        A2_R0(tab[(base) + (k) + 0]); A2_R1(tab[(base) + (k) + 1]);                 \
        A2_R2(tab[(base) + (k) + 2]); A2_R3(tab[(base) + (k) + 3]);                 \
        A2_R4(tab[(base) + (k) + 4]); A2_R5(tab[(base) + (k) + 5]);                 \
        A2_R6(tab[(base) + (k) + 6]); A2_R7(tab[(base) + (k) + 7]);                 \
    } while (0)

/* message schedule: w[] holds W, tab[base + i] receives K[i] + W[i] */
#define A2_PUT(base, i, val)                                                        \
    do {                                                                            \
        w[i] = (val);                                                               \
        tab[(base) + (i)] = A2_ADD(w[i], tab[A2_K + (i)]);                          \
    } while (0)
#define A2_SCHED(base, i)                                                           \
    A2_PUT(base, i, A2_ADD(A2_ADD(A2_s1(w[(i) - 2]), w[(i) - 7]),                   \
                           A2_ADD(A2_s0(w[(i) - 15]), w[(i) - 16])))

/* Slots of the per-call table (in __m256i units). */
enum {
    A2_WK1 = 0,   /* 64: K[i] + W[i] of block 2: [4..17] constant, [18..63] per batch */
    A2_WK2 = 64,  /* 64: K[i] + W[i] of the second hash: [8..15] constant, rest per batch */
    A2_K = 128,   /* 64: K[i] */
    A2_ST3 = 192, /* 8: wk->st3 */
    A2_IV = 200,  /* 8: SGM_H0 */
    A2_MID = 208, /* 8: wk->midstate */
    A2_E4C = 216, A2_A4C, A2_W18P, A2_W19P, A2_W16, A2_W17, A2_W30C, A2_W31C,
    A2_W32C, A2_C640, A2_C80, A2_C256, A2_E1C, A2_A1C, A2_V17C, A2_V23C, A2_V30C,
    A2_T7, A2_LANES, A2_BSWAP, A2_NSLOTS
};

SGM_AVX2_TARGET
static void sgm_avx2_fill_table(const sgm_work *wk, __m256i *tab) {
    const uint32_t *s3 = wk->st3;
    int k;
    for (k = 0; k < 64; k++) {
        tab[A2_K + k] = A2_C(SGM_K[k]);
        tab[A2_WK1 + k] = tab[A2_WK2 + k] = _mm256_setzero_si256();
    }
    /* block 2: W4 = 0x80000000, W5..W14 = 0, W15 = 640, W16/W17 from sgm_work */
    for (k = 4; k < 18; k++) tab[A2_WK1 + k] = A2_C(SGM_K[k]);
    tab[A2_WK1 + 4] = A2_C(SGM_K[4] + 0x80000000u);
    tab[A2_WK1 + 15] = A2_C(SGM_K[15] + 640u);
    tab[A2_WK1 + 16] = A2_C(SGM_K[16] + wk->w16);
    tab[A2_WK1 + 17] = A2_C(SGM_K[17] + wk->w17);
    /* second hash: W8 = 0x80000000, W9..W14 = 0, W15 = 256 */
    for (k = 8; k < 16; k++) tab[A2_WK2 + k] = A2_C(SGM_K[k]);
    tab[A2_WK2 + 8] = A2_C(SGM_K[8] + 0x80000000u);
    tab[A2_WK2 + 15] = A2_C(SGM_K[15] + 256u);
    for (k = 0; k < 8; k++) {
        tab[A2_ST3 + k] = A2_C(s3[k]);
        tab[A2_IV + k] = A2_C(SGM_H0[k]);
        tab[A2_MID + k] = A2_C(wk->midstate[k]);
    }
    /* round 3: e = d + t1_3 + W3, a = t1_3 + S0(a) + Maj(a,b,c) + W3 */
    tab[A2_E4C] = A2_C(s3[3] + wk->t1_3);
    tab[A2_A4C] = A2_C(wk->t1_3 + SGM_S0(s3[0]) + SGM_MAJ(s3[0], s3[1], s3[2]));
    tab[A2_W18P] = A2_C(wk->w18_part);
    tab[A2_W19P] = A2_C(wk->w19_part);
    tab[A2_W16] = A2_C(wk->w16);
    tab[A2_W17] = A2_C(wk->w17);
    tab[A2_W30C] = A2_C(SGM_s0(640u));                /* s0(W15) */
    tab[A2_W31C] = A2_C(SGM_s0(wk->w16) + 640u);      /* s0(W16) + W15 */
    tab[A2_W32C] = A2_C(SGM_s0(wk->w17) + wk->w16);   /* s0(W17) + W16 */
    tab[A2_C640] = A2_C(640u);
    tab[A2_C80] = A2_C(0x80000000u);
    tab[A2_C256] = A2_C(256u);
    {   /* second hash, round 0 from the IV: e1 = W0 + e1c, a1 = W0 + a1c */
        const uint32_t t1c = SGM_H0[7] + SGM_S1(SGM_H0[4]) +
                             SGM_CH(SGM_H0[4], SGM_H0[5], SGM_H0[6]) + SGM_K[0];
        tab[A2_E1C] = A2_C(SGM_H0[3] + t1c);
        tab[A2_A1C] = A2_C(t1c + SGM_S0(SGM_H0[0]) + SGM_MAJ(SGM_H0[0], SGM_H0[1], SGM_H0[2]));
    }
    tab[A2_V17C] = A2_C(SGM_s1(256u));           /* s1(W15) */
    tab[A2_V23C] = A2_C(SGM_s0(0x80000000u));    /* s0(W8) */
    tab[A2_V30C] = A2_C(SGM_s0(256u));           /* s0(W15) */
    tab[A2_T7] = A2_C(wk->target[7]);
    tab[A2_LANES] = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    tab[A2_BSWAP] = _mm256_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12,
                                     3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12);
}

/* bit s of the result: lane s (nonce n0 + s) passes the H7 filter */
SGM_AVX2_TARGET
static inline uint32_t sgm_avx2_batch(__m256i *tab, uint32_t n0) {
    __m256i a, b, c, d, e, f, g, h, w3, h7, w[64];
    int k;

    /* ================= first hash, block 2 ================= */
    w3 = _mm256_shuffle_epi8(A2_ADD(A2_C(n0), tab[A2_LANES]), tab[A2_BSWAP]);
    /* schedule W18..W63, zero terms dropped from W18..W33 */
    A2_PUT(A2_WK1, 18, A2_ADD(tab[A2_W18P], A2_s0(w3)));
    A2_PUT(A2_WK1, 19, A2_ADD(tab[A2_W19P], w3));
    A2_PUT(A2_WK1, 20, A2_ADD(A2_s1(w[18]), tab[A2_C80]));   /* + W4 */
    A2_PUT(A2_WK1, 21, A2_s1(w[19]));
    A2_PUT(A2_WK1, 22, A2_ADD(A2_s1(w[20]), tab[A2_C640]));  /* + W15 */
    A2_PUT(A2_WK1, 23, A2_ADD(A2_s1(w[21]), tab[A2_W16]));
    A2_PUT(A2_WK1, 24, A2_ADD(A2_s1(w[22]), tab[A2_W17]));
    A2_PUT(A2_WK1, 25, A2_ADD(A2_s1(w[23]), w[18]));
    A2_PUT(A2_WK1, 26, A2_ADD(A2_s1(w[24]), w[19]));
    A2_PUT(A2_WK1, 27, A2_ADD(A2_s1(w[25]), w[20]));
    A2_PUT(A2_WK1, 28, A2_ADD(A2_s1(w[26]), w[21]));
    A2_PUT(A2_WK1, 29, A2_ADD(A2_s1(w[27]), w[22]));
    A2_PUT(A2_WK1, 30, A2_ADD(A2_ADD(A2_s1(w[28]), w[23]), tab[A2_W30C]));
    A2_PUT(A2_WK1, 31, A2_ADD(A2_ADD(A2_s1(w[29]), w[24]), tab[A2_W31C]));
    A2_PUT(A2_WK1, 32, A2_ADD(A2_ADD(A2_s1(w[30]), w[25]), tab[A2_W32C]));
    A2_PUT(A2_WK1, 33, A2_ADD(A2_ADD(A2_s1(w[31]), w[26]), A2_ADD(A2_s0(w[18]), tab[A2_W17])));
    _Pragma("GCC unroll 1")
    for (k = 34; k < 64; k++) A2_SCHED(A2_WK1, k);

    /* round 3; the state before round 4 in round-4 naming (word a in `e`) */
    e = A2_ADD(w3, tab[A2_A4C]);
    f = tab[A2_ST3 + 0]; g = tab[A2_ST3 + 1]; h = tab[A2_ST3 + 2];
    a = A2_ADD(w3, tab[A2_E4C]);
    b = tab[A2_ST3 + 4]; c = tab[A2_ST3 + 5]; d = tab[A2_ST3 + 6];
    A2_R4(tab[A2_WK1 + 4]);
    A2_R5(tab[A2_WK1 + 5]);
    A2_R6(tab[A2_WK1 + 6]);
    A2_R7(tab[A2_WK1 + 7]);
    _Pragma("GCC unroll 8")
    for (k = 8; k < 64; k += 8) A2_BLOCK8(A2_WK1, k);

    /* ================= second hash ================= */
    /* after round 63 the names are back in place: W0..W7 = state + midstate */
    A2_PUT(A2_WK2, 0, A2_ADD(a, tab[A2_MID + 0]));
    A2_PUT(A2_WK2, 1, A2_ADD(b, tab[A2_MID + 1]));
    A2_PUT(A2_WK2, 2, A2_ADD(c, tab[A2_MID + 2]));
    A2_PUT(A2_WK2, 3, A2_ADD(d, tab[A2_MID + 3]));
    A2_PUT(A2_WK2, 4, A2_ADD(e, tab[A2_MID + 4]));
    A2_PUT(A2_WK2, 5, A2_ADD(f, tab[A2_MID + 5]));
    A2_PUT(A2_WK2, 6, A2_ADD(g, tab[A2_MID + 6]));
    A2_PUT(A2_WK2, 7, A2_ADD(h, tab[A2_MID + 7]));
    /* W8 = 0x80000000, W9..W14 = 0, W15 = 256: zero terms dropped from W16..W31 */
    A2_PUT(A2_WK2, 16, A2_ADD(A2_s0(w[1]), w[0]));
    A2_PUT(A2_WK2, 17, A2_ADD(A2_ADD(A2_s0(w[2]), w[1]), tab[A2_V17C]));
    A2_PUT(A2_WK2, 18, A2_ADD(A2_ADD(A2_s1(w[16]), A2_s0(w[3])), w[2]));
    A2_PUT(A2_WK2, 19, A2_ADD(A2_ADD(A2_s1(w[17]), A2_s0(w[4])), w[3]));
    A2_PUT(A2_WK2, 20, A2_ADD(A2_ADD(A2_s1(w[18]), A2_s0(w[5])), w[4]));
    A2_PUT(A2_WK2, 21, A2_ADD(A2_ADD(A2_s1(w[19]), A2_s0(w[6])), w[5]));
    A2_PUT(A2_WK2, 22, A2_ADD(A2_ADD(A2_s1(w[20]), A2_s0(w[7])), A2_ADD(w[6], tab[A2_C256])));
    A2_PUT(A2_WK2, 23, A2_ADD(A2_ADD(A2_s1(w[21]), w[16]), A2_ADD(w[7], tab[A2_V23C])));
    A2_PUT(A2_WK2, 24, A2_ADD(A2_ADD(A2_s1(w[22]), w[17]), tab[A2_C80]));
    A2_PUT(A2_WK2, 25, A2_ADD(A2_s1(w[23]), w[18]));
    A2_PUT(A2_WK2, 26, A2_ADD(A2_s1(w[24]), w[19]));
    A2_PUT(A2_WK2, 27, A2_ADD(A2_s1(w[25]), w[20]));
    A2_PUT(A2_WK2, 28, A2_ADD(A2_s1(w[26]), w[21]));
    A2_PUT(A2_WK2, 29, A2_ADD(A2_s1(w[27]), w[22]));
    A2_PUT(A2_WK2, 30, A2_ADD(A2_ADD(A2_s1(w[28]), w[23]), tab[A2_V30C]));
    A2_PUT(A2_WK2, 31, A2_ADD(A2_ADD(A2_s1(w[29]), w[24]), A2_ADD(A2_s0(w[16]), tab[A2_C256])));
    _Pragma("GCC unroll 1")
    for (k = 32; k < 61; k++) A2_SCHED(A2_WK2, k);

    /* round 0 from the IV; the state before round 1 in round-1 naming (word a in `h`) */
    h = A2_ADD(w[0], tab[A2_A1C]);
    a = tab[A2_IV + 0]; b = tab[A2_IV + 1]; c = tab[A2_IV + 2];
    d = A2_ADD(w[0], tab[A2_E1C]);
    e = tab[A2_IV + 4]; f = tab[A2_IV + 5]; g = tab[A2_IV + 6];
    A2_R1(tab[A2_WK2 + 1]);
    A2_R2(tab[A2_WK2 + 2]);
    A2_R3(tab[A2_WK2 + 3]);
    A2_R4(tab[A2_WK2 + 4]);
    A2_R5(tab[A2_WK2 + 5]);
    A2_R6(tab[A2_WK2 + 6]);
    A2_R7(tab[A2_WK2 + 7]);
    _Pragma("GCC unroll 8")
    for (k = 8; k < 56; k += 8) A2_BLOCK8(A2_WK2, k);
    /* rounds 56..60; the a words of rounds 57..60 are never used (the compiler drops them) */
    A2_R0(tab[A2_WK2 + 56]);
    A2_R1(tab[A2_WK2 + 57]);
    A2_R2(tab[A2_WK2 + 58]);
    A2_R3(tab[A2_WK2 + 59]);
    A2_R4(tab[A2_WK2 + 60]);   /* round 60: its new e lands in `h` */
    (void)a; (void)b;

    /* ---- filter: bswap32(e60 + H0[7]) <= target[7], unsigned ---- */
    h7 = _mm256_shuffle_epi8(A2_ADD(h, tab[A2_IV + 7]), tab[A2_BSWAP]);
    return (uint32_t)_mm256_movemask_ps(
        _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_min_epu32(h7, tab[A2_T7]), h7)));
}

SGM_AVX2_TARGET
static void sgm_scan_avx2(const sgm_work *wk, uint32_t start, uint64_t count, uint32_t *out,
                          uint32_t cap, const volatile int *abort, sgm_scan_result *res) {
    /* nonce-independent vectors, broadcast once per call; the batch code reads them (and
     * the per-batch K + W words) as memory operands.  The empty asm hides the contents from
     * constant propagation, which would otherwise rebuild each constant (mov + vmovd +
     * vpbroadcastd) at every use. */
    __m256i table[A2_NSLOTS];
    __m256i *tab = table;
    uint64_t i = 0;
    uint32_t found = 0;

    sgm_avx2_fill_table(wk, tab);
    __asm__("" : "+r"(tab) : : "memory");

    res->status = SGM_SCAN_DONE;
    while (i < count) {
        const uint64_t stop = count - i > SGM_ABORT_STRIDE ? i + SGM_ABORT_STRIDE : count;
        if (*abort) { res->status = SGM_SCAN_ABORTED; break; }
        for (; i < stop; i += 8) {
            const uint32_t n0 = start + (uint32_t)i;
            uint32_t mask = sgm_avx2_batch(tab, n0);
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

#undef A2_C
#undef A2_ADD
#undef A2_XOR
#undef A2_AND
#undef A2_SRL
#undef A2_SLL
#undef A2_OR
#undef A2_ROR
#undef A2_S0
#undef A2_S1
#undef A2_s0
#undef A2_s1
#undef A2_CH
#undef A2_MAJ
#undef A2_RND
#undef A2_R0
#undef A2_R1
#undef A2_R2
#undef A2_R3
#undef A2_R4
#undef A2_R5
#undef A2_R6
#undef A2_R7
#undef A2_BLOCK8
#undef A2_PUT
#undef A2_SCHED

#endif /* SGM_SCAN_AVX2_H */
