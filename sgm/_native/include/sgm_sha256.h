/* sgm_sha256.h - shared SHA-256 definitions for every sgm scan kernel.
 *
 * The scan contract (one function table entry per implementation, the "gate"):
 *
 *   void scan(const sgm_work *w, uint32_t start, uint64_t count,
 *             uint32_t *out, uint32_t cap, const volatile int *abort,
 *             sgm_scan_result *res);
 *
 * scans nonces start .. start+count-1 (the caller guarantees start+count <= 2^32) of the
 * 80-byte header whose first 64 bytes are summarised by w->midstate and whose bytes 64..75
 * are w->tail[0..2] (as big-endian SHA words).  A nonce is a hit when sha256d(header),
 * read as a little-endian 256-bit number, is <= the target.  Hits are written to out[] in
 * ascending order.  The kernel stops early when *abort becomes non-zero (checked at least
 * every SGM_ABORT_STRIDE nonces) or when out[] is full and another hit is found; res->done
 * says how many nonces from start were completely scanned (every hit below start+done is
 * in out[]), so the caller can resume without losing or repeating work.
 */
#ifndef SGM_SHA256_H
#define SGM_SHA256_H

#include <stdint.h>
#include <string.h>

#if defined(_MSC_VER)
#define SGM_INLINE static __forceinline
#else
#define SGM_INLINE static inline __attribute__((always_inline))
#endif

#define SGM_ABORT_STRIDE 2048u  /* ~1 ms even for the scalar kernel */

enum { SGM_SCAN_DONE = 0, SGM_SCAN_ABORTED = 1, SGM_SCAN_FULL = 2 };

typedef struct {
    uint64_t done;      /* nonces scanned from start (all hits below start+done reported) */
    uint32_t n_found;   /* entries written to out[] */
    int status;         /* SGM_SCAN_DONE / _ABORTED / _FULL */
} sgm_scan_result;

typedef struct {
    uint32_t midstate[8];  /* SHA-256 state after header[0:64] */
    uint32_t tail[3];      /* header[64:76] as big-endian words: merkle tail, ntime, nbits */
    uint32_t target[8];    /* target[i] = bits 32i..32i+31 of the 256-bit target (target[7] most significant) */

    /* ---- nonce-independent precomputation (sgm_work_prepare) ---- */
    uint32_t st3[8];       /* block-2 state after rounds 0..2 (a..h) */
    uint32_t t1_3;         /* round 3: h + S1(e) + Ch(e,f,g) + K[3], without W[3] */
    uint32_t w16, w17;     /* block-2 schedule words independent of the nonce */
    uint32_t w18_part;     /* W18 - s0(W3) */
    uint32_t w19_part;     /* W19 - W3 */
    uint32_t st2[8];       /* block-2 state after rounds 0..1 (for two-round SHA-NI steps) */
} sgm_work;

typedef void (*sgm_scan_fn)(const sgm_work *w, uint32_t start, uint64_t count,
                            uint32_t *out, uint32_t cap, const volatile int *abort,
                            sgm_scan_result *res);

static const uint32_t SGM_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static const uint32_t SGM_H0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#define SGM_ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define SGM_S0(x) (SGM_ROTR(x, 2) ^ SGM_ROTR(x, 13) ^ SGM_ROTR(x, 22))
#define SGM_S1(x) (SGM_ROTR(x, 6) ^ SGM_ROTR(x, 11) ^ SGM_ROTR(x, 25))
#define SGM_s0(x) (SGM_ROTR(x, 7) ^ SGM_ROTR(x, 18) ^ ((x) >> 3))
#define SGM_s1(x) (SGM_ROTR(x, 17) ^ SGM_ROTR(x, 19) ^ ((x) >> 10))
#define SGM_CH(e, f, g) ((((f) ^ (g)) & (e)) ^ (g))
#define SGM_MAJ(a, b, c) (((a) & (b)) | ((c) & ((a) | (b))))

SGM_INLINE uint32_t sgm_bswap32(uint32_t x) { return __builtin_bswap32(x); }

/* Flags one thread raises and another polls (abort, enabled, stop): relaxed atomic loads
 * and stores -- no ordering is needed beyond the flag itself, but the access must not tear
 * or be cached by the compiler. */
