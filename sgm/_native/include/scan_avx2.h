/* scan_avx2.h - AVX2 scan kernel: 8 nonces side by side, one per 32-bit lane of a __m256i.
 *
 * Same contract as sgm_scan_scalar (see sgm_sha256.h).  Every function here carries a
 * target("avx2") attribute, so the extension itself stays baseline x86-64 and the kernel
 * is picked at run time by CPUID.
 *
 * Shortcuts (the nonce-independent work is done once per call, in scalar code), the same
 * in both lane-parallel kernels:
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
 * The kernel body (rounds, schedule, table layout) is scan_simd_body.h, shared with the
 * AVX-512 kernel; this header supplies the 8-lane primitives.
 *
 * Define SGM_USE_SIMDE before including to build on SIMDe (portable emulation of the
 * intrinsics), for testing on machines without AVX2.
 */
#ifndef SGM_SCAN_AVX2_H
#define SGM_SCAN_AVX2_H

#include "scan_simd.h"

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

/* ---- the kernel: scan_simd_body.h over these primitives ---- */
#define V_T __m256i
#define V_NLANES 8
#define V_TARGET SGM_AVX2_TARGET
#define V_C A2_C
#define V_ADD A2_ADD
#define V_S0 A2_S0
#define V_S1 A2_S1
#define V_s0 A2_s0
#define V_s1 A2_s1
#define V_CH A2_CH
#define V_MAJ A2_MAJ
#define V_ZERO() _mm256_setzero_si256()
#define V_LANES_VALUE _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
#define V_AUX_VALUE _mm256_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, \
                                     3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12)
#define V_BSWAP(x) _mm256_shuffle_epi8((x), tab[V_AUX])
/* unsigned x <= t  <=>  min(x, t) == x */
#define V_LE_MASK(x, t) ((uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(                 \
    _mm256_cmpeq_epi32(_mm256_min_epu32((x), (t)), (x)))))
#define V_FILL_FN sgm_avx2_fill_table
#define V_BATCH_FN sgm_avx2_batch
#define V_SCAN_FN sgm_scan_avx2
#include "scan_simd_body.h"
#include "scan_simd_undef.h"

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

#endif /* SGM_SCAN_AVX2_H */
