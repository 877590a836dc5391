/* scan_simd_body.h - the lane-parallel scan kernel, included once per ISA by scan_avx2.h
 * and scan_avx512.h (no include guard on purpose).  Expects the V_* primitives, V_T,
 * V_NLANES, V_TARGET, V_ZERO(), V_LANES_VALUE, V_AUX_VALUE, V_BSWAP(x) (may read
 * tab[V_AUX]), V_LE_MASK(x, t) (bit s set when lane s of x <= lane s of t, unsigned) and
 * the names V_FILL_FN, V_BATCH_FN, V_SCAN_FN.
 */

V_TARGET
static void V_FILL_FN(const sgm_work *wk, V_T *tab) {
    const uint32_t *s3 = wk->st3;
    int k;
    for (k = 0; k < 64; k++) {
        tab[V_K + k] = V_C(SGM_K[k]);
        tab[V_WK1 + k] = tab[V_WK2 + k] = V_ZERO();
    }
    /* block 2: W4 = 0x80000000, W5..W14 = 0, W15 = 640, W16/W17 from sgm_work */
    for (k = 4; k < 18; k++) tab[V_WK1 + k] = V_C(SGM_K[k]);
    tab[V_WK1 + 4] = V_C(SGM_K[4] + 0x80000000u);
    tab[V_WK1 + 15] = V_C(SGM_K[15] + 640u);
    tab[V_WK1 + 16] = V_C(SGM_K[16] + wk->w16);
    tab[V_WK1 + 17] = V_C(SGM_K[17] + wk->w17);
    /* second hash: W8 = 0x80000000, W9..W14 = 0, W15 = 256 */
    for (k = 8; k < 16; k++) tab[V_WK2 + k] = V_C(SGM_K[k]);
    tab[V_WK2 + 8] = V_C(SGM_K[8] + 0x80000000u);
    tab[V_WK2 + 15] = V_C(SGM_K[15] + 256u);
    for (k = 0; k < 8; k++) {
        tab[V_ST3 + k] = V_C(s3[k]);
        tab[V_IV + k] = V_C(SGM_H0[k]);
        tab[V_MID + k] = V_C(wk->midstate[k]);
    }
    /* round 3: e = d + t1_3 + W3, a = t1_3 + S0(a) + Maj(a,b,c) + W3 */
    tab[V_E4C] = V_C(s3[3] + wk->t1_3);
    tab[V_A4C] = V_C(wk->t1_3 + SGM_S0(s3[0]) + SGM_MAJ(s3[0], s3[1], s3[2]));
    tab[V_W18P] = V_C(wk->w18_part);
    tab[V_W19P] = V_C(wk->w19_part);
    tab[V_W16] = V_C(wk->w16);
    tab[V_W17] = V_C(wk->w17);
    tab[V_W30C] = V_C(SGM_s0(640u));                /* s0(W15) */
    tab[V_W31C] = V_C(SGM_s0(wk->w16) + 640u);      /* s0(W16) + W15 */
    tab[V_W32C] = V_C(SGM_s0(wk->w17) + wk->w16);   /* s0(W17) + W16 */
    tab[V_C640] = V_C(640u);
    tab[V_C80] = V_C(0x80000000u);
    tab[V_C256] = V_C(256u);
    {   /* second hash, round 0 from the IV: e1 = W0 + e1c, a1 = W0 + a1c */
        const uint32_t t1c = SGM_H0[7] + SGM_S1(SGM_H0[4]) +
                             SGM_CH(SGM_H0[4], SGM_H0[5], SGM_H0[6]) + SGM_K[0];
        tab[V_E1C] = V_C(SGM_H0[3] + t1c);
        tab[V_A1C] = V_C(t1c + SGM_S0(SGM_H0[0]) + SGM_MAJ(SGM_H0[0], SGM_H0[1], SGM_H0[2]));
    }
    tab[V_V17C] = V_C(SGM_s1(256u));           /* s1(W15) */
    tab[V_V23C] = V_C(SGM_s0(0x80000000u));    /* s0(W8) */
    tab[V_V30C] = V_C(SGM_s0(256u));           /* s0(W15) */
    tab[V_T7] = V_C(wk->target[7]);
    tab[V_LANES] = V_LANES_VALUE;   /* 0, 1, 2, ... : the nonce offset of each lane */
    tab[V_AUX] = V_AUX_VALUE;       /* whatever V_BSWAP needs (shuffle or select mask) */
}

