/* Float helpers with fixed IEEE binary32 semantics (docs/numerics.md). Internal to the runtime. */
#ifndef TT_MATH_H
#define TT_MATH_H

#include <stdint.h>

/* The fused multiply-add contract (docs/numerics.md, "Fused multiply-add"): TT_MAC(acc, a, b) is one
 * multiply-accumulate of a backward sum. Default (TT_FMA 1): fmaf(a, b, acc), one rounding: a VFMA on the
 * Cortex-M4F/M7 (with -fno-math-errno), a correctly rounded fmaf on the host (libm, or an FMA instruction with
 * -mfma). -DTT_FMA=0 (the option for a core without a fused multiply-add): acc + a * b, two roundings
 * (-ffp-contract=off keeps them). The numpy reference must run the same contract (tinytrain.kernels.fma,
 * TINYTRAIN_FMA=0 for the option).
 * A generated model decides it: tt_config.h (written beside model.c/model.h, on the include path of every
 * build of that model) defines TT_MODEL_FMA, the program's contract (CompileOptions.fma, the board's by
 * default: fused on the M7, two roundings on the M4). A -DTT_FMA that disagrees with it is an error. */
#if defined(__has_include)
#if __has_include("tt_config.h")
#include "tt_config.h"
#endif
#endif
#ifdef TT_MODEL_FMA
#if defined(TT_FMA) && TT_FMA != TT_MODEL_FMA
#error "-DTT_FMA disagrees with the model's multiply-add contract (tt_config.h, TT_MODEL_FMA): recompile the model with the other contract (CompileOptions.fma) or drop the flag"
#endif
#ifndef TT_FMA
#define TT_FMA TT_MODEL_FMA
#endif
#endif
#ifndef TT_FMA
#define TT_FMA 1
#endif
#if TT_FMA
#include <math.h>
#define TT_MAC(acc, a, b) fmaf((a), (b), (acc))
#else
#define TT_MAC(acc, a, b) ((acc) + (a) * (b))
#endif

/* Round to nearest integer, ties to even, for |v| <= 2^22: (v + 1.5*2^23) - 1.5*2^23. The compiler may
 * not fold this without -ffast-math (IEEE addition is not associative). */
static inline float tt_rne(float v) {
    return (v + 12582912.0f) - 12582912.0f;
}

static inline float tt_clampf(float v, float lim) {
    return v < -lim ? -lim : (v > lim ? lim : v);
}

static inline int32_t tt_clampi(int32_t v, int32_t lo, int32_t hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

/* sat32(a + b): the sum saturated to [-2^31, 2^31 - 1] (the requantization's acc + bias, docs/numerics.md).
 * One QADD on a Cortex-M with the DSP extension; elsewhere a 64-bit add and a clamp. */
static inline int32_t tt_sat_add32(int32_t a, int32_t b) {
#if defined(__ARM_FEATURE_DSP) && !defined(TT_NO_DSP)
    int32_t r;
    __asm("qadd %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    const int64_t s = (int64_t)a + (int64_t)b;
    return s > INT32_MAX ? INT32_MAX : (s < INT32_MIN ? INT32_MIN : (int32_t)s);
#endif
}

/* float32 -> int8 output: clamp to +-256, rne, add zero point, saturate. */
static inline int8_t tt_requant_out(float v, int32_t y_zero) {
    v = tt_clampf(v, 256.0f);
    return (int8_t)tt_clampi((int32_t)tt_rne(v) + y_zero, -128, 127);
}

/* The int8 conv requantization (docs/numerics.md): acc is the exact int32 sum of (x - x_zero) * w (no overflow:
 * |acc| <= 255 * 128 * kh * kw * ci < 2^31 for kh * kw * ci <= 65793); the bias is added with saturation. The
 * DSP fast paths use tt_requant_dsp (tt_dsp.h), equal to it. */
static inline int8_t tt_requant_acc(int32_t acc, int32_t bias, float m, int32_t y_zero) {
    return tt_requant_out((float)tt_sat_add32(acc, bias) * m, y_zero);
}

static inline float tt_bits_f32(uint32_t u) {
    union { uint32_t u; float f; } c;
    c.u = u;
    return c.f;
}

static inline uint32_t tt_f32_bits(float f) {
    union { uint32_t u; float f; } c;
    c.f = f;
    return c.u;
}

#endif
