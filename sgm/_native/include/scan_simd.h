/* scan_simd.h - what the lane-parallel kernels (AVX2: 8 lanes, AVX-512: 16 lanes) share:
 * the round and message-schedule macros and the slots of the per-call table.  The macros
 * are written over V_* primitives (V_T, V_ADD, V_S0, V_S1, V_s0, V_s1, V_CH, V_MAJ, V_C)
 * that each kernel header defines before it includes scan_simd_body.h.
 *
 * Layout, chosen by measurement on Zen 3 (AMD EPYC, 1 thread, AVX2): per batch the
 * message schedule is expanded first into w[] and a table of K[i] + W[i]; then the rounds
 * run unrolled, reading K[i] + W[i] as memory operands, with the state a..h in registers
 * (the names rotate instead of the values moving).  Expanding the schedule separately
 * keeps the rounds within 16 registers; interleaving it with the rounds, a rolling
 * 16-word window, two interleaved batches and a fully unrolled schedule were all measured
 * slower (11.7 to 12.6 MH/s against 13.5).
 */
#ifndef SGM_SCAN_SIMD_H
#define SGM_SCAN_SIMD_H

#include "sgm_sha256.h"

/* One round in place: d += t1, h = t1 + t2, kw = K[i] + W[i]. */
#define V_RND(a, b, c, d, e, f, g, h, kw)                                          \
    do {                                                                            \
        const V_T t1_ = V_ADD(V_ADD(V_ADD(h, kw), V_CH(e, f, g)), V_S1(e)); \
        const V_T t2_ = V_ADD(V_S0(a), V_MAJ(a, b, c));                      \
        d = V_ADD(d, t1_);                                                         \
        h = V_ADD(t1_, t2_);                                                       \
    } while (0)

/* round i uses V_R<i mod 8>: the variable holding word a moves back one name per round */
#define V_R0(kw) V_RND(a, b, c, d, e, f, g, h, kw)
#define V_R1(kw) V_RND(h, a, b, c, d, e, f, g, kw)
#define V_R2(kw) V_RND(g, h, a, b, c, d, e, f, kw)
#define V_R3(kw) V_RND(f, g, h, a, b, c, d, e, kw)
#define V_R4(kw) V_RND(e, f, g, h, a, b, c, d, kw)
#define V_R5(kw) V_RND(d, e, f, g, h, a, b, c, kw)
#define V_R6(kw) V_RND(c, d, e, f, g, h, a, b, kw)
#define V_R7(kw) V_RND(b, c, d, e, f, g, h, a, kw)
/* rounds k..k+7 (k a multiple of 8) reading K + W from tab[base + i] */
#define V_BLOCK8(base, k)                                                          \
    do {                                                                            \
        V_R0(tab[(base) + (k) + 0]); V_R1(tab[(base) + (k) + 1]);                 \
        V_R2(tab[(base) + (k) + 2]); V_R3(tab[(base) + (k) + 3]);                 \
        V_R4(tab[(base) + (k) + 4]); V_R5(tab[(base) + (k) + 5]);                 \
        V_R6(tab[(base) + (k) + 6]); V_R7(tab[(base) + (k) + 7]);                 \
    } while (0)

/* message schedule: w[] holds W, tab[base + i] receives K[i] + W[i] */
#define V_PUT(base, i, val)                                                        \
    do {                                                                            \
        w[i] = (val);                                                               \
        tab[(base) + (i)] = V_ADD(w[i], tab[V_K + (i)]);                          \
    } while (0)
#define V_SCHED(base, i)                                                           \
    V_PUT(base, i, V_ADD(V_ADD(V_s1(w[(i) - 2]), w[(i) - 7]),                   \
                           V_ADD(V_s0(w[(i) - 15]), w[(i) - 16])))

/* Slots of the per-call table (in V_T units). */
enum {
    V_WK1 = 0,   /* 64: K[i] + W[i] of block 2: [4..17] constant, [18..63] per batch */
    V_WK2 = 64,  /* 64: K[i] + W[i] of the second hash: [8..15] constant, rest per batch */
    V_K = 128,   /* 64: K[i] */
    V_ST3 = 192, /* 8: wk->st3 */
    V_IV = 200,  /* 8: SGM_H0 */
    V_MID = 208, /* 8: wk->midstate */
    V_E4C = 216, V_A4C, V_W18P, V_W19P, V_W16, V_W17, V_W30C, V_W31C,
    V_W32C, V_C640, V_C80, V_C256, V_E1C, V_A1C, V_V17C, V_V23C, V_V30C,
    V_T7, V_LANES, V_AUX, V_NSLOTS
};

#endif /* SGM_SCAN_SIMD_H */
