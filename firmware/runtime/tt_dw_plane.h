/* Depthwise int16-plane fast path (DSP), shared by tt_dwconv2d_s8 (ops/tt_conv2d.c) and tt_dwconv2d_s8_inplace
 * (ops/tt_conv2d_inplace.c). Internal to the runtime; everything here is static inline, so each file compiles its own
 * copies (the profile names them apart: dw_plane_3_1 / ip_plane_3, dw_fill / ip_fill).
 *
 * One channel at a time: the input rows a strip of output rows reads are copied into an int16 buffer (the plane)
 * as (x - x_zero), with zero columns for the left/right padding (a padded tap is x_zero: contributes 0), so the
 * interior loop has no bounds checks. Kernel rows outside the image are skipped (row range per output row).
 * Four, then two horizontally adjacent outputs per pass, taps paired into halfwords for SMLAD:
 *   stride 1: out j   = sum_m SMLAD(X[j+2m],   W[m]) + SMLABB(X[j+k-1], W[last])
 *             out j+1 = sum_m SMLAD(X[j+1+2m], W[m]) + SMLATB(X[j+k-1], W[last])
 *   stride 2: out j   = sum_m SMLAD(X[2j+2m],  W[m]) + SMLABB(X[2j+k-1], W[last]), out j+1 likewise
 * (X[i] = the halfword pair at columns i, i+1; W[m] = (w[2m], w[2m+1])). The accumulators start at 0; the bias is
 * added with saturation (QADD) in tt_requant_dsp. Odd k in 3..7, stride 1/2. Stack: the plane, at most
 * TT_DW_BUF_HALFWORDS int16 (2 KB), sized to the layer (8x8 map, 3x3: 10 x 12 halfwords = 240 B), plus 28 words
 * of packed weights (TT_DW_PACKED_WORDS).
 *
 * 3x3 stride 1 has its own path below (tt_dw3s1_plane): four channels' planes filled at once, every row and column
 * the outputs read in the plane, aligned tap pairs, the pass / row / channel loops in one asm block. */
#ifndef TT_DW_PLANE_H
#define TT_DW_PLANE_H

#include <stddef.h>
#include <stdint.h>

#include "tt_dsp.h"
#include "tt_math.h"

#ifdef TT_USE_DSP
#define TT_DW_BUF_HALFWORDS 1024
#define TT_DW_PACKED_WORDS (7 * 4) /* [k][(k - 1) / 2 + 1] packed taps, k <= 7 */

/* One kernel row of four adjacent outputs (see above). */
static inline __attribute__((always_inline)) void tt_dw_row4(const int16_t *r, const uint32_t *wr, int K, int S,
                                                             int32_t *acc) {
    const int M = (K - 1) / 2;
#pragma GCC unroll 4
    for (int q = 0; q < M; q++) {
        const uint32_t wq = wr[q];
        acc[0] = __smlad(tt_load32h(r + 2 * q), wq, acc[0]);
        acc[1] = __smlad(tt_load32h(r + S + 2 * q), wq, acc[1]);
        acc[2] = __smlad(tt_load32h(r + 2 * S + 2 * q), wq, acc[2]);
        acc[3] = __smlad(tt_load32h(r + 3 * S + 2 * q), wq, acc[3]);
    }
    const uint32_t wl = wr[M];
    if (S == 1) {
        const uint32_t l0 = tt_load32h(r + K - 1), l1 = tt_load32h(r + K + 1);
        acc[0] = __smlabb(l0, wl, acc[0]);
        acc[1] = __smlatb(l0, wl, acc[1]);
        acc[2] = __smlabb(l1, wl, acc[2]);
        acc[3] = __smlatb(l1, wl, acc[3]);
    } else {
        acc[0] = __smlabb(tt_load32h(r + K - 1), wl, acc[0]);
        acc[1] = __smlabb(tt_load32h(r + K + 1), wl, acc[1]);
        acc[2] = __smlabb(tt_load32h(r + K + 3), wl, acc[2]);
        acc[3] = __smlabb(tt_load32h(r + K + 5), wl, acc[3]);
    }
}

/* One kernel row of two adjacent outputs. */
static inline __attribute__((always_inline)) void tt_dw_row2(const int16_t *r, const uint32_t *wr, int K, int S,
                                                             int32_t *acc) {
    const int M = (K - 1) / 2;
#pragma GCC unroll 4
    for (int q = 0; q < M; q++) {
        acc[0] = __smlad(tt_load32h(r + 2 * q), wr[q], acc[0]);
        acc[1] = __smlad(tt_load32h(r + S + 2 * q), wr[q], acc[1]);
    }
    if (S == 1) {
        const uint32_t l = tt_load32h(r + K - 1);
        acc[0] = __smlabb(l, wr[M], acc[0]);
        acc[1] = __smlatb(l, wr[M], acc[1]);
    } else {
        acc[0] = __smlabb(tt_load32h(r + K - 1), wr[M], acc[0]);
        acc[1] = __smlabb(tt_load32h(r + K + 1), wr[M], acc[1]);
    }
}

/* Output rows [r0, r1) of channel ch (y: HWC, wo columns, c channels) from the plane (input row ih_s at buf[0],
 * rows bw halfwords apart, column 0 = input column -pad); wp: [K][M + 1] packed taps (tt_dw_pack_taps). */
static inline __attribute__((always_inline)) void tt_dw_plane(const int16_t *buf, int bw, int ih_s, int r0, int r1,
                                                              int h, int wo, int ch, int c, int K, int S, int pad,
                                                              const uint32_t *wp, int32_t b, float mm,
                                                              int32_t y_zero, int8_t *y) {
    const int M = (K - 1) / 2; /* tap pairs per kernel row; wp: [K][M + 1] (pairs, then the last tap) */
    for (int oh = r0; oh < r1; oh++) {
        const int ih0 = oh * S - pad;
        const int a0 = ih0 < 0 ? -ih0 : 0, a1 = ih0 + K > h ? h - ih0 : K;
        const int16_t *rows = buf + (size_t)(ih0 + a0 - ih_s) * bw;
        const uint32_t *wrow0 = wp + a0 * (M + 1);
        int8_t *yp = y + (size_t)oh * wo * c + ch;
        int j = 0;
        if (a1 - a0 == K) { /* all kernel rows inside the image: fully unrolled */
            for (; j + 3 < wo; j += 4) {
                int32_t acc[4] = {0, 0, 0, 0};
                const int16_t *r = rows + j * S;
#pragma GCC unroll 7
                for (int a = 0; a < K; a++) tt_dw_row4(r + a * bw, wp + a * (M + 1), K, S, acc);
                int8_t *o = yp + (size_t)j * c;
                o[0] = tt_requant_dsp(acc[0], b, mm, y_zero);
                o[c] = tt_requant_dsp(acc[1], b, mm, y_zero);
                o[2 * c] = tt_requant_dsp(acc[2], b, mm, y_zero);
                o[3 * c] = tt_requant_dsp(acc[3], b, mm, y_zero);
            }
        } else {
            for (; j + 3 < wo; j += 4) {
                int32_t acc[4] = {0, 0, 0, 0};
                const int16_t *r = rows + j * S;
                const uint32_t *wr = wrow0;
                for (int a = a0; a < a1; a++, r += bw, wr += M + 1) tt_dw_row4(r, wr, K, S, acc);
                int8_t *o = yp + (size_t)j * c;
                o[0] = tt_requant_dsp(acc[0], b, mm, y_zero);
                o[c] = tt_requant_dsp(acc[1], b, mm, y_zero);
                o[2 * c] = tt_requant_dsp(acc[2], b, mm, y_zero);
                o[3 * c] = tt_requant_dsp(acc[3], b, mm, y_zero);
            }
        }
        for (; j < wo; j += 2) { /* two outputs per pass (the second discarded past wo) */
            int32_t acc[2] = {0, 0};
            const int16_t *r = rows + j * S;
            const uint32_t *wr = wrow0;
            for (int a = a0; a < a1; a++, r += bw, wr += M + 1) tt_dw_row2(r, wr, K, S, acc);
            yp[(size_t)j * c] = tt_requant_dsp(acc[0], b, mm, y_zero);
            if (j + 1 < wo) yp[(size_t)(j + 1) * c] = tt_requant_dsp(acc[1], b, mm, y_zero);
        }
    }
}