SGM_INLINE int sgm_flag_load(const volatile int *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
SGM_INLINE void sgm_flag_store(volatile int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

SGM_INLINE uint32_t sgm_load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* One full SHA-256 compression of the 16 big-endian words w[] into st[]. */
static void sgm_compress(uint32_t st[8], const uint32_t win[16]) {
    uint32_t w[64];
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
    int i;
    for (i = 0; i < 16; i++) w[i] = win[i];
    for (i = 16; i < 64; i++) w[i] = SGM_s1(w[i - 2]) + w[i - 7] + SGM_s0(w[i - 15]) + w[i - 16];
    for (i = 0; i < 64; i++) {
        uint32_t t1 = h + SGM_S1(e) + SGM_CH(e, f, g) + SGM_K[i] + w[i];
        uint32_t t2 = SGM_S0(a) + SGM_MAJ(a, b, c);
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    st[0] += a; st[1] += b; st[2] += c; st[3] += d;
    st[4] += e; st[5] += f; st[6] += g; st[7] += h;
}

/* SHA-256 state after one 64-byte block (no padding): the header midstate. */
static void sgm_midstate(const uint8_t block[64], uint32_t out[8]) {
    uint32_t w[16];
    int i;
    for (i = 0; i < 16; i++) w[i] = sgm_load_be32(block + 4 * i);
    memcpy(out, SGM_H0, sizeof(SGM_H0));
    sgm_compress(out, w);
}

/* Full sha256d of the header given by w and nonce; out[] = final state words H0..H7. */
static void sgm_sha256d_state(const sgm_work *wk, uint32_t nonce, uint32_t out[8]) {
    uint32_t w[16], st[8];
    int i;
    w[0] = wk->tail[0]; w[1] = wk->tail[1]; w[2] = wk->tail[2];
    w[3] = sgm_bswap32(nonce);
    w[4] = 0x80000000u;
    for (i = 5; i < 15; i++) w[i] = 0;
    w[15] = 640;
    memcpy(st, wk->midstate, sizeof(st));
    sgm_compress(st, w);
    for (i = 0; i < 8; i++) w[i] = st[i];
    w[8] = 0x80000000u;
    for (i = 9; i < 15; i++) w[i] = 0;
    w[15] = 256;
    memcpy(out, SGM_H0, sizeof(SGM_H0));
    sgm_compress(out, w);
}

/* Is the hash with final state h[] <= target?  The hash bytes are h[0..7] big-endian;
 * read as a little-endian number its word i is bswap(h[i]). */
SGM_INLINE int sgm_meets_target(const uint32_t h[8], const uint32_t target[8]) {
    int i;
    for (i = 7; i >= 0; i--) {
        uint32_t v = sgm_bswap32(h[i]);
        if (v < target[i]) return 1;
        if (v > target[i]) return 0;
    }
    return 1; /* equal */
}

/* Full re-check of one nonce that passed a kernel's last-word filter. */
SGM_INLINE int sgm_check_nonce(const sgm_work *wk, uint32_t nonce) {
    uint32_t h[8];
    sgm_sha256d_state(wk, nonce, h);
    return sgm_meets_target(h, wk->target);
}

/* Fill the nonce-independent precomputation of wk (midstate, tail, target already set). */
static void sgm_work_prepare(sgm_work *wk) {
    uint32_t a = wk->midstate[0], b = wk->midstate[1], c = wk->midstate[2], d = wk->midstate[3];
    uint32_t e = wk->midstate[4], f = wk->midstate[5], g = wk->midstate[6], h = wk->midstate[7];
    int i;
    for (i = 0; i < 3; i++) {
        uint32_t t1 = h + SGM_S1(e) + SGM_CH(e, f, g) + SGM_K[i] + wk->tail[i];
        uint32_t t2 = SGM_S0(a) + SGM_MAJ(a, b, c);
        h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        if (i == 1) {
            wk->st2[0] = a; wk->st2[1] = b; wk->st2[2] = c; wk->st2[3] = d;
            wk->st2[4] = e; wk->st2[5] = f; wk->st2[6] = g; wk->st2[7] = h;
        }
    }
    wk->st3[0] = a; wk->st3[1] = b; wk->st3[2] = c; wk->st3[3] = d;
    wk->st3[4] = e; wk->st3[5] = f; wk->st3[6] = g; wk->st3[7] = h;
    wk->t1_3 = h + SGM_S1(e) + SGM_CH(e, f, g) + SGM_K[3];
    /* block-2 schedule: W4 = 0x80000000, W5..W14 = 0, W15 = 640 */
    wk->w16 = SGM_s0(wk->tail[1]) + wk->tail[0];                  /* s1(W14)=0, W9=0 */
    wk->w17 = SGM_s1(640u) + SGM_s0(wk->tail[2]) + wk->tail[1];   /* W10 = 0 */
    wk->w18_part = SGM_s1(wk->w16) + wk->tail[2];                 /* + s0(W3) */
    wk->w19_part = SGM_s1(wk->w17) + SGM_s0(0x80000000u);         /* + W3 */
}

/* The OpenCL kernel's 26 nonce-independent arguments (kernels/sha256d.cl, in its order),
 * derived from a prepared work: the midstate, the state after rounds 0..2 of block 2 with
 * round 3's nonce-free part folded into A4/E4, the h + K + W of rounds 4..6, and the
 * schedule words and partial sums that do not depend on the nonce. */
#define SGM_OPENCL_ARGS 26
static void sgm_opencl_args(const sgm_work *wk, uint32_t *out) {
    const uint32_t *s = wk->st3;     /* a, b, c, d, e, f, g, h after round 2 */
    int i;
    for (i = 0; i < 8; i++) out[i] = wk->midstate[i];
    out[8] = s[0]; out[9] = s[1]; out[10] = s[2]; out[11] = s[4]; out[12] = s[5];
    out[13] = wk->t1_3 + SGM_S0(s[0]) + SGM_MAJ(s[0], s[1], s[2]);   /* A4 without W3 */
    out[14] = s[3] + wk->t1_3;                                        /* E4 without W3 */
    out[15] = s[6] + SGM_K[4] + 0x80000000u;   /* round 4: its h is g after round 2 */
    out[16] = s[5] + SGM_K[5];                 /* round 5: f */
    out[17] = s[4] + SGM_K[6];                 /* round 6: e */
    out[18] = wk->w16; out[19] = wk->w17;
    out[20] = SGM_K[16] + wk->w16; out[21] = SGM_K[17] + wk->w17;
    out[22] = wk->w18_part; out[23] = wk->w19_part;
    out[24] = SGM_s0(wk->w16) + 640u;
    out[25] = SGM_s0(wk->w17) + wk->w16;
}

#endif /* SGM_SHA256_H */
