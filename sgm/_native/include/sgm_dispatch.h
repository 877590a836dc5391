/* sgm_dispatch.h - the table of scan kernels ("gate"): name, lanes, availability. */
#ifndef SGM_DISPATCH_H
#define SGM_DISPATCH_H

#include "sgm_sha256.h"
#include "cpu_features.h"
#include "scan_scalar.h"
#if SGM_X86
#include "scan_shani.h"
#include "scan_avx2.h"
#include "scan_avx512.h"
#endif

typedef struct {
    const char *name;   /* stable name used by --impl */
    int lanes;          /* nonces processed together */
    int needs;          /* SGM_CPU_* bits required */
    sgm_scan_fn fn;
} sgm_impl;

/* Fastest first: the default is the first available entry. */
static const sgm_impl SGM_IMPLS[] = {
#if SGM_X86
    {"sha-ni", 4, SGM_CPU_SHA | SGM_CPU_AVX, sgm_scan_shani},
    {"sha-ni-sse", 4, SGM_CPU_SHA, sgm_scan_shani_sse},
    {"avx512", 16, SGM_CPU_AVX512, sgm_scan_avx512},
    {"avx2", 8, SGM_CPU_AVX2, sgm_scan_avx2},
#endif
    {"scalar", 1, 0, sgm_scan_scalar},
};

#define SGM_N_IMPLS ((int)(sizeof(SGM_IMPLS) / sizeof(SGM_IMPLS[0])))

static int sgm_impl_available(int i) {
    static int feats = -1;
    if (feats < 0) feats = sgm_cpu_features();
    return (SGM_IMPLS[i].needs & feats) == SGM_IMPLS[i].needs;
}

#endif /* SGM_DISPATCH_H */
