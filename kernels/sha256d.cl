/* sha256d.cl - sgm's OpenCL SHA-256d nonce scanner.
 *
 * One launch scans nonces base .. base+count-1 of one 80-byte block header.  Each work-item
 * hashes VECTOR_WIDTH consecutive nonces in the lanes of a uintV vector (nonce
 * base + gid*VECTOR_WIDTH + lane).  Every candidate is appended to `out` through an atomic
 * counter: out[0] counts every candidate, out[1 .. cap] hold the first `cap` of them (in no
 * particular order).  A counter above `cap` is an overflow: the host sees it and rescans
 * the launch in smaller pieces, so no candidate is ever silently lost.
 *
 * What the host computes once per work unit (sgm/devices/opencl/precomputation.py, `precompute`) and
 * passes as kernel arguments -- nothing of it depends on the nonce:
 *   ms0..ms7      midstate: SHA-256 state after header[0:64] (feed-forward of block 2)
 *   a3 b3 c3 e3 f3  block-2 state after rounds 0..2 (W0..W2 = header[64:76])
 *   A4, E4        round 3 without its W3 (= nonce) term: a = A4 + n, e = E4 + n
 *   r4 r5 r6      h + K[i] + W[i] of rounds 4..6, whose h is still nonce-independent
 *   w16 w17       the schedule words W16, W17 (no nonce in them)
 *   k16 k17       K[16] + W16, K[17] + W17
 *   w18p w19p     W18 - s0(W3), W19 - W3
 *   p31 p32       s0(W16) + W15, s0(W17) + W16: the nonce-free halves of W31, W32
 *   one           the constant 1, the multiplier of NVIDIA's additions (see ADD below)
 * The padding of both blocks (W4 = 0x80000000, W15 = 640; W8 = 0x80000000, W15 = 256) and
 * the initial state of the second hash are literals here, so the compiler folds them.
 *
 * Early exit: the most significant 32 bits of the hash (read as the little-endian 256-bit
 * number compared with the target) are bswap(H7), and H7 = H0[7] + h after round 63 =
 * H0[7] + e after round 60.  The second hash therefore runs rounds 0..60 only, and a
 * nonce is a candidate when bswap(e60 + H0[7]) <= t7, the target's most significant word.
 * That test is exact as a necessary condition for any target (also easier than difficulty
 * 1, where t7 > 0): the host re-checks every candidate against the full target.
 *
 * Build options (chosen per device by the host):
 *   -D VECTOR_WIDTH=1|2|4|8   nonces per work-item
 *   -D WORKSIZE=N             the local work size every launch uses
 *   -D USE_BUILTINS=0|1       rotate()/bitselect() or plain shifts and logic
 *   -D SGM_NO_ASM             no inline PTX on NVIDIA (the portable code)
 */

#ifndef VECTOR_WIDTH
#define VECTOR_WIDTH 1
#endif
#ifndef WORKSIZE
#define WORKSIZE 64
#endif

#if VECTOR_WIDTH == 1
typedef uint uintV;
#define LANES ((uint)0)
#define ANY(x) (x)
#elif VECTOR_WIDTH == 2
typedef uint2 uintV;
#define LANES ((uint2)(0, 1))
#define ANY(x) any(x)
#define VSTORE vstore2
#elif VECTOR_WIDTH == 4
typedef uint4 uintV;
#define LANES ((uint4)(0, 1, 2, 3))
#define ANY(x) any(x)
#define VSTORE vstore4
#elif VECTOR_WIDTH == 8
typedef uint8 uintV;
#define LANES ((uint8)(0, 1, 2, 3, 4, 5, 6, 7))
#define ANY(x) any(x)
#define VSTORE vstore8
#else
#error "VECTOR_WIDTH must be 1, 2, 4 or 8"
#endif

#ifndef USE_BUILTINS
#define USE_BUILTINS 1
#endif

#if USE_BUILTINS
/* rotate() turns left: a right rotation by n is a left one by 32 - n */
#define ROTL(x, n) rotate((x), (uintV)(n))
#define ROTR(x, n) rotate((x), (uintV)(32u - (n)))
/* Ch(e,f,g): f where e is 1, else g.  Maj(a,b,c): b where a and c differ, else a (= c). */
#define CH(e, f, g) bitselect((g), (f), (e))
#define MAJ(a, b, c) bitselect((a), (b), (a) ^ (c))
#define SELECT(a, b, m) bitselect((a), (b), (m))
#else
/* the same as plain shifts and logic, for compilers that do not inline the built-ins
 * (PoCL's CPU device calls them as functions) */
