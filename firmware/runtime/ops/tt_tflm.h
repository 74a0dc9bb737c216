/* TFLite Micro's fixed-point requantization (docs/numerics.md, "TFLite Micro numerics"): the C twin of
 * tinytrain/ops/tflm.py. Signed overflow is avoided by shifting in uint32 (the int32 wrap TFLM relies on). */
#ifndef TT_TFLM_H
#define TT_TFLM_H

#include <stdint.h>

static inline int32_t tt_srdhm(int32_t a, int32_t b) {
    if (a == b && a == INT32_MIN) return INT32_MAX;
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? (1LL << 30) : (1 - (1LL << 30));
    return (int32_t)((ab + nudge) / (1LL << 31));
}

static inline int32_t tt_rdbpot(int32_t x, int e) {
    int32_t mask = (int32_t)((1LL << e) - 1);
    int32_t rem = x & mask;
    int32_t thr = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (rem > thr ? 1 : 0);
}

static inline int32_t tt_mbqm(int32_t x, int32_t mult, int32_t shift) {
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    return tt_rdbpot(tt_srdhm((int32_t)((uint32_t)x << left), mult), right);
}

static inline int32_t tt_clamp32(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

#endif
