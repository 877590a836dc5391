/* simde_avx512_check.c - verify the AVX-512 (and AVX2) scan kernels on any CPU.
 *
 * The kernels are compiled on top of SIMDe (libsimde-dev: portable, header-only
 * implementations of the x86 intrinsics) instead of <immintrin.h>, with their target
 * attributes removed (SGM_USE_SIMDE), and compared against the scalar reference kernel
 * sgm_scan_scalar on random headers, targets and ranges:
 *   - targets: everything (every nonce hits), random top words of every magnitude, a top
 *     word equal to a real hash's top word with the lower words just above / at / just
 *     below that hash (the H7 filter passes, the scalar check decides), difficulty-1-like
 *     and zero targets (no hits);
 *   - ranges: tail counts that are not multiples of the lane count, empty ranges, ranges
 *     ending at nonce 2^32 - 1, ranges crossing the abort stride;
 *   - result caps small enough to stop the scan early (SGM_SCAN_FULL, res->done exact);
 *   - a raised abort flag (SGM_SCAN_ABORTED);
 *   - a known answer: the Bitcoin genesis block header and its difficulty-1 target.
 * Every field of the result (status, done, n_found, out[]) must match the scalar kernel.
 *
 * Build and run (tests/test_simd_kernels.py does this):
 *   gcc -O1 -Wno-psabi -I sgm/_native/include tests/native/simde_avx512_check.c -o check && ./check
 * Optional arguments: number of random cases per kernel (default 1500), RNG seed.
 * Prints one line per failure (at most 20), then "PASS ..." or "FAIL ..." per kernel and a
 * final "SUMMARY: PASS" / "SUMMARY: FAIL"; exit status 0 only when everything passed.
 */
#define SGM_USE_SIMDE 1
#ifndef SIMDE_ENABLE_NATIVE_ALIASES
#define SIMDE_ENABLE_NATIVE_ALIASES
#endif
#include <simde/x86/avx512.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sgm_sha256.h"
#include "scan_scalar.h"
#include "scan_avx512.h"
#include "scan_avx2.h"

/* ---------------------------------------------------------------- random numbers */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd64(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}
static uint32_t rnd32(void) { return (uint32_t)(rnd64() >> 32); }
static uint32_t rnd_below(uint32_t n) { return n ? (uint32_t)(rnd64() % n) : 0; }

/* ---------------------------------------------------------------- cases */
typedef struct {
    const char *name;
    sgm_scan_fn fn;
    int lanes;
    long cases, failures;
} kernel;

static int printed_failures = 0;

static void describe(const sgm_work *wk, uint32_t start, uint64_t count, uint32_t cap, int ab) {
    int k;
    printf("    start=%u count=%llu cap=%u abort=%d target=", start, (unsigned long long)count,
           cap, ab);
    for (k = 7; k >= 0; k--) printf("%08x", wk->target[k]);
    printf(" midstate[0]=%08x tail=%08x %08x %08x\n", wk->midstate[0], wk->tail[0], wk->tail[1],
           wk->tail[2]);
}

/* run kernel and scalar on the same input; 1 if they agree in every field */
static int compare(kernel *kn, const char *what, const sgm_work *wk, uint32_t start,
                   uint64_t count, uint32_t cap, int raise_abort) {
    static uint32_t out_ref[70000], out_got[70000];
    sgm_scan_result ref, got;
    volatile int ab = raise_abort;
    int ok;
    memset(&ref, 0xA5, sizeof ref);
    memset(&got, 0x5A, sizeof got);
    sgm_scan_scalar(wk, start, count, out_ref, cap, &ab, &ref);
    kn->fn(wk, start, count, out_got, cap, &ab, &got);
    ok = ref.status == got.status && ref.done == got.done && ref.n_found == got.n_found &&
         memcmp(out_ref, out_got, ref.n_found * sizeof(uint32_t)) == 0;
    kn->cases++;
    if (!ok) {
        kn->failures++;
        if (printed_failures++ < 20) {
            uint32_t k;
            printf("MISMATCH %s (%s):\n", kn->name, what);
            describe(wk, start, count, cap, raise_abort);
            printf("    scalar: status=%d done=%llu n_found=%u hits:", ref.status,
                   (unsigned long long)ref.done, ref.n_found);
            for (k = 0; k < ref.n_found && k < 8; k++) printf(" %u", out_ref[k]);
            printf("\n    %s: status=%d done=%llu n_found=%u hits:", kn->name, got.status,
                   (unsigned long long)got.done, got.n_found);
            for (k = 0; k < got.n_found && k < 8; k++) printf(" %u", out_got[k]);
            printf("\n");
        }
    }
    return ok;
}

