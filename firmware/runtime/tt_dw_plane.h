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
 * of packed weights (TT_DW_PACKED_WORDS). */
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