/* bit s of the result: lane s (nonce n0 + s) passes the H7 filter */
V_TARGET
static inline uint32_t V_BATCH_FN(V_T *tab, uint32_t n0) {
    V_T a, b, c, d, e, f, g, h, w3, w[64];
    int k;

    /* ================= first hash, block 2 ================= */
    w3 = V_BSWAP(V_ADD(V_C(n0), tab[V_LANES]));
    /* schedule W18..W63, zero terms dropped from W18..W33 */
    V_PUT(V_WK1, 18, V_ADD(tab[V_W18P], V_s0(w3)));
    V_PUT(V_WK1, 19, V_ADD(tab[V_W19P], w3));
    V_PUT(V_WK1, 20, V_ADD(V_s1(w[18]), tab[V_C80]));   /* + W4 */
    V_PUT(V_WK1, 21, V_s1(w[19]));
    V_PUT(V_WK1, 22, V_ADD(V_s1(w[20]), tab[V_C640]));  /* + W15 */
    V_PUT(V_WK1, 23, V_ADD(V_s1(w[21]), tab[V_W16]));
    V_PUT(V_WK1, 24, V_ADD(V_s1(w[22]), tab[V_W17]));
    V_PUT(V_WK1, 25, V_ADD(V_s1(w[23]), w[18]));
    V_PUT(V_WK1, 26, V_ADD(V_s1(w[24]), w[19]));
    V_PUT(V_WK1, 27, V_ADD(V_s1(w[25]), w[20]));
    V_PUT(V_WK1, 28, V_ADD(V_s1(w[26]), w[21]));
    V_PUT(V_WK1, 29, V_ADD(V_s1(w[27]), w[22]));
    V_PUT(V_WK1, 30, V_ADD(V_ADD(V_s1(w[28]), w[23]), tab[V_W30C]));
    V_PUT(V_WK1, 31, V_ADD(V_ADD(V_s1(w[29]), w[24]), tab[V_W31C]));
    V_PUT(V_WK1, 32, V_ADD(V_ADD(V_s1(w[30]), w[25]), tab[V_W32C]));
    V_PUT(V_WK1, 33, V_ADD(V_ADD(V_s1(w[31]), w[26]), V_ADD(V_s0(w[18]), tab[V_W17])));
    _Pragma("GCC unroll 1")
    for (k = 34; k < 64; k++) V_SCHED(V_WK1, k);

    /* round 3; the state before round 4 in round-4 naming (word a in `e`) */
    e = V_ADD(w3, tab[V_A4C]);
    f = tab[V_ST3 + 0]; g = tab[V_ST3 + 1]; h = tab[V_ST3 + 2];
    a = V_ADD(w3, tab[V_E4C]);
    b = tab[V_ST3 + 4]; c = tab[V_ST3 + 5]; d = tab[V_ST3 + 6];
    V_R4(tab[V_WK1 + 4]);
    V_R5(tab[V_WK1 + 5]);
    V_R6(tab[V_WK1 + 6]);
    V_R7(tab[V_WK1 + 7]);
    _Pragma("GCC unroll 8")
    for (k = 8; k < 64; k += 8) V_BLOCK8(V_WK1, k);

    /* ================= second hash ================= */
    /* after round 63 the names are back in place: W0..W7 = state + midstate */
    V_PUT(V_WK2, 0, V_ADD(a, tab[V_MID + 0]));
    V_PUT(V_WK2, 1, V_ADD(b, tab[V_MID + 1]));
    V_PUT(V_WK2, 2, V_ADD(c, tab[V_MID + 2]));
    V_PUT(V_WK2, 3, V_ADD(d, tab[V_MID + 3]));
    V_PUT(V_WK2, 4, V_ADD(e, tab[V_MID + 4]));
    V_PUT(V_WK2, 5, V_ADD(f, tab[V_MID + 5]));
    V_PUT(V_WK2, 6, V_ADD(g, tab[V_MID + 6]));
    V_PUT(V_WK2, 7, V_ADD(h, tab[V_MID + 7]));
    /* W8 = 0x80000000, W9..W14 = 0, W15 = 256: zero terms dropped from W16..W31 */
    V_PUT(V_WK2, 16, V_ADD(V_s0(w[1]), w[0]));
    V_PUT(V_WK2, 17, V_ADD(V_ADD(V_s0(w[2]), w[1]), tab[V_V17C]));
    V_PUT(V_WK2, 18, V_ADD(V_ADD(V_s1(w[16]), V_s0(w[3])), w[2]));
    V_PUT(V_WK2, 19, V_ADD(V_ADD(V_s1(w[17]), V_s0(w[4])), w[3]));
    V_PUT(V_WK2, 20, V_ADD(V_ADD(V_s1(w[18]), V_s0(w[5])), w[4]));
    V_PUT(V_WK2, 21, V_ADD(V_ADD(V_s1(w[19]), V_s0(w[6])), w[5]));
    V_PUT(V_WK2, 22, V_ADD(V_ADD(V_s1(w[20]), V_s0(w[7])), V_ADD(w[6], tab[V_C256])));
    V_PUT(V_WK2, 23, V_ADD(V_ADD(V_s1(w[21]), w[16]), V_ADD(w[7], tab[V_V23C])));
    V_PUT(V_WK2, 24, V_ADD(V_ADD(V_s1(w[22]), w[17]), tab[V_C80]));
    V_PUT(V_WK2, 25, V_ADD(V_s1(w[23]), w[18]));
    V_PUT(V_WK2, 26, V_ADD(V_s1(w[24]), w[19]));
    V_PUT(V_WK2, 27, V_ADD(V_s1(w[25]), w[20]));
    V_PUT(V_WK2, 28, V_ADD(V_s1(w[26]), w[21]));
    V_PUT(V_WK2, 29, V_ADD(V_s1(w[27]), w[22]));
    V_PUT(V_WK2, 30, V_ADD(V_ADD(V_s1(w[28]), w[23]), tab[V_V30C]));
    V_PUT(V_WK2, 31, V_ADD(V_ADD(V_s1(w[29]), w[24]), V_ADD(V_s0(w[16]), tab[V_C256])));
    _Pragma("GCC unroll 1")
    for (k = 32; k < 61; k++) V_SCHED(V_WK2, k);

    /* round 0 from the IV; the state before round 1 in round-1 naming (word a in `h`) */
    h = V_ADD(w[0], tab[V_A1C]);
    a = tab[V_IV + 0]; b = tab[V_IV + 1]; c = tab[V_IV + 2];
    d = V_ADD(w[0], tab[V_E1C]);
    e = tab[V_IV + 4]; f = tab[V_IV + 5]; g = tab[V_IV + 6];
    V_R1(tab[V_WK2 + 1]);
    V_R2(tab[V_WK2 + 2]);
    V_R3(tab[V_WK2 + 3]);
    V_R4(tab[V_WK2 + 4]);
    V_R5(tab[V_WK2 + 5]);
    V_R6(tab[V_WK2 + 6]);
    V_R7(tab[V_WK2 + 7]);
    _Pragma("GCC unroll 8")
    for (k = 8; k < 56; k += 8) V_BLOCK8(V_WK2, k);
    /* rounds 56..60; the a words of rounds 57..60 are never used (the compiler drops them) */
    V_R0(tab[V_WK2 + 56]);
    V_R1(tab[V_WK2 + 57]);
    V_R2(tab[V_WK2 + 58]);
    V_R3(tab[V_WK2 + 59]);
    V_R4(tab[V_WK2 + 60]);   /* round 60: its new e lands in `h` */
    (void)a; (void)b;

    /* ---- filter: bswap32(e60 + H0[7]) <= target[7], unsigned ---- */
    return V_LE_MASK(V_BSWAP(V_ADD(h, tab[V_IV + 7])), tab[V_T7]);
}

V_TARGET
static void V_SCAN_FN(const sgm_work *wk, uint32_t start, uint64_t count, uint32_t *out,
                          uint32_t cap, const volatile int *abort, sgm_scan_result *res) {
    /* nonce-independent vectors, broadcast once per call; the batch code reads them (and
     * the per-batch K + W words) as memory operands.  The empty asm hides the contents from
     * constant propagation, which would otherwise rebuild each constant (mov + vmovd +
     * broadcast) at every use. */
    V_T table[V_NSLOTS];
    V_T *tab = table;
    uint64_t i = 0;
    uint32_t found = 0;

    V_FILL_FN(wk, tab);
    __asm__("" : "+r"(tab) : : "memory");

    res->status = SGM_SCAN_DONE;
    while (i < count) {
        const uint64_t stop = count - i > SGM_ABORT_STRIDE ? i + SGM_ABORT_STRIDE : count;
        if (sgm_flag_load(abort)) { res->status = SGM_SCAN_ABORTED; break; }
        for (; i < stop; i += V_NLANES) {
            const uint32_t n0 = start + (uint32_t)i;
            uint32_t mask = V_BATCH_FN(tab, n0);
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