static void random_header(sgm_work *wk) {
    uint8_t block[64];
    int k;
    memset(wk, 0, sizeof *wk);
    for (k = 0; k < 64; k++) block[k] = (uint8_t)rnd32();
    sgm_midstate(block, wk->midstate);
    for (k = 0; k < 3; k++) wk->tail[k] = rnd32();
}

/* the 256-bit number sha256d(header with nonce) as target words (target[7] most significant) */
static void hash_value(const sgm_work *wk, uint32_t nonce, uint32_t v[8]) {
    uint32_t h[8];
    int k;
    sgm_sha256d_state(wk, nonce, h);
    for (k = 0; k < 8; k++) v[k] = sgm_bswap32(h[k]);
}

/* v - 1 or v + 1 on a 256-bit little-endian word array (wrapping) */
static void add_small(uint32_t v[8], int delta) {
    int k;
    for (k = 0; k < 8; k++) {
        uint32_t old = v[k];
        v[k] += (uint32_t)delta;
        if (delta > 0 ? v[k] > old : v[k] < old) break;   /* no carry / borrow */
    }
}

static void random_target(sgm_work *wk, uint32_t start, uint64_t count, int kind) {
    int k;
    switch (kind) {
    case 0: /* everything hits */
        for (k = 0; k < 8; k++) wk->target[k] = 0xFFFFFFFFu;
        break;
    case 1: /* random magnitude: top word random >> 0..31, lower words random */
        for (k = 0; k < 8; k++) wk->target[k] = rnd32();
        wk->target[7] >>= rnd_below(32);
        break;
    case 2: /* easy: hit rate between 1/2 and 1/64 */
        for (k = 0; k < 8; k++) wk->target[k] = rnd32();
        wk->target[7] = (wk->target[7] | 0x80000000u) >> rnd_below(6);
        break;
    case 3: /* pinned to a real hash of the range: at / one below / one above it */
    {
        uint32_t n = start + (uint32_t)(count ? rnd64() % count : 0);
        hash_value(wk, n, wk->target);
        add_small(wk->target, (int)rnd_below(3) - 1);
        break;
    }
    case 4: /* difficulty-1-like (top word 0): essentially no hits, filter almost never passes */
        for (k = 0; k < 8; k++) wk->target[k] = rnd32();
        wk->target[7] = 0;
        wk->target[6] >>= 16;
        break;
    default: /* zero */
        for (k = 0; k < 8; k++) wk->target[k] = 0;
        break;
    }
    sgm_work_prepare(wk);
}

static void run_random_case(kernel *kn, int idx) {
    sgm_work wk;
    uint32_t start, cap;
    uint64_t count;
    int kind = (int)rnd_below(6);
    const char *what = "random";

    random_header(&wk);
    switch (rnd_below(5)) {
    case 0: /* short range, arbitrary tail */
        count = rnd_below(3 * (uint32_t)kn->lanes + 2);
        start = rnd32();
        break;
    case 1: /* range ending at 2^32 - 1 */
        count = 1 + rnd_below(700);
        start = (uint32_t)(0x100000000ull - count);
        what = "range ending at 2^32-1";
        break;
    case 2: /* range starting at 0 */
        count = rnd_below(900);
        start = 0;
        break;
    default:
        count = rnd_below(900);
        start = rnd32();
        if ((uint64_t)start + count > 0x100000000ull) start = (uint32_t)(0x100000000ull - count);
        break;
    }
    if ((idx & 63) == 63) {   /* now and then a range crossing the abort stride */
        count = SGM_ABORT_STRIDE + 1 + rnd_below(3 * (uint32_t)kn->lanes);
        start = rnd32();
        if ((uint64_t)start + count > 0x100000000ull) start = (uint32_t)(0x100000000ull - count);
        if (kind == 0 || kind == 2) kind = 1;   /* keep the scalar re-checks affordable */
        what = "range crossing the abort stride";
    }
    random_target(&wk, start, count, kind);
    switch (rnd_below(4)) {
    case 0: cap = 1; break;
    case 1: cap = 1 + rnd_below(5); break;
    case 2: cap = 1 + rnd_below(64); break;
    default: cap = 65536; break;
    }
    compare(kn, what, &wk, start, count, cap, 0);
}

