/* scan_shani.h - SHA-NI scan kernel, several independent nonces interleaved.
 *
 * sha256rnds2 has a multi-cycle latency, so one SHA-256 stream leaves the SHA unit idle
 * most of the time; SGM_SHANI_STREAMS independent nonces are interleaved instruction by
 * instruction so the unit is fed every cycle.  Shortcuts: block-2 rounds 0..1 come from
 * sgm_work_prepare (st2), the constant message quads W4..W15 of block 2 and W8..W15 of
 * the second hash have K folded in at compile time, and the second hash stops after the
 * two-round step that produces round 60's e value (rounds 62..63 skipped).
 *
 * State layout (as the SHA extensions want it): S0 = (F,E,B,A), S1 = (H,G,D,C) in lanes 0..3.
 */
#ifndef SGM_SCAN_SHANI_H
#define SGM_SCAN_SHANI_H

#include <immintrin.h>
#include "sgm_sha256.h"

#ifndef SGM_SHANI_STREAMS
#define SGM_SHANI_STREAMS 4
#endif

/* K[4i..4i+3] as vectors */
#define SGM_KV(i) _mm_set_epi32((int)SGM_K[4 * (i) + 3], (int)SGM_K[4 * (i) + 2], \
                                (int)SGM_K[4 * (i) + 1], (int)SGM_K[4 * (i)])
#define SGM_SET4(w0, w1, w2, w3) _mm_set_epi32((int)(w3), (int)(w2), (int)(w1), (int)(w0))

/* state words a..h -> (ABEF, CDGH) */
#define SGM_PACK_STATE(st, S0, S1)                                           \
    do {                                                                     \
        S0 = SGM_SET4((st)[5], (st)[4], (st)[1], (st)[0]);                   \
        S1 = SGM_SET4((st)[7], (st)[6], (st)[3], (st)[2]);                   \
    } while (0)

#define NS SGM_SHANI_STREAMS
#define FOR_S for (int s = 0; s < NS; s++)

/* four rounds on every stream with message+K vectors MK[s] */
#define QUAD_MK(MK)                                                          \
    do {                                                                     \
        _Pragma("GCC unroll 8") FOR_S S1[s] = _mm_sha256rnds2_epu32(S1[s], S0[s], MK[s]); \
        _Pragma("GCC unroll 8") FOR_S MK[s] = _mm_shuffle_epi32(MK[s], 0x0E);            \
        _Pragma("GCC unroll 8") FOR_S S0[s] = _mm_sha256rnds2_epu32(S0[s], S1[s], MK[s]); \
    } while (0)

/* four rounds with one constant message+K vector shared by all streams */
#define QUAD_CONST(mk)                                                       \
    do {                                                                     \
        const __m128i lo_ = (mk), hi_ = _mm_shuffle_epi32(lo_, 0x0E);        \
        _Pragma("GCC unroll 8") FOR_S S1[s] = _mm_sha256rnds2_epu32(S1[s], S0[s], lo_); \
        _Pragma("GCC unroll 8") FOR_S S0[s] = _mm_sha256rnds2_epu32(S0[s], S1[s], hi_); \
    } while (0)

/* M0 <- next schedule quad from (M0, M1, M2, M3) = W[i-16 .. i-1] */
#define SCHED(M0, M1, M2, M3)                                                \
    do {                                                                     \
        _Pragma("GCC unroll 8") FOR_S {                                      \
            __m128i t_ = _mm_add_epi32(_mm_sha256msg1_epu32(M0[s], M1[s]),   \
                                       _mm_alignr_epi8(M3[s], M2[s], 4));    \
            M0[s] = _mm_sha256msg2_epu32(t_, M3[s]);                         \
        }                                                                    \
    } while (0)

/* schedule quad + four rounds, K in kq_: stream by stream, so rnds2's implicit xmm0
 * operand is reused in turn (measured ~6% faster than all streams step by step) */
#define SQUAD(q, M0, M1, M2, M3)                                             \
    do {                                                                     \
        _Pragma("GCC unroll 8") FOR_S {                                      \
            __m128i t_ = _mm_add_epi32(_mm_sha256msg1_epu32(M0[s], M1[s]),   \
                                       _mm_alignr_epi8(M3[s], M2[s], 4));    \
            M0[s] = _mm_sha256msg2_epu32(t_, M3[s]);                         \
            __m128i mk_ = _mm_add_epi32(M0[s], kq_);                         \
            S1[s] = _mm_sha256rnds2_epu32(S1[s], S0[s], mk_);                \
            mk_ = _mm_shuffle_epi32(mk_, 0x0E);                              \
            S0[s] = _mm_sha256rnds2_epu32(S0[s], S1[s], mk_);                \
        }                                                                    \
    } while (0)

/* rounds 16..59: schedule quads 4..14 with the message words rotating through M0..M3 */
#define SQUADS_4_TO_14()                                                     \
    do {                                                                     \
        kq_ = SGM_KV(4);  SQUAD(4, M0, M1, M2, M3);                          \
        kq_ = SGM_KV(5);  SQUAD(5, M1, M2, M3, M0);                          \
        kq_ = SGM_KV(6);  SQUAD(6, M2, M3, M0, M1);                          \
        kq_ = SGM_KV(7);  SQUAD(7, M3, M0, M1, M2);                          \
        kq_ = SGM_KV(8);  SQUAD(8, M0, M1, M2, M3);                          \
        kq_ = SGM_KV(9);  SQUAD(9, M1, M2, M3, M0);                          \
        kq_ = SGM_KV(10); SQUAD(10, M2, M3, M0, M1);                         \
        kq_ = SGM_KV(11); SQUAD(11, M3, M0, M1, M2);                         \
        kq_ = SGM_KV(12); SQUAD(12, M0, M1, M2, M3);                         \
        kq_ = SGM_KV(13); SQUAD(13, M1, M2, M3, M0);                         \
        kq_ = SGM_KV(14); SQUAD(14, M2, M3, M0, M1);                         \
    } while (0)

/* VEX encoding for everything but the SHA instructions (three-operand forms need fewer
 * copies): every SHA-NI CPU with AVX */
#define SGM_SHANI_FN sgm_scan_shani
#define SGM_SHANI_TARGET __attribute__((target("sha,avx")))
#include "scan_shani_body.h"
#undef SGM_SHANI_FN
#undef SGM_SHANI_TARGET

/* legacy SSE encoding: SHA-NI CPUs without AVX (Goldmont-class Atoms) */
#define SGM_SHANI_FN sgm_scan_shani_sse
#define SGM_SHANI_TARGET __attribute__((target("sha,sse4.1,ssse3")))
#include "scan_shani_body.h"
#undef SGM_SHANI_FN
#undef SGM_SHANI_TARGET

#undef NS
#undef FOR_S
#undef QUAD_MK
#undef QUAD_CONST
#undef SCHED
#undef SQUAD
#undef SQUADS_4_TO_14

#endif /* SGM_SCAN_SHANI_H */
