/* The update rules on runs of int8 weights (nearest, stochastic, shadow; docs/numerics.md, "Update"): static
 * inline helpers of the weight-update kernels, internal to the runtime. */
#ifndef TT_UPDATE_RULES_H
#define TT_UPDATE_RULES_H

#include "tt_dsp.h"
#include "tt_kernels.h"
#include "tt_math.h"

/* The nearest and shadow rules on one element (sh: its shadow value, shadow rule only). */
#ifdef TT_USE_DSP
/* With the DSP: n = VCVTR(v) (round to nearest even, saturating; tt_dsp.h), then QADD, SSAT #8 and max(-127). For
 * |v| <= 256 n is rne(v); beyond, |n| >= 256 with v's sign, so w + n saturates to the same +-127 as the clamped
 * +-256 does (|w| <= 127): the contract's clamp(w + rne(clamp(v, +-256)), -127, 127), without the float clamps. */
static inline int8_t upd_nearest(int32_t w, float v) {
    const int32_t y = __ssat(__qadd(w, tt_cvtr_s32(v)), 8);
    return (int8_t)(y < -127 ? -127 : y);
}
#else
static inline int8_t upd_nearest(int32_t w, float v) {
    return (int8_t)tt_clampi(w + (int32_t)tt_rne(tt_clampf(v, 256.0f)), -127, 127);
}
#endif

static inline int8_t update_one(int8_t w, float delta, int rule, float *sh) {
    if (rule == TT_RULE_SHADOW) {
        const float v = *sh + delta;
        *sh = v;
        return upd_nearest(0, v);
    }
    return upd_nearest((int32_t)w, delta);
}

/* ---- the stochastic rule, with the rng state in a register ----
 * Callers load the state once per run of elements, draw with xs_next and store it back, instead of going
 * through tt_xorshift32(rng) per element (an int8 weight store may alias *rng, so the compiler reloads and
 * stores it around every element otherwise). The draws, their order and the arithmetic are the contract's:
 * u = f32(r >> 8) * 2^-24, W = clamp(W + floor(f32(clamp(delta, +-256) + u)), -127, 127). */
static inline uint32_t xs_next(uint32_t x) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
}

/* u = f32(r >> 8) * 2^-24, exact (r >> 8 < 2^24). On the device one fixed-point VCVT (24 fraction bits) does
 * the conversion and the scaling together. */
static inline float xs_uniform(uint32_t r) {
#if defined(__arm__) && defined(__ARM_FP) && (__ARM_FP & 4) /* single-precision FPU (checked in QEMU) */
    float f = tt_bits_f32(r >> 8);
    __asm("vcvt.f32.u32 %0, %0, #24" : "+t"(f));
    return f;
#else
    return (float)(r >> 8) * 5.9604644775390625e-8f; /* 2^-24 */
#endif
}

/* floor(v) for |v| <= 2^22, exact: t = rne(v), minus one where t > v. */
static inline int32_t floor_s32(float v) {
    const float t = tt_rne(v);
    int32_t n = (int32_t)t;
    if (t > v) n--;
    return n;
}

/* w + floor(clamp(delta, +-256) + u), clamped to +-127 (u: this element's draw). */
static inline int8_t stoch_one(int8_t w, float delta, float u) {
    return (int8_t)tt_clampi((int32_t)w + floor_s32(tt_clampf(delta, 256.0f) + u), -127, 127);
}

/* stoch_one without the float clamps (the depthwise weight-gradient path): with the DSP, n = VCVTR(delta + u)
 * (round to nearest even, saturating), one less where f32(n) > v: floor(v); SSAT #16 first, so the decrement cannot
 * wrap. For |delta| <= 256 v is the contract's f32(delta + u) and n its floor; beyond, |floor| >= 255 with
 * delta's sign either way, and w + n clamps to the same +-127 (|w| <= 127). */
#ifdef TT_USE_DSP
#if defined(__ARM_FEATURE_DSP) && !defined(TT_NO_DSP) && defined(__ARM_FP)
static inline void tt_cvtr_back(float v, float *n, float *t) { /* n = VCVTR(v) (bits), t = f32 of it */
    __asm("vcvtr.s32.f32 %0, %2\n\tvcvt.f32.s32 %1, %0" : "=&t"(*n), "=t"(*t) : "t"(v));
}
#else
static inline void tt_cvtr_back(float v, float *n, float *t) {
    const int32_t q = tt_cvtr_s32(v);
    __builtin_memcpy(n, &q, 4);
    *t = (float)q;
}
#endif
static inline int8_t stoch_one_fast(int8_t w, float delta, float u) {
    const float v = delta + u;
    float nf, t;
    tt_cvtr_back(v, &nf, &t);
    int32_t n;
    __builtin_memcpy(&n, &nf, 4);
    n = __ssat(n, 16);
    if (t > v) n--;
    const int32_t y = __ssat((int32_t)w + n, 8);
    return (int8_t)(y < -127 ? -127 : y);
}
#else
static inline int8_t stoch_one_fast(int8_t w, float delta, float u) {
    return stoch_one(w, delta, u);
}
#endif

