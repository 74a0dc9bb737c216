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
static inline uint32_t __ssub16(uint32_t a, uint32_t b) {
    uint32_t lo = (uint16_t)((int16_t)(a & 0xFFFFu) - (int16_t)(b & 0xFFFFu));
    uint32_t hi = (uint16_t)((int16_t)(a >> 16) - (int16_t)(b >> 16));
    return lo | (hi << 16);
}
#endif

#ifdef TT_USE_DSP
/* Bytes 1 and 3 sign-extended to halfwords: one SXTB16 with ROR #8 (GCC does not fold the rotate). */
#if defined(__ARM_FEATURE_DSP) && !defined(TT_NO_DSP)
static inline uint32_t tt_sxtb16_ror8(uint32_t x) {
    uint32_t r;
    __asm("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
#else
static inline uint32_t tt_sxtb16_ror8(uint32_t x) {
    return __sxtb16((x >> 8) | (x << 24));
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
#endif

#endif
