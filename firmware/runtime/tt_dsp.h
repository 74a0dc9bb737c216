/* Cortex-M DSP (SIMD) intrinsics: ACLE on the device; a portable C emulation (TT_EMULATE_DSP) lets the
 * host-native build run the same SIMD code paths so their bit-exactness is tested without QEMU. */
#ifndef TT_DSP_H
#define TT_DSP_H

#include <stdint.h>

#if defined(__ARM_FEATURE_DSP) && !defined(TT_NO_DSP)
#include <arm_acle.h>
#define TT_USE_DSP 1
#elif defined(TT_EMULATE_DSP)
#define TT_USE_DSP 1
static inline uint32_t __sxtb16(uint32_t x) { /* sign-extend bytes 0 and 2 to halfwords */
    uint32_t lo = (uint32_t)(uint16_t)(int16_t)(int8_t)(x & 0xFFu);
    uint32_t hi = (uint32_t)(uint16_t)(int16_t)(int8_t)((x >> 16) & 0xFFu);
    return lo | (hi << 16);
}
static inline int32_t __smlad(uint32_t a, uint32_t b, int32_t acc) {
    int32_t p0 = (int32_t)(int16_t)(a & 0xFFFFu) * (int32_t)(int16_t)(b & 0xFFFFu);
    int32_t p1 = (int32_t)(int16_t)(a >> 16) * (int32_t)(int16_t)(b >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)p0 + (uint32_t)p1);
}
static inline int32_t __smuad(uint32_t a, uint32_t b) { return __smlad(a, b, 0); }
static inline uint32_t __ssub16(uint32_t a, uint32_t b) {
    uint32_t lo = (uint16_t)((int16_t)(a & 0xFFFFu) - (int16_t)(b & 0xFFFFu));
    uint32_t hi = (uint16_t)((int16_t)(a >> 16) - (int16_t)(b >> 16));
    return lo | (hi << 16);
}
static inline uint32_t __sadd16(uint32_t a, uint32_t b) {
    uint32_t lo = (uint16_t)((a & 0xFFFFu) + (b & 0xFFFFu));
    uint32_t hi = (uint16_t)((a >> 16) + (b >> 16));
    return lo | (hi << 16);
}
static inline uint32_t __sxtab16(uint32_t a, uint32_t x) { /* a + sxtb16(x), per halfword (wrapping) */
    uint32_t s = __sxtb16(x);
    uint32_t lo = (uint16_t)((a & 0xFFFFu) + (s & 0xFFFFu));
    uint32_t hi = (uint16_t)((a >> 16) + (s >> 16));
    return lo | (hi << 16);
}
static inline int32_t tt_emu_mac16(int32_t a16, int32_t b16, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(a16 * b16));
}
#define TT_LO16(v) ((int32_t)(int16_t)((uint32_t)(v) & 0xFFFFu))
#define TT_HI16(v) ((int32_t)(int16_t)((uint32_t)(v) >> 16))
static inline int32_t __smlabb(uint32_t a, uint32_t b, int32_t acc) { return tt_emu_mac16(TT_LO16(a), TT_LO16(b), acc); }
static inline int32_t __smlabt(uint32_t a, uint32_t b, int32_t acc) { return tt_emu_mac16(TT_LO16(a), TT_HI16(b), acc); }
static inline int32_t __smlatb(uint32_t a, uint32_t b, int32_t acc) { return tt_emu_mac16(TT_HI16(a), TT_LO16(b), acc); }
static inline int32_t __smlatt(uint32_t a, uint32_t b, int32_t acc) { return tt_emu_mac16(TT_HI16(a), TT_HI16(b), acc); }
static inline int32_t __qadd(int32_t a, int32_t b) { /* saturating 32-bit add */
    int64_t s = (int64_t)a + (int64_t)b;
    return s > INT32_MAX ? INT32_MAX : (s < INT32_MIN ? INT32_MIN : (int32_t)s);
}
static inline int32_t tt_emu_ssat(int32_t v, int bits) {
    const int32_t hi = (int32_t)((1u << (bits - 1)) - 1u), lo = -hi - 1;
    return v < lo ? lo : (v > hi ? hi : v);
}
#define __ssat(v, bits) tt_emu_ssat((v), (bits))
#endif

