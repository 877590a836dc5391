/* scan_avx2.h - PLACEHOLDER while the avx2 kernel is written: delegates to scalar. */
#ifndef SGM_SCAN_AVX2_H
#define SGM_SCAN_AVX2_H
#include "scan_scalar.h"
#define sgm_scan_avx2 sgm_scan_scalar
#endif