/* The stochastic rule on a run of 4 consecutive elements wp[0..3] (sums r[j], step factors f[j], the draws from
 * state x: returns x advanced by 4). The same integers as stoch_one_fast per element, in order.
 * Device (FPv4 / FPv5 with the DSP: the M4 too, which has no VCVTM), one asm block: delta = r * f and v = delta + u
 * in the default rounding (nearest even, RMode 0b00), u = f32(x >> 8) * 2^-24 by one fixed-point VCVT (exact); then
 * the FPSCR rounding mode is set to round towards minus infinity (ORR of bit 23: RMode 0b10) for the four VCVTR only,
 * which then give floor(v) (saturating), and the FPSCR read before is written back (the four conversions' cumulative
 * exception flags are dropped; nothing reads them). No other float operation runs in that mode: it is set and
 * restored inside the one asm statement. The integer part on halfword pairs: SSAT #16 and PKHBT pack n as (n0, n2),
 * (n1, n3); one LDR of the four weights, SXTB16 (plain and ROR #8) the same pairs; QADD16, SSAT16 #8 (w + n in
 * [-128, 127]); UXTB16 / ORR pack the bytes, two QSUB8 from 0 map -128 to -127 (0 - (-128) saturates to 127) and
 * leave the rest; one STR. w + floor(v) clamped to +-127 as stoch_one_fast: for |delta| <= 256 v is the contract's
 * f32(delta + u); beyond, |floor(v)| >= 255 with delta's sign, and w + n clamps to the same +-127 (|w| <= 127;
 * SSAT #16 keeps that sign). 61 instructions per 4 elements (stoch_one_fast: about 96). */
#if defined(__ARM_FEATURE_DSP) && !defined(TT_NO_DSP) && defined(__ARM_FP) && (__ARM_FP & 4) && defined(__thumb2__)
static inline uint32_t stoch_run4(int8_t *wp, const float *r, const float *f, uint32_t x) {
    uint32_t t0, t1, t2, t3;
    __asm volatile("vldmia %[r], {s0-s3}\n\t"
                   "vldmia %[f], {s4-s7}\n\t"
                   "vmul.f32 s0, s0, s4\n\t" /* delta */
                   "vmul.f32 s1, s1, s5\n\t"
                   "vmul.f32 s2, s2, s6\n\t"
                   "vmul.f32 s3, s3, s7\n\t"
                   "eor %[x], %[x], %[x], lsl #13\n\t" /* xorshift32, then r >> 8 */
                   "eor %[x], %[x], %[x], lsr #17\n\t"
                   "eor %[x], %[x], %[x], lsl #5\n\t"
                   "lsr %[t0], %[x], #8\n\t"
                   "eor %[x], %[x], %[x], lsl #13\n\t"
                   "eor %[x], %[x], %[x], lsr #17\n\t"
                   "eor %[x], %[x], %[x], lsl #5\n\t"
                   "lsr %[t1], %[x], #8\n\t"
                   "eor %[x], %[x], %[x], lsl #13\n\t"
                   "eor %[x], %[x], %[x], lsr #17\n\t"
                   "eor %[x], %[x], %[x], lsl #5\n\t"
                   "lsr %[t2], %[x], #8\n\t"
                   "eor %[x], %[x], %[x], lsl #13\n\t"
                   "eor %[x], %[x], %[x], lsr #17\n\t"
                   "eor %[x], %[x], %[x], lsl #5\n\t"
                   "lsr %[t3], %[x], #8\n\t"
                   "vmov s4, s5, %[t0], %[t1]\n\t"
                   "vmov s6, s7, %[t2], %[t3]\n\t"
                   "vcvt.f32.u32 s4, s4, #24\n\t" /* u */
                   "vcvt.f32.u32 s5, s5, #24\n\t"
                   "vcvt.f32.u32 s6, s6, #24\n\t"
                   "vcvt.f32.u32 s7, s7, #24\n\t"
                   "vadd.f32 s0, s0, s4\n\t" /* v = delta + u */
                   "vadd.f32 s1, s1, s5\n\t"
                   "vadd.f32 s2, s2, s6\n\t"
                   "vadd.f32 s3, s3, s7\n\t"
                   "vmrs %[t0], fpscr\n\t"
                   "orr %[t1], %[t0], #0x00800000\n\t" /* RMode: round towards minus infinity */
                   "vmsr fpscr, %[t1]\n\t"
                   "vcvtr.s32.f32 s0, s0\n\t" /* floor(v) */
                   "vcvtr.s32.f32 s1, s1\n\t"
                   "vcvtr.s32.f32 s2, s2\n\t"
                   "vcvtr.s32.f32 s3, s3\n\t"
                   "vmsr fpscr, %[t0]\n\t" /* the default mode again */
                   "vmov %[t0], %[t1], s0, s1\n\t"
                   "vmov %[t2], %[t3], s2, s3\n\t"
                   "ssat %[t0], #16, %[t0]\n\t"
                   "ssat %[t1], #16, %[t1]\n\t"
                   "ssat %[t2], #16, %[t2]\n\t"
                   "ssat %[t3], #16, %[t3]\n\t"
                   "pkhbt %[t0], %[t0], %[t2], lsl #16\n\t" /* (n0, n2) */
                   "pkhbt %[t1], %[t1], %[t3], lsl #16\n\t" /* (n1, n3) */
                   "ldr %[t2], [%[w]]\n\t"
                   "sxtb16 %[t3], %[t2], ror #8\n\t" /* (w1, w3) */
                   "sxtb16 %[t2], %[t2]\n\t"         /* (w0, w2) */
                   "qadd16 %[t0], %[t0], %[t2]\n\t"
                   "qadd16 %[t1], %[t1], %[t3]\n\t"
                   "ssat16 %[t0], #8, %[t0]\n\t"
                   "ssat16 %[t1], #8, %[t1]\n\t"
                   "uxtb16 %[t0], %[t0]\n\t"
                   "uxtb16 %[t1], %[t1]\n\t"
                   "orr %[t0], %[t0], %[t1], lsl #8\n\t" /* bytes w0..w3 */
                   "qsub8 %[t1], %[z], %[t0]\n\t"        /* -128 -> 127, else -w */
                   "qsub8 %[t0], %[z], %[t1]\n\t"        /* -128 -> -127, else w */
                   "str %[t0], [%[w]]"
                   : [x] "+r"(x), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3)
                   : [r] "r"(r), [f] "r"(f), [w] "r"(wp), [z] "r"(0u)
                   : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "memory");
    return x;
}
#else
static inline uint32_t stoch_run4(int8_t *wp, const float *r, const float *f, uint32_t x) {
    for (int j = 0; j < 4; j++) {
        x = xs_next(x);
        wp[j] = stoch_one_fast(wp[j], r[j] * f[j], xs_uniform(x));
    }
    return x;
}
#endif