#ifdef TT_USE_DSP
/* Bytes 1 and 3 sign-extended to halfwords: one SXTB16 with ROR #8 (GCC does not fold the rotate). */
#if defined(__ARM_FEATURE_DSP) && !defined(TT_NO_DSP)
static inline uint32_t tt_sxtb16_ror8(uint32_t x) {
    uint32_t r;
    __asm("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
/* a + (bytes 1 and 3 of x, sign-extended), per halfword: SXTAB16 with ROR #8. */
static inline uint32_t tt_sxtab16_ror8(uint32_t a, uint32_t x) {
    uint32_t r;
    __asm("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}
#else
static inline uint32_t tt_sxtb16_ror8(uint32_t x) {
    return __sxtb16((x >> 8) | (x << 24));
}
static inline uint32_t tt_sxtab16_ror8(uint32_t a, uint32_t x) {
    return __sxtab16(a, (x >> 8) | (x << 24));
}
#endif
/* (a.lo, b.lo) for sign-extended values: one PKHBT (GCC emits UXTH + ORR for the C form). */
#if defined(__ARM_FEATURE_DSP) && !defined(TT_NO_DSP)
static inline uint32_t tt_pkhbt16(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
/* (a.hi, b.hi): one PKHTB. */
static inline uint32_t tt_pkhtb16(uint32_t a, uint32_t b) {
    uint32_t r;
    __asm("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(b), "r"(a));
    return r;
}
#else
static inline uint32_t tt_pkhbt16(uint32_t a, uint32_t b) {
    return (a & 0xFFFFu) | (b << 16);
}
static inline uint32_t tt_pkhtb16(uint32_t a, uint32_t b) {
    return (a >> 16) | (b & 0xFFFF0000u);
}
#endif
/* Halfword packing in plain C (GCC emits PKHBT / PKHTB): lo = (a.lo, b.lo), hi = (a.hi, b.hi). */
static inline uint32_t tt_pack_lo(uint32_t a, uint32_t b) {
    return (a & 0xFFFFu) | (b << 16);
}
static inline uint32_t tt_pack_hi(uint32_t a, uint32_t b) {
    return (a >> 16) | (b & 0xFFFF0000u);
}
static inline uint32_t tt_load32(const int8_t *p) { /* unaligned-safe word load (LDR on Cortex-M) */
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}
static inline uint32_t tt_load32h(const int16_t *p) { /* two halfwords, any halfword alignment */
    uint32_t v;
    __builtin_memcpy(&v, p, 4);
    return v;
}
static inline void tt_store32h(int16_t *p, uint32_t v) {
    __builtin_memcpy(p, &v, 4);
}

/* float -> int32, round to nearest even (the FPSCR default mode), saturating: VCVTR on the device. */
#if defined(__ARM_FEATURE_DSP) && !defined(TT_NO_DSP) && defined(__ARM_FP)
static inline int32_t tt_cvtr_s32(float v) {
    float r;
    int32_t n;
    __asm("vcvtr.s32.f32 %0, %1" : "=t"(r) : "t"(v));
    __builtin_memcpy(&n, &r, 4);
    return n;
}
#else
static inline int32_t tt_cvtr_s32(float v) { /* exact for |v| <= 2^22; beyond, only the sign and |n| > 2^22 hold,
                                               * which is all the requantization below relies on */
    if (v > 4194304.0f) return 4194305;
    if (v < -4194304.0f) return -4194305;
    return (int32_t)((v + 12582912.0f) - 12582912.0f);
}
#endif

/* Requantization (docs/numerics.md, conv2d_s8): s = sat32(acc + bias), then
 * clamp(rne(clamp(f32(s) * m, +-256)) + y_zero, -128, 127) as QADD, VCVT, VMUL, VCVTR, QADD, SSAT. Equal to the
 * reference: for |v| <= 256 both round the same; for v > 256 (< -256) n >= 256 (<= -256), so n + y_zero
 * saturates to 127 (-128) exactly as the clamped 256 (-256) does (|y_zero| <= 128); the second QADD keeps a
 * saturated VCVTR result from wrapping. */
static inline int8_t tt_requant_dsp(int32_t acc, int32_t bias, float m, int32_t y_zero) {
    return (int8_t)__ssat(__qadd(tt_cvtr_s32((float)__qadd(acc, bias) * m), y_zero), 8);
}

/* f32 of the signed low halfword of v, exact: VMOV + one fixed-point VCVT (.S16, 0 fraction bits), which reads the
 * low halfword sign-extended, so no extract; the C form on the host. */
#if defined(__ARM_FEATURE_DSP) && !defined(TT_NO_DSP) && defined(__ARM_FP)
static inline float tt_s16lo_f32(uint32_t v) {
    float f;
    __builtin_memcpy(&f, &v, 4);
    __asm("vcvt.f32.s16 %0, %0, #0" : "+t"(f));
    return f;
}
#else
static inline float tt_s16lo_f32(uint32_t v) {
    return (float)(int16_t)(uint16_t)(v & 0xFFFFu);
}
#endif
/* f32 of the signed high halfword of v, exact (ASR, VMOV, VCVT). */
static inline float tt_s16hi_f32(uint32_t v) {
    return (float)(int16_t)(uint16_t)(v >> 16);
}
#endif

#endif