#define ROTL(x, n) (((x) << (uintV)(n)) | ((x) >> (uintV)(32u - (n))))
#define ROTR(x, n) (((x) >> (uintV)(n)) | ((x) << (uintV)(32u - (n))))
#define CH(e, f, g) ((((f) ^ (g)) & (e)) ^ (g))
#define MAJ(a, b, c) (((a) & (b)) | ((c) & ((a) | (b))))
#define SELECT(a, b, m) (((a) & ~(m)) | ((b) & (m)))
#endif
#define BSIG0(x) (ROTR(x, 2) ^ ROTR(x, 13) ^ ROTR(x, 22))
#define BSIG1(x) (ROTR(x, 6) ^ ROTR(x, 11) ^ ROTR(x, 25))
#define SSIG0(x) (ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> (uintV)3u))
#define SSIG1(x) (ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> (uintV)10u))

/* ADD(x, y) is every addition of the hash that has a variable in it; additions of
 * constants only are written with `+`, so that the compiler folds them.
 *
 * On NVIDIA (cl_nv_pragma_unroll is defined by NVIDIA's OpenCL compiler) an NVIDIA GPU runs
 * rotations, shifts, logic (LOP3) and 3-input additions (IADD3) on its integer ALU pipe, and
 * multiply-adds (IMAD) on the FMA pipe, which issues beside it.  The rotations and logic of
 * SHA-256 alone fill the ALU pipe, so every addition goes to the FMA pipe as an IMAD
 * x * one + y.  `one` is a kernel argument (always 1): with a literal 1 the assembler
 * (ptxas) turns the IMAD back into an IADD3.  Non-volatile inline PTX, so the compiler still
 * drops what is never used (the tail of the second hash).  One nonce per work-item only
 * (VECTOR_WIDTH 1, what a GPU gets); -D SGM_NO_ASM builds the portable code instead.
 * Elsewhere (PoCL, other GPUs) these are plain additions. */
#if defined(cl_nv_pragma_unroll) && VECTOR_WIDTH == 1 && !defined(SGM_NO_ASM)
#define SGM_NV_ASM 1
uint sgm_add(const uint x, const uint y, const uint one)
{
    uint r;
    __asm__("mad.lo.u32 %0, %1, %2, %3;" : "=r"(r) : "r"(x), "r"(one), "r"(y));
    return r;
}
/* the byte swap in one PRMT (clang does not recognise it in the rotate/select form) */
uint sgm_bswap(const uint x)
{
    uint r;
    __asm__("prmt.b32 %0, %1, 0, 0x0123;" : "=r"(r) : "r"(x));
    return r;
}
#define ADD(x, y) sgm_add((x), (y), one)
#define BSWAP(x) sgm_bswap(x)
#else
#define SGM_NV_ASM 0
#ifdef SGM_FMA_MODEL
/* the NVIDIA build's arithmetic in portable C, for the tests on PoCL: a wrong `one` (the
 * host's argument list out of step with the kernel's) gives wrong hashes here too */
#define ADD(x, y) ((x) * (uintV)one + (y))
#else
#define ADD(x, y) ((x) + (y))
#endif
/* byte swap of each lane: bytes 1 and 3 from rotl(x, 8), bytes 0 and 2 from rotl(x, 24) */
#define BSWAP(x) SELECT(ROTL((x), 24u), ROTL((x), 8u), (uintV)0x00FF00FFu)
#endif

/* one round; hkw = h + K[i] + W[i] */
#define ROUND_HKW(hkw)                                                     \
    do {                                                                   \
        uintV t1_ = ADD(ADD((hkw), BSIG1(e)), CH(e, f, g));                \
        uintV t2_ = ADD(BSIG0(a), MAJ(a, b, c));                           \
        h = g; g = f; f = e; e = ADD(d, t1_); d = c; c = b; b = a;         \
        a = ADD(t1_, t2_);                                                 \
    } while (0)
