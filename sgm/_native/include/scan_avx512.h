/* scan_avx512.h - PLACEHOLDER while the avx512 kernel is written: delegates to scalar. */
#ifndef SGM_SCAN_AVX512_H
#define SGM_SCAN_AVX512_H
#include "scan_scalar.h"
#define sgm_scan_avx512 sgm_scan_scalar
#endif
