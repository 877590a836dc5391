/* scan_shani_body.h - the SHA-NI scan function, included by scan_shani.h once per
 * encoding (no include guard on purpose).  Expects SGM_SHANI_FN (the function name),
 * SGM_SHANI_TARGET (its target attribute) and the macros of scan_shani.h. */

SGM_SHANI_TARGET
static void SGM_SHANI_FN(const sgm_work *wk, uint32_t start, uint64_t count, uint32_t *out,
                           uint32_t cap, const volatile int *abort, sgm_scan_result *res) {
    /* nonce-independent values */
    __m128i MS0, MS1, ST2_0, ST2_1, IV0, IV1;
    const uint32_t h7_add = SGM_H0[7];
    const uint32_t t7 = wk->target[7];
    /* block 2 of the header: W4 = 0x80000000, W5..W14 = 0, W15 = 640 */
    const __m128i B1_MK1 = _mm_add_epi32(SGM_SET4(0x80000000u, 0, 0, 0), SGM_KV(1));
    const __m128i B1_MK2 = SGM_KV(2);
    const __m128i B1_MK3 = _mm_add_epi32(SGM_SET4(0, 0, 0, 640u), SGM_KV(3));
    const __m128i B1_M1 = SGM_SET4(0x80000000u, 0, 0, 0);
    const __m128i B1_M2 = _mm_setzero_si128();
    const __m128i B1_M3 = SGM_SET4(0, 0, 0, 640u);
    /* second hash: W8 = 0x80000000, W9..W14 = 0, W15 = 256 */
    const __m128i B2_MK2 = _mm_add_epi32(SGM_SET4(0x80000000u, 0, 0, 0), SGM_KV(2));
    const __m128i B2_MK3 = _mm_add_epi32(SGM_SET4(0, 0, 0, 256u), SGM_KV(3));
    const __m128i B2_M2 = SGM_SET4(0x80000000u, 0, 0, 0);
    const __m128i B2_M3 = SGM_SET4(0, 0, 0, 256u);
    uint64_t i = 0;
    uint32_t found = 0;

    SGM_PACK_STATE(wk->midstate, MS0, MS1);
    SGM_PACK_STATE(wk->st2, ST2_0, ST2_1);
    SGM_PACK_STATE(SGM_H0, IV0, IV1);

    res->status = SGM_SCAN_DONE;
    while (i < count) {
        uint64_t stop = count - i > SGM_ABORT_STRIDE ? i + SGM_ABORT_STRIDE : count;
        if (sgm_flag_load(abort)) { res->status = SGM_SCAN_ABORTED; break; }
        for (; i < stop; i += NS) {
            __m128i S0[NS], S1[NS], M0[NS], M1[NS], M2[NS], M3[NS], T[NS];
            uint32_t e60[NS];
            const uint32_t n0 = start + (uint32_t)i;

            /* ------------- first hash, block 2 ------------- */
            _Pragma("GCC unroll 8") FOR_S {
                const uint32_t nbe = sgm_bswap32(n0 + (uint32_t)s);
                M0[s] = SGM_SET4(wk->tail[0], wk->tail[1], wk->tail[2], nbe);
                T[s] = SGM_SET4(SGM_K[2] + wk->tail[2], SGM_K[3] + nbe, 0, 0);
                S0[s] = ST2_0;
                S1[s] = ST2_1;
            }
            /* rounds 2,3: one rnds2; afterwards swap the roles so S0 = ABEF again */
            _Pragma("GCC unroll 8") FOR_S {
                __m128i n_ = _mm_sha256rnds2_epu32(S1[s], S0[s], T[s]);
                S1[s] = S0[s];
                S0[s] = n_;
            }
            QUAD_CONST(B1_MK1);
            QUAD_CONST(B1_MK2);
            QUAD_CONST(B1_MK3);
            _Pragma("GCC unroll 8") FOR_S {
                M1[s] = B1_M1;
                M2[s] = B1_M2;
                M3[s] = B1_M3;
            }
            {
                __m128i kq_;
                SQUADS_4_TO_14();
                kq_ = SGM_KV(15); SQUAD(15, M3, M0, M1, M2);
            }
            /* add the midstate, turn (ABEF, CDGH) into message words (A,B,C,D), (E,F,G,H) */
            _Pragma("GCC unroll 8") FOR_S {
                __m128i abef = _mm_add_epi32(S0[s], MS0);
                __m128i cdgh = _mm_add_epi32(S1[s], MS1);
                M0[s] = _mm_shuffle_epi32(_mm_unpackhi_epi64(cdgh, abef), 0x1B);
                M1[s] = _mm_shuffle_epi32(_mm_unpacklo_epi64(cdgh, abef), 0x1B);
                S0[s] = IV0;
                S1[s] = IV1;
            }

            /* ------------- second hash ------------- */
            {
                __m128i mk_[NS];
                _Pragma("GCC unroll 8") FOR_S mk_[s] = _mm_add_epi32(M0[s], SGM_KV(0));
                QUAD_MK(mk_);
                _Pragma("GCC unroll 8") FOR_S mk_[s] = _mm_add_epi32(M1[s], SGM_KV(1));
                QUAD_MK(mk_);
            }
            QUAD_CONST(B2_MK2);
            QUAD_CONST(B2_MK3);
            _Pragma("GCC unroll 8") FOR_S {
                M2[s] = B2_M2;
                M3[s] = B2_M3;
            }
            {
                __m128i kq_;
                SQUADS_4_TO_14();
                /* rounds 60,61 only: the new F lane is e after round 60 */
                SCHED(M3, M0, M1, M2);
                _Pragma("GCC unroll 8") FOR_S {
                    __m128i mk = _mm_add_epi32(M3[s], SGM_KV(15));
                    S1[s] = _mm_sha256rnds2_epu32(S1[s], S0[s], mk);
                    e60[s] = (uint32_t)_mm_cvtsi128_si32(S1[s]);
                }
            }
            _Pragma("GCC unroll 8") FOR_S {
                if (sgm_bswap32(e60[s] + h7_add) <= t7 && i + (uint64_t)s < count) {
                    const uint32_t nonce = n0 + (uint32_t)s;
                    if (sgm_check_nonce(wk, nonce)) {
                        if (found == cap) { i += (uint64_t)s; res->status = SGM_SCAN_FULL; goto out; }
                        out[found++] = nonce;
                    }
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