/* Advance *rng by n draws (the elements of a layer whose sums come later, see rng_starts). */
static inline uint32_t xs_skip(uint32_t x, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) x = xs_next(xs_next(xs_next(xs_next(x))));
    for (; i < n; i++) x = xs_next(x);
    return x;
}

/* cur[r] = the rng state before element r * len of a layer (rows of len elements in memory order, r < rows);
 * *rng is left after all rows * len draws. A kernel that finishes its elements row by row in any row order,
 * each row in ascending order, then draws every element's number from its row's cursor: the draws of the
 * contract's single memory-order sequence. */
static void rng_starts(uint32_t *rng, int rows, int len, uint32_t *cur) {
    uint32_t x = *rng;
    for (int r = 0; r < rows; r++) {
        cur[r] = x;
        x = xs_skip(x, len);
    }
    *rng = x;
}

/* Update n consecutive elements (n <= 8) of wt / shadow from sums s[] and factor k, any rule. */
static inline void update_run(int8_t *wt, float *sh, const float *s, int n, float k, int rule, uint32_t *rng) {
    if (rule == TT_RULE_STOCHASTIC) {
        uint32_t x = *rng;
        for (int j = 0; j < n; j++) {
            x = xs_next(x);
            wt[j] = stoch_one(wt[j], s[j] * k, xs_uniform(x));
        }
        *rng = x;
        return;
    }
    for (int j = 0; j < n; j++) wt[j] = update_one(wt[j], s[j] * k, rule, sh ? sh + j : 0);
}

/* The same with one factor per element: s[j] * (neg_lr * q[j]) (depthwise: per channel). */
static inline void update_run_q(int8_t *wt, float *sh, const float *s, int n, float neg_lr, const float *q, int rule,
                                uint32_t *rng) {
    if (rule == TT_RULE_STOCHASTIC) {
        uint32_t x = *rng;
        for (int j = 0; j < n; j++) {
            x = xs_next(x);
            wt[j] = stoch_one(wt[j], s[j] * (neg_lr * q[j]), xs_uniform(x));
        }
        *rng = x;
        return;
    }
    for (int j = 0; j < n; j++) wt[j] = update_one(wt[j], s[j] * (neg_lr * q[j]), rule, sh ? sh + j : 0);
}

#endif