/* The plane function of one (K, S): tt_dw_plane with K and S constant. */
typedef void (*tt_dw_plane_fn)(const int16_t *buf, int bw, int ih_s, int r0, int r1, int h, int wo, int ch, int c,
                               int pad, const uint32_t *wp, int32_t b, float mm, int32_t y_zero, int8_t *y);

/* Defines `static void NAME(...)` of type tt_dw_plane_fn (noinline: one copy per (K, S), chosen by pointer). */
#define TT_DW_PLANE_FN(NAME, K, S)                                                                            \
    static __attribute__((noinline)) void NAME(const int16_t *buf, int bw, int ih_s, int r0, int r1, int h,      \
                                               int wo, int ch, int c, int pad, const uint32_t *wp, int32_t b,    \
                                               float mm, int32_t y_zero, int8_t *y) {                            \
        tt_dw_plane(buf, bw, ih_s, r0, r1, h, wo, ch, c, K, S, pad, wp, b, mm, y_zero, y);                        \
    }

/* Rows [t0, t1) of one channel into the plane: dst[iw] = x[ih][iw][ch] - x_zero for iw < n (x: channel ch of an
 * HWC map, w columns, c channels), four pixels per step (LDRSB x4, PKHBT x2, SADD16 x2, STR x2). */
static inline __attribute__((always_inline)) void tt_dw_fill(int16_t *buf, int bw, int pad, int ih_s, int t0,
                                                             int t1, const int8_t *x, int w, int c, int n,
                                                             int32_t x_zero) {
    const uint32_t nzz = ((uint32_t)(uint16_t)(int16_t)-x_zero) * 0x00010001u;
    const size_t c2 = (size_t)2 * c, c3 = (size_t)3 * c, c4 = (size_t)4 * c;
    for (int ih = t0; ih < t1; ih++) {
        int16_t *dst = buf + (size_t)(ih - ih_s) * bw + pad;
        const int8_t *src = x + (size_t)ih * w * c;
        int i = 0;
        for (; i + 3 < n; i += 4, src += c4) {
            const uint32_t a = tt_pkhbt16((uint32_t)(int32_t)src[0], (uint32_t)(int32_t)src[c]);
            const uint32_t b = tt_pkhbt16((uint32_t)(int32_t)src[c2], (uint32_t)(int32_t)src[c3]);
            tt_store32h(dst + i, __sadd16(a, nzz));
            tt_store32h(dst + i + 2, __sadd16(b, nzz));
        }
        for (; i < n; i++, src += c) dst[i] = (int16_t)(src[0] - x_zero);
    }
}

/* Defines `static void NAME(...)`: tt_dw_fill, not inlined (one call per channel and strip). */
#define TT_DW_FILL_FN(NAME)                                                                                   \
    static __attribute__((noinline)) void NAME(int16_t *buf, int bw, int pad, int ih_s, int t0, int t1,         \
                                               const int8_t *x, int w, int c, int n, int32_t x_zero) {          \
        tt_dw_fill(buf, bw, pad, ih_s, t0, t1, x, w, c, n, x_zero);                                               \
    }

/* Channel ch's k x k taps (wt: HWC, c channels) packed for SMLAD: wp[a][q] = (w[a][2q], w[a][2q + 1]),
 * wp[a][M] = w[a][k - 1] in the low halfword, M = (k - 1) / 2. */
static inline __attribute__((always_inline)) void tt_dw_pack_taps(const int8_t *wt, int k, int c, int ch,
                                                                  uint32_t *wp) {
    const int M = (k - 1) / 2;
    for (int a = 0; a < k; a++, wp += M + 1) {
        const int8_t *wr = wt + (size_t)a * k * c + ch;
        for (int q = 0; q < M; q++)
            wp[q] = tt_pack_lo((uint32_t)(int32_t)wr[2 * q * c], (uint32_t)(int32_t)wr[(2 * q + 1) * c]);
        wp[M] = (uint32_t)(int32_t)wr[(k - 1) * c] & 0xFFFFu;
    }
}

/* ---- 3x3 stride 1: every tap pair word aligned, four channels filled at once ----
 * The plane holds every row and column the outputs read (rows outside the image are zero rows of the plane too),
 * so each output row is one branch-free loop. With X[i] = the aligned halfword pair at plane columns i, i + 1
 * (i even), A = (w0, w1) and B = (w1, w2) of one kernel row, the two outputs at even column j are
 *   out j     += SMLAD(X[j], A) + SMLABT(X[j + 2], B)      (x[j] w0 + x[j+1] w1, then x[j+2] w2)
 *   out j + 1 += SMLATB(X[j], A) + SMLAD(X[j + 2], B)      (x[j+1] w0, then x[j+2] w1 + x[j+3] w2)
 * so 3 aligned word loads feed 8 multiplies of 4 outputs per kernel row (6 MAC instructions per output). The
 * sums are exact (|sum| < 2^19, no wrap), so their order does not matter. Requantization as tt_requant_dsp, the
 * float part of four outputs in one asm block (two-register VMOVs). */
#define TT_DW3_PRM_WORDS 13 /* taps [3][2]: (w0, w1), (w1, w2) per kernel row; y_zero; bias x 3; 8 n4; rows; m (VLDM s16-s28) */

/* prm[0..5] = channel ch's taps (wt: HWC, c channels) packed as above, prm[6] = y_zero, prm[7..9] = bias,
 * prm[12] = m (bits); prm[10..11] are set by tt_dw3s1_plane. */
