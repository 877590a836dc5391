/* scan_simd_undef.h - forget one kernel's V_* primitives (after scan_simd_body.h) so the
 * next kernel header can define its own.  No include guard on purpose. */
#undef V_T
#undef V_NLANES
#undef V_TARGET
#undef V_C
#undef V_ADD
#undef V_S0
#undef V_S1
#undef V_s0
#undef V_s1
#undef V_CH
#undef V_MAJ
#undef V_ZERO
#undef V_LANES_VALUE
#undef V_AUX_VALUE
#undef V_BSWAP
#undef V_LE_MASK
#undef V_FILL_FN
#undef V_BATCH_FN
#undef V_SCAN_FN