static void run_fixed_cases(kernel *kn) {
    /* Bitcoin genesis block: nonce 2083236893 meets the difficulty-1 target of nbits 0x1d00ffff */
    static const char *genesis_hex =
        "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a"
        "7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";
    const uint32_t genesis_nonce = 2083236893u;
    uint8_t hdr[80];
    sgm_work wk;
    sgm_scan_result res;
    uint32_t out[4];
    volatile int ab = 0;
    int k;

    for (k = 0; k < 80; k++) {
        unsigned int byte;
        sscanf(genesis_hex + 2 * k, "%2x", &byte);
        hdr[k] = (uint8_t)byte;
    }
    memset(&wk, 0, sizeof wk);
    sgm_midstate(hdr, wk.midstate);
    for (k = 0; k < 3; k++) wk.tail[k] = sgm_load_be32(hdr + 64 + 4 * k);
    wk.target[6] = 0xFFFF0000u;   /* 0x00000000ffff0000...: target[7] = 0, target[6] = 0xffff0000 */
    sgm_work_prepare(&wk);
    kn->fn(&wk, genesis_nonce - 1000u, 2001, out, 4, &ab, &res);
    kn->cases++;
    if (!(res.status == SGM_SCAN_DONE && res.done == 2001 && res.n_found == 1 &&
          out[0] == genesis_nonce)) {
        kn->failures++;
        printf("MISMATCH %s (genesis block): status=%d done=%llu n_found=%u first=%u\n",
               kn->name, res.status, (unsigned long long)res.done, res.n_found,
               res.n_found ? out[0] : 0);
    }
    compare(kn, "genesis block, scalar agrees", &wk, genesis_nonce - 1000u, 2001, 4, 0);
    /* the genesis range ending exactly at the hit, and starting at it */
    compare(kn, "genesis hit is the last nonce", &wk, genesis_nonce - 37u, 38, 4, 0);
    compare(kn, "genesis hit is the first nonce", &wk, genesis_nonce, 21, 4, 0);

    /* everything hits: caps that stop inside the first batch, at its end, and later */
    random_header(&wk);
    random_target(&wk, 0, 0, 0);
    for (k = 1; k <= 2 * kn->lanes + 1; k++)
        compare(kn, "all hit, small cap", &wk, 0xFFFFFFFFu - 100u, 101, (uint32_t)k, 0);
    compare(kn, "all hit, range = last nonce only", &wk, 0xFFFFFFFFu, 1, 1, 0);
    compare(kn, "all hit, cap = count", &wk, 12345u, 77, 77, 0);
    compare(kn, "all hit, cap = count - 1", &wk, 12345u, 77, 76, 0);
    /* empty range and raised abort flag */
    compare(kn, "empty range", &wk, 5u, 0, 1, 0);
    compare(kn, "empty range at 2^32", &wk, 0xFFFFFFFFu, 0, 1, 0);
    compare(kn, "abort raised", &wk, 0u, 3000, 65536, 1);
    compare(kn, "abort raised, empty range", &wk, 0u, 0, 65536, 1);
}

int main(int argc, char **argv) {
    kernel kernels[] = {
        {"avx512", sgm_scan_avx512, 16, 0, 0},
        {"avx2", sgm_scan_avx2, 8, 0, 0},
    };
    const int n_kernels = (int)(sizeof kernels / sizeof kernels[0]);
    long n_random = argc > 1 ? atol(argv[1]) : 1500;
    int all_ok = 1, i, k;

    if (argc > 2) rng_state = strtoull(argv[2], NULL, 0) | 1u;
    printf("SIMDe %d.%d.%d, %ld random cases per kernel, seed state %llu\n",
           SIMDE_VERSION_MAJOR, SIMDE_VERSION_MINOR, SIMDE_VERSION_MICRO, n_random,
           (unsigned long long)rng_state);
    for (i = 0; i < n_kernels; i++) {
        kernel *kn = &kernels[i];
        run_fixed_cases(kn);
        for (k = 0; k < n_random; k++) run_random_case(kn, k);
        printf("%s %s: %ld/%ld cases agree with sgm_scan_scalar\n",
               kn->failures ? "FAIL" : "PASS", kn->name, kn->cases - kn->failures, kn->cases);
        if (kn->failures) all_ok = 0;
    }
    printf("SUMMARY: %s\n", all_ok ? "PASS" : "FAIL");
    return all_ok ? 0 : 1;
}