static inline __attribute__((always_inline)) void tt_dw3_prm(const int8_t *wt, int c, int ch, int32_t y_zero,
                                                            int32_t bias, float m, uint32_t *wp) {
    wp[6] = (uint32_t)y_zero, wp[7] = wp[8] = wp[9] = (uint32_t)bias, wp[12] = tt_f32_bits(m);
    for (int a = 0; a < 3; a++) {
        const int8_t *wr = wt + (size_t)a * 3 * c + ch;
        const uint32_t w0 = (uint32_t)(int32_t)wr[0], w1 = (uint32_t)(int32_t)wr[c], w2 = (uint32_t)(int32_t)wr[2 * c];
        wp[2 * a] = tt_pack_lo(w0, w1);
        wp[2 * a + 1] = tt_pack_lo(w1, w2);
    }
}

/* tt_dw3_prm of channels ch .. ch + 3 (wp[i]: channel ch + i): each tap of the four channels is one word load,
 * SXTB16 gives channels (0, 2) and (1, 3) as halfwords, PKHBT / PKHTB pair the taps. */
static inline __attribute__((always_inline)) void tt_dw3_prm4(const int8_t *wt, int c, int ch, int32_t y_zero,
                                                             const int32_t *bias, const float *m,
                                                             uint32_t (*wp)[TT_DW3_PRM_WORDS]) {
    for (int i = 0; i < 4; i++) {
        wp[i][6] = (uint32_t)y_zero, wp[i][7] = wp[i][8] = wp[i][9] = (uint32_t)bias[ch + i];
        wp[i][12] = tt_f32_bits(m[ch + i]);
    }
    for (int a = 0; a < 3; a++) {
        const int8_t *wr = wt + (size_t)a * 3 * c + ch;
        const uint32_t t0 = tt_load32(wr), t1 = tt_load32(wr + c), t2 = tt_load32(wr + 2 * c);
        const uint32_t e0 = __sxtb16(t0), e1 = __sxtb16(t1), e2 = __sxtb16(t2); /* channels 0, 2 */
        const uint32_t o0 = tt_sxtb16_ror8(t0), o1 = tt_sxtb16_ror8(t1), o2 = tt_sxtb16_ror8(t2); /* 1, 3 */
        wp[0][2 * a] = tt_pkhbt16(e0, e1), wp[0][2 * a + 1] = tt_pkhbt16(e1, e2);
        wp[1][2 * a] = tt_pkhbt16(o0, o1), wp[1][2 * a + 1] = tt_pkhbt16(o1, o2);
        wp[2][2 * a] = tt_pkhtb16(e0, e1), wp[2][2 * a + 1] = tt_pkhtb16(e1, e2);
        wp[3][2 * a] = tt_pkhtb16(o0, o1), wp[3][2 * a + 1] = tt_pkhtb16(o1, o2);
    }
}

/* hi(a) * lo(b), signed halfwords (the host form of SMULTB). */
static inline int32_t tt_smultb(uint32_t a, uint32_t b) {
    return (int32_t)(int16_t)(uint16_t)(a >> 16) * (int32_t)(int16_t)(uint16_t)(b & 0xFFFFu);
}

/* v[i] = rne(f32(v[i]) * m), saturating (tt_cvtr_s32), for four values (the host form of the asm loop's
 * requantization). */
static inline void tt_cvt_mul_rne4(int32_t *v0, int32_t *v1, int32_t *v2, int32_t *v3, float m) {
    *v0 = tt_cvtr_s32((float)*v0 * m);
    *v1 = tt_cvtr_s32((float)*v1 * m);
    *v2 = tt_cvtr_s32((float)*v2 * m);
    *v3 = tt_cvtr_s32((float)*v3 * m);
}

/* Four outputs per pass: n4 passes per output row from plane row pointers p0, p1, p2 (kernel rows 0, 1, 2 at the
 * pass's first column), outputs at o, o + c, ...; rows > 1 only when wo = 4 n4 (the next row's outputs follow,
 * its plane rows start 2 halfwords after the last pass); then the next of nch channels: the row pointers move by
 * k1 bytes, the output pointer by k2, prm by one block. prm[i]: channel i's block (tt_dw3_prm, with n4 and rows
 * set by the caller). fold: every channel's bias starts its sums (tt_dw3_fold). */
#if defined(__ARM_FEATURE_DSP) && !defined(TT_NO_DSP) && defined(__ARM_FP)
/* Device: one asm loop; a channel's block waits in s16-s28 (VLDM) and comes over two words at a time (VMOV Rt,
 * Rt2, Sm, Sm+1), so the loop fits the 14 core registers: 3 row pointers, output pointer, c, end, 2 taps,
 * 2 plane words, 4 sums; the channel loop's state in s8-s11. A folded bias starts the sums (two VMOVs);
 * otherwise they start at 0 and QADD adds it. Per pass: 3 x (VMOV, LDRD, LDR, 8 multiplies), the bias (2 VMOV or
 * VMOV + 4 QADD), VMOV x3, VCVT/VMUL/VCVTR x4, VMOV x2, QADD y_zero, SSAT, STRB x4, 2 ADD, CMP, BNE: 68 (71)
 * instructions for 4 outputs (36 MACs); per output row 8 more, per channel 14. */
#define TT_DW3_ROW(SA, SB, P, FIRST4)                                                                        \
    "vmov %[A], %[B], " SA ", " SB "\n\t"                                                                     \
    "ldrd %[u], %[v], [%[" P "]], #8\n\t"                                                                     \
    FIRST4                                                                                                    \
    "ldr %[u], [%[" P "]]\n\t"                                                                                \
    "smlabt %[a0], %[v], %[B], %[a0]\n\t"                                                                     \
    "smlad %[a1], %[v], %[B], %[a1]\n\t"                                                                      \
    "smlabt %[a2], %[u], %[B], %[a2]\n\t"                                                                     \
    "smlad %[a3], %[u], %[B], %[a3]\n\t"
/* the products of X[j] (u) and X[j + 2] (v) with A: into the sums, or starting them */
#define TT_DW3_ACC4                                                                                           \
    "smlad %[a0], %[u], %[A], %[a0]\n\t"                                                                      \
    "smlatb %[a1], %[u], %[A], %[a1]\n\t"                                                                     \
    "smlad %[a2], %[v], %[A], %[a2]\n\t"                                                                      \
    "smlatb %[a3], %[v], %[A], %[a3]\n\t"
#define TT_DW3_MUL4                                                                                           \
    "smuad %[a0], %[u], %[A]\n\t"                                                                             \
    "smultb %[a1], %[u], %[A]\n\t"                                                                            \
    "smuad %[a2], %[v], %[A]\n\t"                                                                             \
    "smultb %[a3], %[v], %[A]\n\t"
/* Requantize and store the four int32 sums a0..a3 of one channel (outputs c bytes apart; o moves on by 4c):
 * CVT to float (vcvt.f32.s32; the in-place groups read some sums unsigned), times m in register M, round
 * (VCVTR), + y_zero (register YZ, through %[A]), saturate to int8. Shared by TT_DW3_ASM and the in-place groups
 * (ops/tt_conv2d_inplace.c). Scratch: s12-s15. */