/* a round whose K[i] + W[i] is the constant or argument kw */
#define ROUND_KW(kw) ROUND_HKW(ADD(h, (kw)))
/* a round whose W[i] is computed */
#define ROUND_W(i) ROUND_HKW(ADD(h, ADD(W[i], K[i])))
/* a schedule word with no constant term */
#define SCHED(i) \
    (W[i] = ADD(ADD(SSIG1(W[(i) - 2]), W[(i) - 7]), ADD(SSIG0(W[(i) - 15]), W[(i) - 16])))

/* the initial state of SHA-256 (and of the second hash) */
#define H0 0x6a09e667u
#define H1 0xbb67ae85u
#define H2 0x3c6ef372u
#define H3 0xa54ff53au
#define H4 0x510e527fu
#define H5 0x9b05688cu
#define H6 0x1f83d9abu
#define H7 0x5be0cd19u

__constant uint K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u,
    0xab1c5ed5u, 0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu,
    0x9bdc06a7u, 0xc19bf174u, 0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu,
    0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau, 0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
    0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u, 0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu,
    0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u, 0xa2bfe8a1u, 0xa81a664bu,
    0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u, 0x19a4c116u,
    0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u,
    0xc67178f2u};

__kernel __attribute__((reqd_work_group_size(WORKSIZE, 1, 1)))
void sgm_sha256d_scan(
    const uint base, const uint count, const uint t7,
    __global volatile uint *out, const uint cap,
    const uint ms0, const uint ms1, const uint ms2, const uint ms3,
    const uint ms4, const uint ms5, const uint ms6, const uint ms7,
    const uint a3, const uint b3, const uint c3, const uint e3, const uint f3,
    const uint A4, const uint E4, const uint r4, const uint r5, const uint r6,
    const uint w16, const uint w17, const uint k16, const uint k17,
    const uint w18p, const uint w19p, const uint p31, const uint p32,
    const uint one)
{
    const uint offset = (uint)get_global_id(0) * VECTOR_WIDTH;
#if VECTOR_WIDTH == 1
    const uint nonce = ADD(base, offset);
#else
    const uintV nonce = (uintV)(base + offset) + LANES;
#endif
    const uintV n = BSWAP(nonce);                 /* W3: the nonce as SHA reads it */
    uintV W[64];
    uintV a, b, c, d, e, f, g, h;

    /* ---- first hash, block 2 (header[64:80] + padding), from round 3 on ----
     * W4 = 0x80000000, W5..W14 = 0, W15 = 640: the terms they contribute are written out */
    W[16] = (uintV)w16;
    W[17] = (uintV)w17;
    W[18] = ADD((uintV)w18p, SSIG0(n));
    W[19] = ADD((uintV)w19p, n);
    W[20] = ADD(SSIG1(W[18]), (uintV)0x80000000u);
    W[21] = SSIG1(W[19]);
    W[22] = ADD(SSIG1(W[20]), (uintV)640u);
    W[23] = ADD(SSIG1(W[21]), W[16]);
    W[24] = ADD(SSIG1(W[22]), W[17]);
#pragma unroll
    for (int i = 25; i < 30; i++) W[i] = ADD(SSIG1(W[i - 2]), W[i - 7]);
    W[30] = ADD(ADD(SSIG1(W[28]), W[23]), SSIG0((uintV)640u));
    W[31] = ADD(ADD(SSIG1(W[29]), W[24]), (uintV)p31);
    W[32] = ADD(ADD(SSIG1(W[30]), W[25]), (uintV)p32);
#pragma unroll
    for (int i = 33; i < 64; i++) SCHED(i);

    /* state after round 3 */
    a = ADD(n, (uintV)A4); b = (uintV)a3; c = (uintV)b3; d = (uintV)c3;
    e = ADD(n, (uintV)E4); f = (uintV)e3; g = (uintV)f3; h = (uintV)0u;
    ROUND_HKW((uintV)r4);
    ROUND_HKW((uintV)r5);
    ROUND_HKW((uintV)r6);
#pragma unroll
    for (int i = 7; i < 15; i++) ROUND_KW((uintV)K[i]);
    ROUND_KW((uintV)(K[15] + 640u));
    ROUND_KW((uintV)k16);
    ROUND_KW((uintV)k17);
#pragma unroll
    for (int i = 18; i < 64; i++) ROUND_W(i);

    /* ---- second hash: the 32-byte first hash + padding, from the initial state ----
     * W8 = 0x80000000, W9..W14 = 0, W15 = 256: the terms they contribute are written out */
    W[0] = ADD(a, (uintV)ms0); W[1] = ADD(b, (uintV)ms1);
    W[2] = ADD(c, (uintV)ms2); W[3] = ADD(d, (uintV)ms3);
    W[4] = ADD(e, (uintV)ms4); W[5] = ADD(f, (uintV)ms5);
    W[6] = ADD(g, (uintV)ms6); W[7] = ADD(h, (uintV)ms7);
    W[16] = ADD(SSIG0(W[1]), W[0]);
    W[17] = ADD(ADD(SSIG0(W[2]), W[1]), SSIG1((uintV)256u));
#pragma unroll
    for (int i = 18; i < 22; i++) W[i] = ADD(ADD(SSIG1(W[i - 2]), SSIG0(W[i - 15])), W[i - 16]);
    W[22] = ADD(ADD(SSIG1(W[20]), SSIG0(W[7])), ADD(W[6], (uintV)256u));
    W[23] = ADD(ADD(SSIG1(W[21]), W[16]), ADD(W[7], SSIG0((uintV)0x80000000u)));
    W[24] = ADD(ADD(SSIG1(W[22]), W[17]), (uintV)0x80000000u);
#pragma unroll
    for (int i = 25; i < 30; i++) W[i] = ADD(SSIG1(W[i - 2]), W[i - 7]);
    W[30] = ADD(ADD(SSIG1(W[28]), W[23]), SSIG0((uintV)256u));
    W[31] = ADD(ADD(SSIG1(W[29]), W[24]), ADD(SSIG0(W[16]), (uintV)256u));
#pragma unroll
    for (int i = 32; i < 61; i++) SCHED(i);

    /* round 0 from the constant initial state: t1 = W0 + (its constant terms) */
    {
        const uintV t1c = (uintV)H7 + (uintV)K[0] + BSIG1((uintV)H4) +
                          CH((uintV)H4, (uintV)H5, (uintV)H6);
        const uintV t2c = BSIG0((uintV)H0) + MAJ((uintV)H0, (uintV)H1, (uintV)H2);
        a = ADD(W[0], t1c + t2c); b = (uintV)H0; c = (uintV)H1; d = (uintV)H2;
        e = ADD(W[0], (uintV)H3 + t1c); f = (uintV)H4; g = (uintV)H5; h = (uintV)H6;
    }
    /* rounds 1..3: h is still a constant of the initial state (H6, H5, H4) */
#pragma unroll
    for (int i = 1; i < 4; i++) ROUND_HKW(ADD(W[i], h + (uintV)K[i]));
#pragma unroll
    for (int i = 4; i < 8; i++) ROUND_W(i);
    ROUND_KW((uintV)(K[8] + 0x80000000u));
#pragma unroll
    for (int i = 9; i < 15; i++) ROUND_KW((uintV)K[i]);
    ROUND_KW((uintV)(K[15] + 256u));
    /* rounds 16..60: e after round 60 is all the exit test needs (the compiler drops the
     * a chain of rounds 57..60, whose results would only reach the hash's words 0..6) */
#pragma unroll
    for (int i = 16; i < 61; i++) ROUND_W(i);

    /* e after round 60 is h after round 63: H7 = H0[7] + e; its bytes reversed are the
     * most significant word of the hash as a little-endian number */
    const uintV top = BSWAP(ADD(e, (uintV)H7));
    if (ANY(top <= t7)) {
#if VECTOR_WIDTH == 1
        if (offset < count) {
            uint slot = atomic_inc(&out[0]);
            if (slot < cap) out[1 + slot] = base + offset;
        }
#else
        uint lanes[VECTOR_WIDTH];
        VSTORE(top, 0, lanes);
#pragma unroll
        for (uint l = 0; l < VECTOR_WIDTH; l++) {
            if (lanes[l] <= t7 && offset + l < count) {
                uint slot = atomic_inc(&out[0]);
                if (slot < cap) out[1 + slot] = base + offset + l;
            }
        }
#endif
    }
}
