/* cpu_features.h - run-time CPU feature detection (CPUID + XGETBV), x86-64 only.
 * Every SIMD kernel is compiled with a per-function target attribute, so the extension
 * itself is built for baseline x86-64 and picks a kernel at run time. */
#ifndef SGM_CPU_FEATURES_H
#define SGM_CPU_FEATURES_H

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define SGM_X86 1
#include <cpuid.h>
#else
#define SGM_X86 0
#endif

enum { SGM_CPU_SSE41 = 1, SGM_CPU_SHA = 2, SGM_CPU_AVX2 = 4, SGM_CPU_AVX512 = 8, SGM_CPU_AVX = 16 };

static int sgm_cpu_features(void) {
#if SGM_X86
    unsigned int a, b, c, d, xcr0_lo = 0, xcr0_hi = 0;
    unsigned int max_leaf;
    int f = 0, os_avx = 0, os_avx512 = 0;
    if (!__get_cpuid(0, &max_leaf, &b, &c, &d)) return 0;
    __cpuid(1, a, b, c, d);
    if (c & (1u << 19)) f |= SGM_CPU_SSE41;
    if ((c & (1u << 27)) && (c & (1u << 28))) { /* OSXSAVE and AVX */
        __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
        os_avx = (xcr0_lo & 0x6) == 0x6;            /* XMM and YMM state */
        os_avx512 = os_avx && (xcr0_lo & 0xE0) == 0xE0; /* opmask, ZMM_Hi256, Hi16_ZMM */
        if (os_avx) f |= SGM_CPU_AVX;
    }
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if ((b & (1u << 29)) && (f & SGM_CPU_SSE41)) f |= SGM_CPU_SHA;
        if ((b & (1u << 5)) && os_avx) f |= SGM_CPU_AVX2;
        if ((b & (1u << 16)) && os_avx512) f |= SGM_CPU_AVX512;  /* AVX-512F */
    }
    (void)xcr0_hi;
    return f;
#else
    return 0;
#endif
}

#endif /* SGM_CPU_FEATURES_H */