#define TT_DW_REQ4_STORE(CVT, M, YZ)                                                                          \
    "vmov s12, s13, %[a0], %[a1]\n\t"                                                                         \
    "vmov s14, s15, %[a2], %[a3]\n\t"                                                                         \
    CVT " s12, s12\n\t"                                                                                       \
    CVT " s13, s13\n\t"                                                                                       \
    CVT " s14, s14\n\t"                                                                                       \
    CVT " s15, s15\n\t"                                                                                       \
    "vmul.f32 s12, s12, " M "\n\t"                                                                            \
    "vmul.f32 s13, s13, " M "\n\t"                                                                            \
    "vmul.f32 s14, s14, " M "\n\t"                                                                            \
    "vmul.f32 s15, s15, " M "\n\t"                                                                            \
    "vcvtr.s32.f32 s12, s12\n\t"                                                                              \
    "vcvtr.s32.f32 s13, s13\n\t"                                                                              \
    "vcvtr.s32.f32 s14, s14\n\t"                                                                              \
    "vcvtr.s32.f32 s15, s15\n\t"                                                                              \
    "vmov %[A], " YZ "\n\t"                                                                                   \
    "vmov %[a0], %[a1], s12, s13\n\t"                                                                         \
    "vmov %[a2], %[a3], s14, s15\n\t"                                                                         \
    "qadd %[a0], %[a0], %[A]\n\t"                                                                             \
    "qadd %[a1], %[a1], %[A]\n\t"                                                                             \
    "qadd %[a2], %[a2], %[A]\n\t"                                                                             \
    "qadd %[a3], %[a3], %[A]\n\t"                                                                             \
    "ssat %[a0], #8, %[a0]\n\t"                                                                               \
    "ssat %[a1], #8, %[a1]\n\t"                                                                               \
    "ssat %[a2], #8, %[a2]\n\t"                                                                               \
    "ssat %[a3], #8, %[a3]\n\t"                                                                               \
    "strb %[a0], [%[o]]\n\t"                                                                                  \
    "strb %[a1], [%[o], %[c]]\n\t"                                                                            \
    "add %[o], %[o], %[c], lsl #1\n\t"                                                                        \
    "strb %[a2], [%[o]]\n\t"                                                                                  \
    "strb %[a3], [%[o], %[c]]\n\t"                                                                            \
    "add %[o], %[o], %[c], lsl #1\n\t"
#define TT_DW3_ASM(INIT, FIRST4, BIAS)                                                                        \
    __asm volatile(                                                                                           \
        "vmov s8, s9, %[A], %[B]\n\t"   /* prm, channels left */                                              \
        "vmov s10, s11, %[u], %[v]\n"   /* k1, k2 */                                                          \
        "4:\n\t"                                                                                              \
        "vmov %[A], s8\n\t"                                                                                   \
        "vldm %[A]!, {s16-s28}\n\t"                                                                           \
        "vmov s8, %[A]\n\t"                                                                                   \
        "vmov %[A], s26\n\t"                                                                                  \
        "add %[end], %[p0], %[A]\n"                                                                           \
        "1:\n\t" INIT                                                                                          \
        TT_DW3_ROW("s16", "s17", "p0", FIRST4)                                                                 \
        TT_DW3_ROW("s18", "s19", "p1", TT_DW3_ACC4)                                                            \
        TT_DW3_ROW("s20", "s21", "p2", TT_DW3_ACC4)                                                            \
        BIAS                                                                                                  \
        TT_DW_REQ4_STORE("vcvt.f32.s32", "s28", "s22")                                                        \
        "cmp %[p0], %[end]\n\t"                                                                               \
        "bne 1b\n\t"                                                                                          \
        /* next output row (wo = 4 n4: the outputs continue; the plane rows are 4 n4 + 2 halfwords apart) */   \
        "vmov %[A], %[B], s26, s27\n\t"                                                                       \
        "adds %[p0], %[p0], #4\n\t"                                                                           \
        "adds %[p1], %[p1], #4\n\t"                                                                           \
        "adds %[p2], %[p2], #4\n\t"                                                                           \
        "add %[end], %[p0], %[A]\n\t"                                                                         \
        "subs %[B], %[B], #1\n\t"                                                                             \
        "vmov s27, %[B]\n\t"                                                                                  \
        "bne 1b\n\t"                                                                                          \
        /* next channel */                                                                                    \
        "vmov %[A], %[B], s10, s11\n\t"                                                                       \
        "add %[p0], %[p0], %[A]\n\t"                                                                          \
        "add %[p1], %[p1], %[A]\n\t"                                                                          \
        "add %[p2], %[p2], %[A]\n\t"                                                                          \
        "add %[o], %[o], %[B]\n\t"                                                                            \
        "vmov %[A], s9\n\t"                                                                                   \
        "subs %[A], %[A], #1\n\t"                                                                             \
        "vmov s9, %[A]\n\t"                                                                                   \
        "bne 4b"                                                                                              \
        : [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), [o] "+r"(o), [end] "=&r"(end), [A] "+r"(A), [B] "+r"(B), \
          [u] "+r"(u), [v] "+r"(v), [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3)              \
        : [c] "r"(c)                                                                                          \
        : "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21",       \
          "s22", "s23", "s24", "s25", "s26", "s27", "s28", "cc", "memory")

