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

#include "scan_simd.h"

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

/* ---- the kernel: scan_simd_body.h over these primitives ---- */
#define V_T __m512i
#define V_NLANES 16
#define V_TARGET SGM_AVX512_TARGET
#define V_C A5_C
#define V_ADD A5_ADD
#define V_S0 A5_S0
#define V_S1 A5_S1
#define V_s0 A5_s0
#define V_s1 A5_s1
#define V_CH A5_CH
#define V_MAJ A5_MAJ
#define V_ZERO() _mm512_setzero_si512()
#define V_LANES_VALUE _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define V_AUX_VALUE A5_C(0xFF00FF00u)
/* bswap32 per lane: bytes 3 and 1 from ror(x, 8), bytes 2 and 0 from rol(x, 8) */
#define V_BSWAP(x) _mm512_ternarylogic_epi32(tab[V_AUX], _mm512_ror_epi32((x), 8),    \
                                             _mm512_rol_epi32((x), 8), 0xCA)
#define V_LE_MASK(x, t) ((uint32_t)_mm512_cmple_epu32_mask((x), (t)))
#define V_FILL_FN sgm_avx512_fill_table
#define V_BATCH_FN sgm_avx512_batch
#define V_SCAN_FN sgm_scan_avx512
#include "scan_simd_body.h"
#include "scan_simd_undef.h"

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

#endif /* SGM_SCAN_AVX512_H */
