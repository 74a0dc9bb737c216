/* qadd forward, TFLite Micro numerics (tinytrain/ops/add.py). */
#include "ops/tt_ops.h"
#include "ops/tt_tflm.h"

void tt_qadd_s8(const int8_t *a, const int8_t *b, int n, int32_t a_zero, int32_t b_zero, int32_t y_zero,
                int left_shift, int32_t a_mult, int32_t a_shift, int32_t b_mult, int32_t b_shift, int32_t y_mult,
                int32_t y_shift, int32_t act_min, int32_t act_max, int8_t *y) {
    for (int i = 0; i < n; ++i) {
        int32_t va = (int32_t)((uint32_t)((int32_t)a[i] - a_zero) << left_shift);
        int32_t vb = (int32_t)((uint32_t)((int32_t)b[i] - b_zero) << left_shift);
        int32_t sa = tt_rdbpot(tt_srdhm(va, a_mult), -a_shift);
        int32_t sb = tt_rdbpot(tt_srdhm(vb, b_mult), -b_shift);
        int32_t s = (int32_t)((uint32_t)sa + (uint32_t)sb);
        int32_t v = tt_rdbpot(tt_srdhm(s, y_mult), -y_shift) + y_zero;
        y[i] = (int8_t)tt_clamp32(v, act_min, act_max);
    }
}

/* onnxruntime's QLinearAdd (MLAS, x86 and NEON): int32 fixed point with one shift (numerics "ort",
 * tinytrain/ops/add.py qadd_ort_s8). */
void tt_qadd_ort_s8(const int8_t *a, const int8_t *b, int n, int32_t a_mult, int32_t b_mult, int32_t zconst,
                    int shift, int32_t y_zero, int8_t *y) {
    int32_t mask = (int32_t)((1u << shift) - 1u), thr = mask >> 1;
    for (int i = 0; i < n; ++i) {
        int32_t acc = (int32_t)((uint32_t)zconst + (uint32_t)((int32_t)a[i] * a_mult) +
                                (uint32_t)((int32_t)b[i] * b_mult));
        int32_t rem = (acc & mask) + (acc < 0 ? -1 : 0);
        int32_t r = (acc >> shift) + (rem > thr ? 1 : 0);
        r = tt_clamp32(r, -32768, 32767) + y_zero;
        y[i] = (int8_t)tt_clamp32(r, -128, 127);
    }
}