static inline __attribute__((always_inline)) void tt_dw3s1_run(const int16_t *p0, const int16_t *p1,
                                                              const int16_t *p2, int nch, int32_t k1, int32_t k2,
                                                              int8_t *o, int c, uint32_t (*prm)[TT_DW3_PRM_WORDS],
                                                              int fold) {
    const int16_t *end;
    uint32_t A = (uint32_t)prm[0], B = (uint32_t)nch, u = (uint32_t)k1, v = (uint32_t)k2;
    int32_t a0, a1, a2, a3;
    if (fold) {
        TT_DW3_ASM("vmov %[a0], %[a1], s23, s24\n\t"
                   "vmov %[a2], %[a3], s24, s25\n\t",
                   TT_DW3_ACC4, "");
    } else {
        TT_DW3_ASM("", TT_DW3_MUL4,
                   "vmov %[A], %[B], s22, s23\n\t"
                   "qadd %[a0], %[a0], %[B]\n\t"
                   "qadd %[a1], %[a1], %[B]\n\t"
                   "qadd %[a2], %[a2], %[B]\n\t"
                   "qadd %[a3], %[a3], %[B]\n\t");
    }
}
#else
static inline void tt_dw3s1_run(const int16_t *p0, const int16_t *p1, const int16_t *p2, int nch, int32_t k1,
                                int32_t k2, int8_t *o, int c, uint32_t (*prm)[TT_DW3_PRM_WORDS], int fold) {
    (void)fold; /* the sums start at 0 and the bias is added saturating: the same integers either way */
    for (int ch = 0; ch < nch; ch++) {
        const uint32_t *q = prm[ch];
        const uint32_t A0 = q[0], B0 = q[1], A1 = q[2], B1 = q[3], A2 = q[4], B2 = q[5];
        const int32_t y_zero = (int32_t)q[6], b = (int32_t)q[7];
        const int n4 = (int)(q[10] / 8), rows = (int)q[11];
        const float mm = tt_bits_f32(q[12]);
        for (int r = 0; r < rows; r++, p0 += 2, p1 += 2, p2 += 2) {
            for (int n = 0; n < n4; n++, p0 += 4, p1 += 4, p2 += 4, o += 4 * (size_t)c) {
                uint32_t u = tt_load32h(p0), v = tt_load32h(p0 + 2), w = tt_load32h(p0 + 4);
                int32_t a0 = __smlabt(v, B0, __smuad(u, A0)), a1 = __smlad(v, B0, tt_smultb(u, A0));
                int32_t a2 = __smlabt(w, B0, __smuad(v, A0)), a3 = __smlad(w, B0, tt_smultb(v, A0));
                u = tt_load32h(p1), v = tt_load32h(p1 + 2), w = tt_load32h(p1 + 4);
                a0 = __smlabt(v, B1, __smlad(u, A1, a0)), a1 = __smlad(v, B1, __smlatb(u, A1, a1));
                a2 = __smlabt(w, B1, __smlad(v, A1, a2)), a3 = __smlad(w, B1, __smlatb(v, A1, a3));
                u = tt_load32h(p2), v = tt_load32h(p2 + 2), w = tt_load32h(p2 + 4);
                a0 = __smlabt(v, B2, __smlad(u, A2, a0)), a1 = __smlad(v, B2, __smlatb(u, A2, a1));
                a2 = __smlabt(w, B2, __smlad(v, A2, a2)), a3 = __smlad(w, B2, __smlatb(v, A2, a3));
                a0 = __qadd(a0, b), a1 = __qadd(a1, b), a2 = __qadd(a2, b), a3 = __qadd(a3, b);
                tt_cvt_mul_rne4(&a0, &a1, &a2, &a3, mm);
                o[0] = (int8_t)__ssat(__qadd(a0, y_zero), 8);
                o[c] = (int8_t)__ssat(__qadd(a1, y_zero), 8);
                o[2 * c] = (int8_t)__ssat(__qadd(a2, y_zero), 8);
                o[3 * c] = (int8_t)__ssat(__qadd(a3, y_zero), 8);
            }
        }
        p0 = (const int16_t *)((const char *)p0 + k1), p1 = (const int16_t *)((const char *)p1 + k1);
        p2 = (const int16_t *)((const char *)p2 + k1), o += k2;
    }
}
#endif

/* tt_dw3s1_run out of line (one copy per op file: TT_DW3_PLANE_FN). */
typedef void (*tt_dw3_run_fn)(const int16_t *p0, const int16_t *p1, const int16_t *p2, int nch, int32_t k1,
                              int32_t k2, int8_t *o, int c, uint32_t (*prm)[TT_DW3_PRM_WORDS], int fold);

/* 1 when the bias cannot saturate a 3x3 sum (|sum| <= 9 * 255 * 128 < 2^19), so it may start the sums. */
static inline int tt_dw3_fold(int32_t bias) {
    return bias >= INT32_MIN + (1 << 19) && bias <= INT32_MAX - (1 << 19);
}

/* Output rows [r0, r1) of g channels (planes psz halfwords apart, y: the first channel's first output, HWC with wo
 * columns and c channels) from their planes (plane row i = input row ih_s + i, column 0 = input column -pad, bw
 * halfwords per row, even; every row and column the outputs read present, zero outside the image); prm[i]:
 * tt_dw3_prm of channel i. */
static inline __attribute__((always_inline)) void tt_dw3s1_plane(const int16_t *buf, int psz, int g, int bw,
                                                                int ih_s, int r0, int r1, int wo, int c, int pad,
                                                                uint32_t (*prm)[TT_DW3_PRM_WORDS], int8_t *y,
                                                                tt_dw3_run_fn run) {
    const int n4 = wo >> 2, rows = r1 - r0;
    int fold = 1;
    for (int i = 0; i < g; i++) {
        prm[i][10] = (uint32_t)(8 * n4), prm[i][11] = (uint32_t)((wo & 3) == 0 ? rows : 1);
        fold &= tt_dw3_fold((int32_t)prm[i][7]);
    }
    const int16_t *p = buf + (size_t)(r0 - pad - ih_s) * bw;
    y += (size_t)r0 * wo * c;
    if ((wo & 3) == 0) { /* all rows and channels in one loop */
        if (n4 > 0)
            run(p, p + bw, p + 2 * bw, g, 2 * psz - 2 * rows * bw, 1 - rows * wo * c, y, c, prm, fold);
        return;
    }
    for (int i = 0; i < g; i++, p += psz, y++) {
        const int32_t y_zero = (int32_t)prm[i][6], b = (int32_t)prm[i][7];
        const float mm = tt_bits_f32(prm[i][12]);
        const int16_t *pr = p;
        for (int oh = r0; oh < r1; oh++, pr += bw) {
            int8_t *o = y + (size_t)(oh - r0) * wo * c;
            if (n4 > 0) run(pr, pr + bw, pr + 2 * bw, 1, 0, 0, o, c, prm + i, fold);
            const int16_t *q = pr + 4 * n4;
            o += 4 * (size_t)n4 * c;
            for (int j = 4 * n4; j < wo; j += 2, q += 2, o += 2 * (size_t)c) { /* a 2-block (second output
                                                                               * discarded past wo), maybe two */
                int32_t a0 = 0, a1 = 0;
#pragma GCC unroll 3
                for (int a = 0; a < 3; a++) {
                    const uint32_t u = tt_load32h(q + a * bw), v = tt_load32h(q + a * bw + 2);
                    a0 = __smlabt(v, prm[i][2 * a + 1], __smlad(u, prm[i][2 * a], a0));
                    a1 = __smlad(v, prm[i][2 * a + 1], __smlatb(u, prm[i][2 * a], a1));
                }
                o[0] = tt_requant_dsp(a0, b, mm, y_zero);
                if (j + 1 < wo) o[c] = tt_requant_dsp(a1, b, mm, y_zero);
            }
        }
    }
}

/* The plane function of 3x3 stride 1 and its asm loop (noinline, one copy per op file): g channels (planes psz
 * halfwords apart, prm[i], outputs from y + i). */
