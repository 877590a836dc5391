/* sha256d.cl - sgm's OpenCL SHA-256d nonce scanner.
 *
 * One launch scans nonces base .. base+count-1 of one 80-byte block header.  Each work-item
 * hashes VECTOR_WIDTH consecutive nonces in the lanes of a uintV vector (nonce
 * base + gid*VECTOR_WIDTH + lane).  Every candidate is appended to `out` through an atomic
 * counter: out[0] counts every candidate, out[1 .. cap] hold the first `cap` of them (in no
 * particular order).  A counter above `cap` is an overflow: the host sees it and rescans
 * the launch in smaller pieces, so no candidate is ever silently lost.
 *
 * What the host computes once per work unit (sgm/devices/opencl.py, `precompute`) and
 * passes as kernel arguments -- nothing of it depends on the nonce:
 *   ms0..ms7      midstate: SHA-256 state after header[0:64] (feed-forward of block 2)
 *   a3 b3 c3 e3 f3  block-2 state after rounds 0..2 (W0..W2 = header[64:76])
 *   A4, E4        round 3 without its W3 (= nonce) term: a = A4 + n, e = E4 + n
 *   r4 r5 r6      h + K[i] + W[i] of rounds 4..6, whose h is still nonce-independent
 *   w16 w17       the schedule words W16, W17 (no nonce in them)
 *   k16 k17       K[16] + W16, K[17] + W17
 *   w18p w19p     W18 - s0(W3), W19 - W3
 *   p31 p32       s0(W16) + W15, s0(W17) + W16: the nonce-free halves of W31, W32
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
/* byte swap of each lane: bytes 1 and 3 from rotl(x, 8), bytes 0 and 2 from rotl(x, 24) */
#define BSWAP(x) SELECT(ROTL((x), 24u), ROTL((x), 8u), (uintV)0x00FF00FFu)

/* one round; hkw = h + K[i] + W[i] */
#define ROUND_HKW(hkw)                                                     \
    do {                                                                   \
        uintV t1_ = (hkw) + BSIG1(e) + CH(e, f, g);                        \
        uintV t2_ = BSIG0(a) + MAJ(a, b, c);                               \
        h = g; g = f; f = e; e = d + t1_; d = c; c = b; b = a;             \
        a = t1_ + t2_;                                                     \
    } while (0)
#define ROUND(kw) ROUND_HKW(h + (kw))
#define SCHED(W, i) (SSIG1(W[(i) - 2]) + W[(i) - 7] + SSIG0(W[(i) - 15]) + W[(i) - 16])

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
    const uint w18p, const uint w19p, const uint p31, const uint p32)
{
    const uint offset = (uint)get_global_id(0) * VECTOR_WIDTH;
    const uintV nonce = (uintV)(base + offset) + LANES;
    const uintV n = BSWAP(nonce);                 /* W3: the nonce as SHA reads it */
    uintV W[64];
    uintV a, b, c, d, e, f, g, h;

    /* ---- first hash, block 2 (header[64:80] + padding), from round 3 on ---- */
    W[4] = (uintV)0x80000000u;
#pragma unroll
    for (int i = 5; i < 15; i++) W[i] = (uintV)0u;
    W[15] = (uintV)640u;
    W[16] = (uintV)w16;
    W[17] = (uintV)w17;
    W[18] = w18p + SSIG0(n);
    W[19] = w19p + n;
#pragma unroll
    for (int i = 20; i < 64; i++) {
        if (i == 31)
            W[i] = SSIG1(W[29]) + W[24] + p31;
        else if (i == 32)
            W[i] = SSIG1(W[30]) + W[25] + p32;
        else
            W[i] = SCHED(W, i);
    }

    /* state after round 3 */
    a = A4 + n; b = (uintV)a3; c = (uintV)b3; d = (uintV)c3;
    e = E4 + n; f = (uintV)e3; g = (uintV)f3; h = (uintV)0u;
    ROUND_HKW((uintV)r4);
    ROUND_HKW((uintV)r5);
    ROUND_HKW((uintV)r6);
#pragma unroll
    for (int i = 7; i < 16; i++) ROUND(K[i] + W[i]);
    ROUND((uintV)k16);
    ROUND((uintV)k17);
#pragma unroll
    for (int i = 18; i < 64; i++) ROUND(K[i] + W[i]);

    /* ---- second hash: the 32-byte first hash + padding, from the initial state ---- */
    W[0] = a + ms0; W[1] = b + ms1; W[2] = c + ms2; W[3] = d + ms3;
    W[4] = e + ms4; W[5] = f + ms5; W[6] = g + ms6; W[7] = h + ms7;
    W[8] = (uintV)0x80000000u;
#pragma unroll
    for (int i = 9; i < 15; i++) W[i] = (uintV)0u;
    W[15] = (uintV)256u;
#pragma unroll
    for (int i = 16; i < 61; i++) W[i] = SCHED(W, i);

    a = (uintV)0x6a09e667u; b = (uintV)0xbb67ae85u; c = (uintV)0x3c6ef372u;
    d = (uintV)0xa54ff53au; e = (uintV)0x510e527fu; f = (uintV)0x9b05688cu;
    g = (uintV)0x1f83d9abu; h = (uintV)0x5be0cd19u;
#pragma unroll
    for (int i = 0; i < 61; i++) ROUND(K[i] + W[i]);

    /* e after round 60 is h after round 63: H7 = H0[7] + e; its bytes reversed are the
     * most significant word of the hash as a little-endian number */
    const uintV top = BSWAP(e + 0x5be0cd19u);
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