#define TT_DW3_PLANE_FN(NAME)                                                                                 \
    static __attribute__((noinline)) void NAME##_run(const int16_t *p0, const int16_t *p1, const int16_t *p2,      \
                                                     int nch, int32_t k1, int32_t k2, int8_t *o, int c,          \
                                                     uint32_t (*prm)[TT_DW3_PRM_WORDS], int fold) {              \
        tt_dw3s1_run(p0, p1, p2, nch, k1, k2, o, c, prm, fold);                                                   \
    }                                                                                                         \
    static __attribute__((noinline)) void NAME(const int16_t *buf, int psz, int g, int bw, int ih_s, int r0,     \
                                               int r1, int wo, int c, int pad, uint32_t (*prm)[TT_DW3_PRM_WORDS], \
                                               int8_t *y) {                                                      \
        tt_dw3s1_plane(buf, psz, g, bw, ih_s, r0, r1, wo, c, pad, prm, y, NAME##_run);                            \
    }

/* Rows [t0, t1) of channels ch .. ch + 3 into four planes psz halfwords apart (x: channel ch of an HWC map, w
 * columns, c >= 4 channels; plane column pad + iw = x[ih][iw] - x_zero for iw < n). Every store is an aligned
 * word of two plane columns: a pixel pair gives one word per plane (two word loads of four channels, four SXTAB16
 * minus x_zero, four PKHBT/PKHTB, four stores); a first column at an odd plane column is stored with the zero
 * pad column before it, a last one at an even column with the zero pad column after it. */
#if defined(__ARM_FEATURE_DSP) && !defined(TT_NO_DSP)
/* One pixel pair of four channels into the four planes (operands u, v, a, b, t scratch; s source, advanced by
 * two pixels; d plane pointer, advanced by one word; c channel stride; z the x_zero pair; pb, pb3 plane offsets). */
#define TT_DW_FILL4_PAIR \
    "ldr %[u], [%[s]]\n\t" \
    "ldr %[v], [%[s], %[c]]\n\t" \
    "add %[s], %[s], %[c], lsl #1\n\t" \
    "sxtab16 %[a], %[z], %[u]\n\t" \
    "sxtab16 %[b], %[z], %[v]\n\t" \
    "sxtab16 %[u], %[z], %[u], ror #8\n\t" \
    "sxtab16 %[v], %[z], %[v], ror #8\n\t" \
    "pkhbt %[t], %[a], %[b], lsl #16\n\t" \
    "pkhtb %[a], %[b], %[a], asr #16\n\t" \
    "pkhbt %[b], %[u], %[v], lsl #16\n\t" \
    "pkhtb %[u], %[v], %[u], asr #16\n\t" \
    "str %[b], [%[d], %[pb]]\n\t" \
    "str %[a], [%[d], %[pb], lsl #1]\n\t" \
    "str %[u], [%[d], %[pb3]]\n\t" \
    "str %[t], [%[d]], #4\n\t"
static inline __attribute__((always_inline)) void tt_dw_fill4_pairs(const int8_t *src, int c, int16_t *d, int np,
                                                                    int psz, uint32_t nzz) {
    if (np <= 0) return;
    const int16_t *end = d + 2 * np;
    const int pb = 2 * psz, pb3 = 6 * psz;
    uint32_t u, v, a, b, t;
    __asm volatile("1:\n\t"
                   TT_DW_FILL4_PAIR
                   "cmp %[d], %[end]\n\t"
                   "bne 1b"
                   : [s] "+r"(src), [d] "+r"(d), [u] "=&r"(u), [v] "=&r"(v), [a] "=&r"(a), [b] "=&r"(b),
                     [t] "=&r"(t)
                   : [c] "r"(c), [pb] "r"(pb), [pb3] "r"(pb3), [end] "r"(end), [z] "r"(nzz)
                   : "cc", "memory");
}
/* pad odd and n even: every row is (pad, x[0]), the pairs (x[1], x[2]) ..., (x[n - 1], pad): n / 2 + 1 words
 * per plane, and the next row follows (bw = n + 2); all `rows` rows in one loop. */
#define TT_DW_FILL4_ROWS 1
static inline __attribute__((always_inline)) void tt_dw_fill4_rows(const int8_t *src, int c, int16_t *d, int np,
                                                                   int rows, int psz, uint32_t nzz) {
    if (rows <= 0) return;
    const int pb = 2 * psz, pb3 = 6 * psz, np4 = 4 * np;
    const int16_t *end;
    uint32_t u, v, a, b, t;
    __asm volatile("2:\n\t" /* (pad, x[0]) */
                   "ldr %[u], [%[s]]\n\t"
                   "add %[s], %[s], %[c]\n\t"
                   "sxtab16 %[a], %[z], %[u]\n\t"
                   "sxtab16 %[u], %[z], %[u], ror #8\n\t"
                   "lsl %[t], %[a], #16\n\t"
                   "bfc %[a], #0, #16\n\t"
                   "lsl %[b], %[u], #16\n\t"
                   "bfc %[u], #0, #16\n\t"
                   "str %[b], [%[d], %[pb]]\n\t"
                   "str %[a], [%[d], %[pb], lsl #1]\n\t"
                   "str %[u], [%[d], %[pb3]]\n\t"
                   "str %[t], [%[d]], #4\n\t"
                   "adds %[e], %[d], %[np4]\n\t"
                   "cmp %[d], %[e]\n\t"
                   "beq 3f\n"
                   "1:\n\t"
                   TT_DW_FILL4_PAIR
                   "cmp %[d], %[e]\n\t"
                   "bne 1b\n"
                   "3:\n\t" /* (x[n - 1], pad) */
                   "ldr %[u], [%[s]]\n\t"
                   "add %[s], %[s], %[c]\n\t"
                   "sxtab16 %[a], %[z], %[u]\n\t"
                   "sxtab16 %[u], %[z], %[u], ror #8\n\t"
                   "uxth %[t], %[a]\n\t"
                   "lsr %[a], %[a], #16\n\t"
                   "uxth %[b], %[u]\n\t"
                   "lsr %[u], %[u], #16\n\t"
                   "str %[b], [%[d], %[pb]]\n\t"
                   "str %[a], [%[d], %[pb], lsl #1]\n\t"
                   "str %[u], [%[d], %[pb3]]\n\t"
                   "str %[t], [%[d]], #4\n\t"
                   "subs %[rows], %[rows], #1\n\t"
                   "bne 2b"
                   : [s] "+r"(src), [d] "+r"(d), [rows] "+r"(rows), [e] "=&r"(end), [u] "=&r"(u), [v] "=&r"(v),
                     [a] "=&r"(a), [b] "=&r"(b), [t] "=&r"(t)
                   : [c] "r"(c), [pb] "r"(pb), [pb3] "r"(pb3), [np4] "r"(np4), [z] "r"(nzz)
                   : "cc", "memory");
}
#else
static inline void tt_dw_fill4_pairs(const int8_t *src, int c, int16_t *d, int np, int psz, uint32_t nzz) {
    for (int k = 0; k < np; k++, src += 2 * (size_t)c, d += 2) {
        const uint32_t u = tt_load32(src), v = tt_load32(src + c);
        const uint32_t u02 = __sxtab16(nzz, u), u13 = tt_sxtab16_ror8(nzz, u);
        const uint32_t v02 = __sxtab16(nzz, v), v13 = tt_sxtab16_ror8(nzz, v);
        tt_store32h(d, tt_pack_lo(u02, v02));
        tt_store32h(d + psz, tt_pack_lo(u13, v13));
        tt_store32h(d + 2 * psz, tt_pack_hi(u02, v02));
        tt_store32h(d + 3 * psz, tt_pack_hi(u13, v13));
    }
}
#endif

static inline __attribute__((always_inline)) void tt_dw_fill4(int16_t *buf, int psz, int bw, int pad, int ih_s,
                                                              int t0, int t1, const int8_t *x, int w, int c, int n,
                                                              int32_t x_zero) {
    const uint32_t nzz = ((uint32_t)(uint16_t)(int16_t)-x_zero) * 0x00010001u;
    const int odd = pad & 1, np = (n - odd) >> 1, last = (n - odd) & 1;
    int16_t *dst = buf + (size_t)(t0 - ih_s) * bw + (pad - odd); /* word aligned */
    const int8_t *src = x + (size_t)t0 * w * c;
#ifdef TT_DW_FILL4_ROWS
    if (odd && last && n == w && bw == n + 2) {
        tt_dw_fill4_rows(src, c, dst, np, t1 - t0, psz, nzz);
        return;
    }
#endif
    for (int ih = t0; ih < t1; ih++, dst += bw, src += (size_t)w * c) {
        int16_t *d = dst;
        const int8_t *sp = src;
        if (odd) { /* (pad, x[0]) */
            const uint32_t u = tt_load32(sp), u02 = __sxtab16(nzz, u), u13 = tt_sxtab16_ror8(nzz, u);
            tt_store32h(d, u02 << 16);
            tt_store32h(d + psz, u13 << 16);
            tt_store32h(d + 2 * psz, u02 & 0xFFFF0000u);
            tt_store32h(d + 3 * psz, u13 & 0xFFFF0000u);
            d += 2, sp += c;
        }
        tt_dw_fill4_pairs(sp, c, d, np, psz, nzz);
        if (last) { /* (x[n - 1], pad) */
            const uint32_t u = tt_load32(sp + (size_t)2 * np * c), u02 = __sxtab16(nzz, u),
                           u13 = tt_sxtab16_ror8(nzz, u);
            int16_t *e = d + 2 * np;
            tt_store32h(e, u02 & 0xFFFFu);
            tt_store32h(e + psz, u13 & 0xFFFFu);
            tt_store32h(e + 2 * psz, u02 >> 16);
            tt_store32h(e + 3 * psz, u13 >> 16);
        }
    }
}

/* Defines `static void NAME(...)`: tt_dw_fill4, not inlined. */
#define TT_DW_FILL4_FN(NAME)                                                                                  \
    static __attribute__((noinline)) void NAME(int16_t *buf, int psz, int bw, int pad, int ih_s, int t0, int t1,  \
                                               const int8_t *x, int w, int c, int n, int32_t x_zero) {           \
        tt_dw_fill4(buf, psz, bw, pad, ih_s, t0, t1, x, w, c, n, x_zero);                                         \
    }

/* The 3x3 stride 1 stack budget: what the one-plane layout needs for this layer (its rows, at most
 * TT_DW_BUF_HALFWORDS; the general path's size), at least TT_DW3_MIN_HALFWORDS, the four parameter blocks (prm)
 * included, so the stack high-water is no larger than the one-plane path's on the layers that set it. Four planes
 * when they hold at least 2 output rows (or all of them), else one. Returns the output rows per strip (0: too wide
 * for the plane), *g the planes, *psz the halfwords per plane. */
#define TT_DW3_MIN_HALFWORDS 512
static inline int tt_dw3_layout(int ho, int bw, int c, int *g, int *psz) {
    const int one = TT_DW_BUF_HALFWORDS / bw < ho + 2 ? TT_DW_BUF_HALFWORDS / bw : ho + 2;
    int budget = one * bw < TT_DW3_MIN_HALFWORDS ? TT_DW3_MIN_HALFWORDS : one * bw;
    budget -= 4 * TT_DW3_PRM_WORDS * 2;
    int rows = budget / (4 * bw);
    *g = 4;
    if (c < 4 || (rows - 2 < 2 && rows - 2 < ho)) *g = 1, rows = budget / bw;
    if (rows < 3) return 0;
    const int rs = rows - 2 < ho ? rows - 2 : ho;
    *psz = (rs + 2) * bw;
    return rs;
}

/* Zero rows [a, b) of g planes psz halfwords apart, bw halfwords per row. */
static inline void tt_dw_zero_rows(int16_t *buf, int g, int psz, int bw, int a, int b) {
    if (b <= a) return;
    for (int i = 0; i < g; i++) __builtin_memset(buf + (size_t)i * psz + (size_t)a * bw, 0, (size_t)(b - a) * bw * 2);
}
#endif

/* ---- float: the depthwise input gradient of one channel over a zero-padded plane (stride 1 or 2) ----
 * Shared by tt_dwconv2d_bwd_input_f32 (ops/tt_conv2d_bwd.c) and the fused block backward
 * (ops/tt_ir_block_bwd.c). The plane P holds t = g * s at [oh + pt][ow + pl], zeros around it, so every input element is a sum over all its taps
 * (ta asc, tb asc; stride 2: the taps of its parity) without bounds checks:
 *   dx[ih][iw] = sum of P[(ih + pad - ta) / S + pt][(iw + pad - tb) / S + pl] * w[ta][tb], from +0.0f.
 * A tap outside the map reads a zero: its term t * w is +-0, and acc + (+-0) is acc for acc != 0 and +0 for
 * acc = +0 (a sum from +0.0f is never -0); fused too (fma(+-0, w, acc) = acc + (+-0) exactly). So the bits are
 * those of skipping the tap, as the contract does. Square kernels 3, 5, 7 (taps unrolled, weights in registers).
 * An optional bit mask (the fused block's pw1 mask: element p of channel ch is bit p * e + ch) is applied as each
 * element is stored. Stack: the plane (at most TT_DWF_PLANE floats, 1.6 KB) and 49 taps. */
#define TT_DWF_PLANE 400

static inline int tt_dwf_keep(const uint8_t *bits, size_t j) {
    return !bits || ((bits[j >> 3] >> (j & 7)) & 1u);
}

static inline __attribute__((always_inline)) void tt_dwf_s1(const float *P, int pw, int h, int w, const float *wk,
                                                           int K, float *out, size_t os, const uint8_t *bits,
                                                           size_t j0, int e) {
    float wr[49];
#pragma GCC unroll 49
    for (int t = 0; t < K * K; t++) wr[t] = wk[t];
    size_t j = j0;
    for (int ih = 0; ih < h; ih++) {
        const float *rw[7]; /* plane row of tap row ta, at the column of iw = 0, tb = 0 (immediate offsets below) */
#pragma GCC unroll 7
        for (int ta = 0; ta < K; ta++) rw[ta] = P + (size_t)(ih + K - 1 - ta) * pw + K - 1;
        float *op = out + (size_t)ih * w * os;
        int iw = 0;
        const int NB = K == 3 ? 4 : 2; /* elements per pass (3x3: 4, 5x5: 2): the plane values they share load once */
        if (K <= 5)
            for (; iw + NB - 1 < w; iw += NB, j += NB * (size_t)e, op += NB * os) {
                float a[4];
#pragma GCC unroll 4
                for (int u = 0; u < NB; u++) a[u] = 0.0f;
#pragma GCC unroll 7
                for (int ta = 0; ta < K; ta++) {
                    const float *r = rw[ta] + iw;
#pragma GCC unroll 7
                    for (int tb = 0; tb < K; tb++) {
                        const float wv = wr[ta * K + tb];
#pragma GCC unroll 4
                        for (int u = 0; u < NB; u++) a[u] = TT_MAC(a[u], r[u - tb], wv);
                    }
                }
#pragma GCC unroll 4
                for (int u = 0; u < NB; u++) op[u * os] = tt_dwf_keep(bits, j + (size_t)u * e) ? a[u] : 0.0f;
            }
        for (; iw < w; iw++, j += (size_t)e, op += os) {
            float acc = 0.0f;
#pragma GCC unroll 7
            for (int ta = 0; ta < K; ta++) {
                const float *r = rw[ta] + iw;
#pragma GCC unroll 7
                for (int tb = 0; tb < K; tb++) acc = TT_MAC(acc, r[-tb], wr[ta * K + tb]);
            }
            *op = tt_dwf_keep(bits, j) ? acc : 0.0f;
        }
    }
}

/* Stride 2: the elements of one parity class (ih + pad = PA, iw + pad = PB mod 2) use the taps ta = PA, PA + 2,
 * ..., tb = PB, PB + 2, ... (ascending). */
static inline __attribute__((always_inline)) void tt_dwf_s2(const float *P, int pw, int pt, int pl, int pad, int h,
                                                           int w, const float *wk, int K, int PA, int PB,
                                                           float *out, size_t os, const uint8_t *bits, int ch,
                                                           int e) {
    float wr[16];
    const int na = (K - PA + 1) / 2, nb = (K - PB + 1) / 2;
#pragma GCC unroll 4
    for (int m = 0; m < na; m++)
#pragma GCC unroll 4
        for (int n = 0; n < nb; n++) wr[m * 4 + n] = wk[(PA + 2 * m) * K + PB + 2 * n];
    for (int ih = (PA - pad) & 1; ih < h; ih += 2) {
        const float *rw[4];
#pragma GCC unroll 4
        for (int m = 0; m < na; m++) rw[m] = P + (size_t)(((ih + pad - PA) >> 1) - m + pt) * pw + pl;
        for (int iw = (PB - pad) & 1; iw < w; iw += 2) {
            const int c = (iw + pad - PB) >> 1;
            float acc = 0.0f;
#pragma GCC unroll 4
            for (int m = 0; m < na; m++) {
                const float *r = rw[m] + c;
#pragma GCC unroll 4
                for (int n = 0; n < nb; n++) acc = TT_MAC(acc, r[-n], wr[m * 4 + n]);
            }
            const size_t p = (size_t)ih * w + iw;
            out[p * os] = tt_dwf_keep(bits, p * (size_t)e + (size_t)ch) ? acc : 0.0f;
        }
    }
}

/* out[p * os] (p = ih * w + iw) = the input gradient of one channel from g[q * gs] (q = oh * wo + ow), scale s
 * (g * s rounded once per element, as the contract's t), weights wt[t * ws] (t = ta * kw + tb). 1 when done; 0
 * when the shape is not served (stride other than 1/2, non-square or even or > 7 kernel, pad >= k, plane larger
 * than TT_DWF_PLANE): the caller runs its general loops. */
static inline int tt_dwf_channel(const float *g, size_t gs, int ho, int wo, float s, const int8_t *wt, size_t ws,
                                 int kh, int kw, int S, int pad, int h, int w, float *out, size_t os,
                                 const uint8_t *bits, int ch, int e) {
    if ((S != 1 && S != 2) || kh != kw || (kw != 3 && kw != 5 && kw != 7) || pad < 0 || pad > kh - 1 || ho < 1 ||
        wo < 1)
        return 0;
    const int pt = (kh - 1 - pad + S - 1) / S, pl = (kw - 1 - pad + S - 1) / S; /* oh >= -pt over all taps */
    int pb = (h - 1 + pad) / S - (ho - 1), pr = (w - 1 + pad) / S - (wo - 1);
    if (pb < 0) pb = 0;
    if (pr < 0) pr = 0;
    const int rows = pt + ho + pb, pw = pl + wo + pr;
    if (rows * pw > TT_DWF_PLANE) return 0;
    float P[rows * pw], wk[49];
    for (int j = 0; j < pt * pw; j++) P[j] = 0.0f; /* the border only: the fill below writes the interior */
    for (int j = (pt + ho) * pw; j < rows * pw; j++) P[j] = 0.0f;
    for (int oh = 0; oh < ho; oh++) {
        float *row = P + (size_t)(oh + pt) * pw, *pr_ = row + pl;
        const float *gp = g + (size_t)oh * wo * gs;
        for (int c = 0; c < pl; c++) row[c] = 0.0f;
        for (int ow = 0; ow < wo; ow++) pr_[ow] = gp[(size_t)ow * gs] * s;
        for (int c = pl + wo; c < pw; c++) row[c] = 0.0f;
    }
    for (int t = 0; t < kh * kw; t++) wk[t] = (float)wt[(size_t)t * ws];
    if (S == 1) {
        if (kw == 3) tt_dwf_s1(P, pw, h, w, wk, 3, out, os, bits, (size_t)ch, e);
        else if (kw == 5) tt_dwf_s1(P, pw, h, w, wk, 5, out, os, bits, (size_t)ch, e);
        else tt_dwf_s1(P, pw, h, w, wk, 7, out, os, bits, (size_t)ch, e);
        return 1;
    }
#define TT_DWF_S2(K)                                                                                            \
    do {                                                                                                        \
        tt_dwf_s2(P, pw, pt, pl, pad, h, w, wk, K, 0, 0, out, os, bits, ch, e);                                 \
        tt_dwf_s2(P, pw, pt, pl, pad, h, w, wk, K, 0, 1, out, os, bits, ch, e);                                 \
        tt_dwf_s2(P, pw, pt, pl, pad, h, w, wk, K, 1, 0, out, os, bits, ch, e);                                 \
        tt_dwf_s2(P, pw, pt, pl, pad, h, w, wk, K, 1, 1, out, os, bits, ch, e);                                 \
    } while (0)
    if (kw == 3) TT_DWF_S2(3);
    else if (kw == 5) TT_DWF_S2(5);
    else TT_DWF_S2(7);
#undef TT_DWF_S2
    return 1;
}

#endif
