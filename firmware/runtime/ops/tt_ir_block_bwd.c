/* The channel-wise fused backward of an inverted-residual block of three conv2d ops
 * (CompileOptions.fused_block_backward; tinytrain/ops/conv2d). Compiled through tt_memory_ops.c. */
#include "tt_memory_ops.h"

#include <stddef.h>
#include <string.h>

#include "tt_dot2x2.h"
#include "tt_dsp.h"
#include "tt_dw_plane.h"
#include "tt_kernels.h"
#include "tt_math.h"

/* ---- channel-wise fused block backward: the three per-channel loops, each bit-identical to the plain form ---- */
#define TT_IR_MAX_C 512 /* stack: one float per pw2 output / pw1 input channel (2 KB each); wider: plain loops */
/* Device: the pw2 gradient and dx blocks of 4 pixels x 4 channels in inline assembly with VLDM / VSTM of four
 * floats (s16-s27 fixed, so the four are consecutive registers; C cannot ask for that). The same VMUL / VADD per
 * element in the same order as the C loops, which the host runs. */
#if defined(__arm__) && defined(__thumb2__) && defined(__ARM_FP) && (__ARM_FP & 4) && !defined(TT_NO_ASM)
#define TT_IR_VLDM 1
#define TT_IR_S16_27 "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27"
/* acc += (g[j] * sw[j]) * w[j], j = 0..3 in order; g: one pixel's four floats (s24-s27), sw s16-s19, w s20-s23 */
#define TT_IR_PW2_T                                                                                              \
    "vmul.f32 s24, s24, s16\n\tvmul.f32 s25, s25, s17\n\tvmul.f32 s26, s26, s18\n\tvmul.f32 s27, s27, s19\n\t"
#if TT_FMA /* acc = fma(t, w, acc): one VFMA per term */
#define TT_IR_PW2_PIX(G, A)                                                                                      \
    "vldmia %[" G "]!, {s24-s27}\n\t" TT_IR_PW2_T                                                              \
    "vfma.f32 %[" A "], s24, s20\n\tvfma.f32 %[" A "], s25, s21\n\t"                                          \
    "vfma.f32 %[" A "], s26, s22\n\tvfma.f32 %[" A "], s27, s23\n\t"
/* d[j] = fma(t, w[j], d[j]), j = 0..3 (w in s16-s19), then d += 4 */
#define TT_IR_DX_PIX(D, T)                                                                                       \
    "vldmia %[" D "], {s20-s23}\n\t"                                                                           \
    "vfma.f32 s20, %[" T "], s16\n\tvfma.f32 s21, %[" T "], s17\n\t"                                          \
    "vfma.f32 s22, %[" T "], s18\n\tvfma.f32 s23, %[" T "], s19\n\t"                                          \
    "vstmia %[" D "]!, {s20-s23}\n\t"
#else
#define TT_IR_PW2_PIX(G, A)                                                                                      \
    "vldmia %[" G "]!, {s24-s27}\n\t" TT_IR_PW2_T                                                              \
    "vmul.f32 s24, s24, s20\n\tvmul.f32 s25, s25, s21\n\tvmul.f32 s26, s26, s22\n\tvmul.f32 s27, s27, s23\n\t" \
    "vadd.f32 %[" A "], %[" A "], s24\n\tvadd.f32 %[" A "], %[" A "], s25\n\t"                                \
    "vadd.f32 %[" A "], %[" A "], s26\n\tvadd.f32 %[" A "], %[" A "], s27\n\t"
/* d[j] = d[j] + t * w[j], j = 0..3 (w in s16-s19), then d += 4 */
#define TT_IR_DX_PIX(D, T)                                                                                       \
    "vldmia %[" D "], {s20-s23}\n\t"                                                                           \
    "vmul.f32 s24, %[" T "], s16\n\tvmul.f32 s25, %[" T "], s17\n\t"                                          \
    "vmul.f32 s26, %[" T "], s18\n\tvmul.f32 s27, %[" T "], s19\n\t"                                          \
    "vadd.f32 s20, s20, s24\n\tvadd.f32 s21, s21, s25\n\tvadd.f32 s22, s22, s26\n\tvadd.f32 s23, s23, s27\n\t" \
    "vstmia %[" D "]!, {s20-s23}\n\t"
#endif
#endif

/* d[p] = sum_{o asc} (g[p][o] * s_w2[o]) * f32(w2[o][ch]), masked; the weight column converted once (wf), four
 * pixels per pass (s_w2[o] and wf[o] loaded once for four independent sums). */
static __attribute__((noinline)) void ir_pw2_grad(const tt_ir_block_bwd_args *a, int ch, float *d) {
    const int no = a->ho * a->wo, co2 = a->co2, e = a->e;
    float wf[co2 <= TT_IR_MAX_C ? co2 : 1];
    const int fast = co2 <= TT_IR_MAX_C;
    if (fast)
        for (int o = 0; o < co2; o++) wf[o] = (float)a->w2[(size_t)o * e + ch];
    int p = 0;
    if (fast) {
#ifdef TT_IR_VLDM
        for (; p + 3 < no; p += 4) {
            const float *g0 = a->g + (size_t)p * co2, *g1 = g0 + co2, *g2 = g1 + co2, *g3 = g2 + co2;
            const float *q0 = g0, *q1 = g1, *q2 = g2, *q3 = g3, *sp = a->s_w2, *wp = wf;
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
            int o = 0;
            for (; o + 3 < co2; o += 4)
                __asm volatile("vldmia %[sp]!, {s16-s19}\n\t"
                               "vldmia %[wp]!, {s20-s23}\n\t" TT_IR_PW2_PIX("q0", "a0") TT_IR_PW2_PIX("q1", "a1")
                                   TT_IR_PW2_PIX("q2", "a2") TT_IR_PW2_PIX("q3", "a3")
                               : [a0] "+t"(s0), [a1] "+t"(s1), [a2] "+t"(s2), [a3] "+t"(s3), [q0] "+r"(q0),
                                 [q1] "+r"(q1), [q2] "+r"(q2), [q3] "+r"(q3), [sp] "+r"(sp), [wp] "+r"(wp)
                               :
                               : TT_IR_S16_27, "memory");
            for (; o < co2; o++) {
                const float sw = a->s_w2[o], w = wf[o];
                s0 = TT_MAC(s0, (g0[o] * sw), w);
                s1 = TT_MAC(s1, (g1[o] * sw), w);
                s2 = TT_MAC(s2, (g2[o] * sw), w);
                s3 = TT_MAC(s3, (g3[o] * sw), w);
            }
            d[p] = s0;
            d[p + 1] = s1;
            d[p + 2] = s2;
            d[p + 3] = s3;
        }
#endif
        for (; p + 7 < no; p += 8) {
            const float *g0 = a->g + (size_t)p * co2, *g1 = g0 + co2, *g2 = g1 + co2, *g3 = g2 + co2;
            const float *g4 = g3 + co2, *g5 = g4 + co2, *g6 = g5 + co2, *g7 = g6 + co2;
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f, s4 = 0.0f, s5 = 0.0f, s6 = 0.0f, s7 = 0.0f;
            for (int o = 0; o < co2; o++) {
                const float sw = a->s_w2[o], w = wf[o];
                s0 = TT_MAC(s0, (g0[o] * sw), w);
                s1 = TT_MAC(s1, (g1[o] * sw), w);
                s2 = TT_MAC(s2, (g2[o] * sw), w);
                s3 = TT_MAC(s3, (g3[o] * sw), w);
                s4 = TT_MAC(s4, (g4[o] * sw), w);
                s5 = TT_MAC(s5, (g5[o] * sw), w);
                s6 = TT_MAC(s6, (g6[o] * sw), w);
                s7 = TT_MAC(s7, (g7[o] * sw), w);
            }
            d[p] = s0;
            d[p + 1] = s1;
            d[p + 2] = s2;
            d[p + 3] = s3;
            d[p + 4] = s4;
            d[p + 5] = s5;
            d[p + 6] = s6;
            d[p + 7] = s7;
        }
        for (; p + 3 < no; p += 4) {
            const float *g0 = a->g + (size_t)p * co2, *g1 = g0 + co2, *g2 = g1 + co2, *g3 = g2 + co2;
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
            for (int o = 0; o < co2; o++) {
                const float sw = a->s_w2[o], w = wf[o];
                s0 = TT_MAC(s0, (g0[o] * sw), w);
                s1 = TT_MAC(s1, (g1[o] * sw), w);
                s2 = TT_MAC(s2, (g2[o] * sw), w);
                s3 = TT_MAC(s3, (g3[o] * sw), w);
            }
            d[p] = s0;
            d[p + 1] = s1;
            d[p + 2] = s2;
            d[p + 3] = s3;
        }
    }
    for (; p < no; p++) {
        const float *gp = a->g + (size_t)p * co2;
        float acc = 0.0f;
        for (int o = 0; o < co2; o++) acc = TT_MAC(acc, (gp[o] * a->s_w2[o]), (float)a->w2[(size_t)o * e + ch]);
        d[p] = acc;
    }
    if (a->bits_dw)
        for (p = 0; p < no; p++) {
            const size_t j = (size_t)p * e + ch;
            if (!((a->bits_dw[j >> 3] >> (j & 7)) & 1u)) d[p] = 0.0f;
        }
}

/* g1 = the dw input gradient of channel ch from d (overwritten with d * s_w_dw[ch]), masked. Tap-major: g1 = +0.0f,
 * then for each tap (kh asc, kw asc) g1[ih][iw] += t[oh][ow] * f32(w) over the tap's valid output rectangle. A tap
 * adds at most one term to each element, so every element sums its terms from +0.0f in the contract's order. */
/* Stride 1, one kernel row (taps tb ascending) into one g1 row: each element gets its terms of this row in tb order
 * (v + t[iw + pad - tb] * w[tb]), the order of the tap-major loop, with one load and store of g1 per element
 * instead of one per tap. Interior elements (every tap valid) run unrolled (kw constant); the edges check. */
static inline __attribute__((always_inline)) void ir_dw_row_s1(float *gp, const float *tp, int w, int wo, int pad,
                                                              const float *wk, int kw) {
    int lo = kw - 1 - pad, hi = wo - pad; /* iw + pad - (kw - 1) >= 0 and iw + pad < wo */
    if (lo < 0) lo = 0;
    if (lo > w) lo = w;
    if (hi > w) hi = w;
    if (hi < lo) hi = lo;
    float wr[7]; /* the taps in registers (the loops below are unrolled: constant indices) */
#pragma GCC unroll 7
    for (int tb = 0; tb < kw; tb++) wr[tb] = wk[tb];
    for (int iw = 0; iw < w; iw++) {
        if (iw == lo) {
            for (; iw < hi; iw++) {
                const float *tq = tp + iw + pad;
                float v = gp[iw];
#pragma GCC unroll 7
                for (int tb = 0; tb < kw; tb++) v = TT_MAC(v, tq[-tb], wr[tb]);
                gp[iw] = v;
            }
            if (iw >= w) break;
        }
        float v = gp[iw];
#pragma GCC unroll 7
        for (int tb = 0; tb < kw; tb++) {
            const int ow = iw + pad - tb;
            if (ow >= 0 && ow < wo) v = TT_MAC(v, tp[ow], wr[tb]);
        }
        gp[iw] = v;
    }
}

/* The dw input gradient of channel ch over a zero-padded plane (tt_dw_plane.h, tt_dwf_channel), the pw1 mask
 * applied as each element is stored; 0 when the shape is not served (the tap-major loops below run). */
static __attribute__((noinline)) int ir_dw_grad_plane(const tt_ir_block_bwd_args *a, int ch, const float *d,
                                                      float *g1) {
    return tt_dwf_channel(d, 1, a->ho, a->wo, a->s_w_dw[ch], a->w_dw + ch, (size_t)a->e, a->kh, a->kw, a->stride,
                          a->pad, a->h, a->w, g1, 1, a->bits_pw1, ch, a->e);
}

static __attribute__((noinline)) void ir_dw_grad(const tt_ir_block_bwd_args *a, int ch, float *d, float *g1) {
    if (ir_dw_grad_plane(a, ch, d, g1)) return;
    const int ho = a->ho, wo = a->wo, h = a->h, w = a->w, S = a->stride, pad = a->pad, e = a->e;
    const float s = a->s_w_dw[ch];
    for (int j = 0; j < ho * wo; j++) d[j] = d[j] * s;
    for (int j = 0; j < h * w; j++) g1[j] = 0.0f;
    if (S == 1 && (a->kw == 3 || a->kw == 5 || a->kw == 7)) {
        const int kw = a->kw;
        for (int ta = 0; ta < a->kh; ta++) {
            int oh0 = 0, oh1 = ho; /* oh - pad + ta in [0, h) */
            while (oh0 < oh1 && oh0 - pad + ta < 0) oh0++;
            while (oh1 > oh0 && oh1 - 1 - pad + ta >= h) oh1--;
            float wk[7];
            for (int tb = 0; tb < kw; tb++) wk[tb] = (float)a->w_dw[((size_t)ta * kw + tb) * e + ch];
            for (int oh = oh0; oh < oh1; oh++) {
                float *gp = g1 + (size_t)(oh - pad + ta) * w;
                const float *tp = d + (size_t)oh * wo;
                if (kw == 3) ir_dw_row_s1(gp, tp, w, wo, pad, wk, 3);
                else if (kw == 5) ir_dw_row_s1(gp, tp, w, wo, pad, wk, 5);
                else ir_dw_row_s1(gp, tp, w, wo, pad, wk, 7);
            }
        }
    } else
    for (int ta = 0; ta < a->kh; ta++) {
        int oh0 = 0, oh1 = ho; /* oh * S - pad + ta in [0, h) */
        while (oh0 < oh1 && oh0 * S - pad + ta < 0) oh0++;
        while (oh1 > oh0 && (oh1 - 1) * S - pad + ta >= h) oh1--;
        for (int tb = 0; tb < a->kw; tb++) {
            int ow0 = 0, ow1 = wo;
            while (ow0 < ow1 && ow0 * S - pad + tb < 0) ow0++;
            while (ow1 > ow0 && (ow1 - 1) * S - pad + tb >= w) ow1--;
            const float wv = (float)a->w_dw[((size_t)ta * a->kw + tb) * e + ch];
            const int n = ow1 - ow0;
            for (int oh = oh0; oh < oh1; oh++) {
                const float *tp = d + (size_t)oh * wo + ow0;
                float *gp = g1 + (size_t)(oh * S - pad + ta) * w + ow0 * S - pad + tb;
                int j = 0;
                if (S == 1) {
                    for (; j + 3 < n; j += 4) {
                        const float v0 = TT_MAC(gp[j], tp[j], wv), v1 = TT_MAC(gp[j + 1], tp[j + 1], wv);
                        const float v2 = TT_MAC(gp[j + 2], tp[j + 2], wv), v3 = TT_MAC(gp[j + 3], tp[j + 3], wv);
                        gp[j] = v0;
                        gp[j + 1] = v1;
                        gp[j + 2] = v2;
                        gp[j + 3] = v3;
                    }
                    for (; j < n; j++) gp[j] = TT_MAC(gp[j], tp[j], wv);
                } else {
                    for (; j < n; j++) gp[(size_t)j * S] = TT_MAC(gp[(size_t)j * S], tp[j], wv);
                }
            }
        }
    }
    if (a->bits_pw1)
        for (int p = 0; p < h * w; p++) {
            const size_t j = (size_t)p * e + ch;
            if (!((a->bits_pw1[j >> 3] >> (j & 7)) & 1u)) g1[p] = 0.0f;
        }
}

/* dx[p][i] += (g1[p] * s_w1[ch]) * f32(W1[ch][i]): the row converted once (wf), two pixels per pass. */
static __attribute__((noinline)) void ir_dx_acc(const tt_ir_block_bwd_args *a, int ch, const float *g1) {
    const int ni = a->h * a->w, ci = a->ci, k1 = a->k1;
    const float s1 = a->s_w1[ch];
    const int8_t *wa = a->w1 + (size_t)ch * k1, *wb = a->w1_rest ? a->w1_rest + (size_t)ch * (ci - k1) : 0;
    if (ci > TT_IR_MAX_C) {
        for (int p = 0; p < ni; p++) {
            const float t = g1[p] * s1;
            float *dp = a->dx + (size_t)p * ci;
            for (int i = 0; i < k1; i++) dp[i] = TT_MAC(dp[i], t, (float)wa[i]);
            for (int i = k1; i < ci; i++) dp[i] = TT_MAC(dp[i], t, (float)wb[i - k1]);
        }
        return;
    }
    float wf[ci];
    for (int i = 0; i < k1; i++) wf[i] = (float)wa[i];
    for (int i = k1; i < ci; i++) wf[i] = (float)wb[i - k1];
    int p = 0;
#ifdef TT_IR_VLDM
    for (; p + 3 < ni; p += 4) {
        const float t0 = g1[p] * s1, t1 = g1[p + 1] * s1, t2 = g1[p + 2] * s1, t3 = g1[p + 3] * s1;
        float *d0 = a->dx + (size_t)p * ci, *d1 = d0 + ci, *d2 = d1 + ci, *d3 = d2 + ci;
        const float *wp = wf;
        int i = 0;
        for (; i + 3 < ci; i += 4)
            __asm volatile("vldmia %[wp]!, {s16-s19}\n\t" TT_IR_DX_PIX("d0", "t0") TT_IR_DX_PIX("d1", "t1")
                               TT_IR_DX_PIX("d2", "t2") TT_IR_DX_PIX("d3", "t3")
                           : [wp] "+r"(wp), [d0] "+r"(d0), [d1] "+r"(d1), [d2] "+r"(d2), [d3] "+r"(d3)
                           : [t0] "t"(t0), [t1] "t"(t1), [t2] "t"(t2), [t3] "t"(t3)
                           : TT_IR_S16_27, "memory");
        for (; i < ci; i++, d0++, d1++, d2++, d3++) {
            const float w = wf[i];
            const float v0 = TT_MAC(*d0, t0, w), v1 = TT_MAC(*d1, t1, w), v2 = TT_MAC(*d2, t2, w), v3 = TT_MAC(*d3, t3, w);
            *d0 = v0;
            *d1 = v1;
            *d2 = v2;
            *d3 = v3;
        }
    }
#endif
    for (; p + 7 < ni; p += 8) {
        const float t0 = g1[p] * s1, t1 = g1[p + 1] * s1, t2 = g1[p + 2] * s1, t3 = g1[p + 3] * s1;
        const float t4 = g1[p + 4] * s1, t5 = g1[p + 5] * s1, t6 = g1[p + 6] * s1, t7 = g1[p + 7] * s1;
        float *d0 = a->dx + (size_t)p * ci, *d1 = d0 + ci, *d2 = d1 + ci, *d3 = d2 + ci;
        float *d4 = d3 + ci, *d5 = d4 + ci, *d6 = d5 + ci, *d7 = d6 + ci;
        for (int i = 0; i < ci; i++) {
            const float w = wf[i];
            const float v0 = TT_MAC(d0[i], t0, w), v1 = TT_MAC(d1[i], t1, w), v2 = TT_MAC(d2[i], t2, w), v3 = TT_MAC(d3[i], t3, w);
            const float v4 = TT_MAC(d4[i], t4, w), v5 = TT_MAC(d5[i], t5, w), v6 = TT_MAC(d6[i], t6, w), v7 = TT_MAC(d7[i], t7, w);
            d0[i] = v0;
            d1[i] = v1;
            d2[i] = v2;
            d3[i] = v3;
            d4[i] = v4;
            d5[i] = v5;
            d6[i] = v6;
            d7[i] = v7;
        }
    }
    for (; p + 3 < ni; p += 4) {
        const float t0 = g1[p] * s1, t1 = g1[p + 1] * s1, t2 = g1[p + 2] * s1, t3 = g1[p + 3] * s1;
        float *d0 = a->dx + (size_t)p * ci, *d1 = d0 + ci, *d2 = d1 + ci, *d3 = d2 + ci;
        for (int i = 0; i < ci; i++) {
            const float w = wf[i];
            const float v0 = TT_MAC(d0[i], t0, w), v1 = TT_MAC(d1[i], t1, w), v2 = TT_MAC(d2[i], t2, w), v3 = TT_MAC(d3[i], t3, w);
            d0[i] = v0;
            d1[i] = v1;
            d2[i] = v2;
            d3[i] = v3;
        }
    }
    for (; p + 1 < ni; p += 2) {
        const float t0 = g1[p] * s1, t1 = g1[p + 1] * s1;
        float *d0 = a->dx + (size_t)p * ci, *d1 = d0 + ci;
        for (int i = 0; i < ci; i++) {
            const float w = wf[i];
            const float v0 = TT_MAC(d0[i], t0, w), v1 = TT_MAC(d1[i], t1, w);
            d0[i] = v0;
            d1[i] = v1;
        }
    }
    for (; p < ni; p++) {
        const float t = g1[p] * s1;
        float *dp = a->dx + (size_t)p * ci;
        for (int i = 0; i < ci; i++) dp[i] = TT_MAC(dp[i], t, wf[i]);
    }
}

/* ---- channels in pairs (ch, ch + 1): the pw2 gradient, the dx terms and the pw1 row sums of two channels share
 * their loads (g and g * s_w2 for the pw2 gradient, dx for the dx terms, the converted x1 for the row sums). Each
 * element still gets its terms in the contract's order: channel ch's and ch + 1's sums are independent, and dx
 * gets channel ch's term before ch + 1's, as in the channel-by-channel loop. ---- */
#ifdef TT_IR_VLDM
#define TT_IR_S28_31 "s28", "s29", "s30", "s31"
#if TT_FMA
#define TT_IR_MAC4(A, W0, W1, W2, W3)                                                                           \
    "vfma.f32 %[" A "], s24, " W0 "\n\tvfma.f32 %[" A "], s25, " W1 "\n\t"                                     \
    "vfma.f32 %[" A "], s26, " W2 "\n\tvfma.f32 %[" A "], s27, " W3 "\n\t"
#define TT_IR_DX4(T, W0, W1, W2, W3)                                                                            \
    "vfma.f32 s20, %[" T "], " W0 "\n\tvfma.f32 s21, %[" T "], " W1 "\n\t"                                     \
    "vfma.f32 s22, %[" T "], " W2 "\n\tvfma.f32 s23, %[" T "], " W3 "\n\t"
#else
#define TT_IR_MAC4(A, W0, W1, W2, W3)                                                                           \
    "vmul.f32 %[tm], s24, " W0 "\n\tvadd.f32 %[" A "], %[" A "], %[tm]\n\t"                                    \
    "vmul.f32 %[tm], s25, " W1 "\n\tvadd.f32 %[" A "], %[" A "], %[tm]\n\t"                                    \
    "vmul.f32 %[tm], s26, " W2 "\n\tvadd.f32 %[" A "], %[" A "], %[tm]\n\t"                                    \
    "vmul.f32 %[tm], s27, " W3 "\n\tvadd.f32 %[" A "], %[" A "], %[tm]\n\t"
#define TT_IR_DX4(T, W0, W1, W2, W3)                                                                            \
    "vmul.f32 s24, %[" T "], " W0 "\n\tvmul.f32 s25, %[" T "], " W1 "\n\t"                                     \
    "vmul.f32 s26, %[" T "], " W2 "\n\tvmul.f32 s27, %[" T "], " W3 "\n\t"                                     \
    "vadd.f32 s20, s20, s24\n\tvadd.f32 s21, s21, s25\n\tvadd.f32 s22, s22, s26\n\tvadd.f32 s23, s23, s27\n\t"
#endif
/* one pixel of the pw2 pair: t = g * s_w2 (s24-s27), then a += t * wa (s20-s23), b += t * wb (s28-s31) */
#define TT_IR_PW2_PIX2(G, A, B)                                                                                  \
    "vldmia %[" G "]!, {s24-s27}\n\t" TT_IR_PW2_T TT_IR_MAC4(A, "s20", "s21", "s22", "s23")                     \
        TT_IR_MAC4(B, "s28", "s29", "s30", "s31")
/* one pixel of the dx pair: d[j] += ta * wa[j] (s16-s19), then d[j] += tb * wb[j] (s28-s31), d += 4 */
#define TT_IR_DX_PIX2(D, TA, TB)                                                                                 \
    "vldmia %[" D "], {s20-s23}\n\t" TT_IR_DX4(TA, "s16", "s17", "s18", "s19")                                  \
        TT_IR_DX4(TB, "s28", "s29", "s30", "s31") "vstmia %[" D "]!, {s20-s23}\n\t"
#endif

/* Dual-issue cores (TT_DUAL_ISSUE, the Cortex-M7), default contract: the dx pair's whole i loop in one asm
 * statement, 4 channels x 4 pixels per pass, scheduled for the in-order dual issue (docs/emulation.md): single
 * VLDR / VSTR (each pairs with an FP op; VLDM / VSTM issue alone) and no FP result read within its latency. Per
 * pixel (weights wa s0-s3, wb s4-s7): the products ta * wa[j] (s8-s11) and tb * wb[j] (s12-s15), each beside a
 * store of the previous pixel's sums or a load of this pixel's d (s16-s19), then d[j] + pa[j], then + pb[j]:
 * the same two roundings per term, in the same order, as TT_IR_DX_PIX2. TT_IR_DX_DUAL also selects the pw2 pair's
 * dual-issue loop below (ir_pw2_grad2). */
#if defined(TT_IR_VLDM) && defined(TT_DUAL_ISSUE) && !TT_FMA
#define TT_IR_DX_DUAL 1
#define TT_IR_S0_19                                                                                              \
    "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16", \
        "s17", "s18", "s19"
#define TT_IR_DXD_ADD(X)                                                                                         \
    "vadd.f32 s16, s16, s8\n\tvadd.f32 s17, s17, s9\n\tvadd.f32 s18, s18, s10\n\t" X                           \
    "vadd.f32 s19, s19, s11\n\t"                                                                               \
    "vadd.f32 s16, s16, s12\n\tvadd.f32 s17, s17, s13\n\tvadd.f32 s18, s18, s14\n\tvadd.f32 s19, s19, s15\n\t"
/* the pass's first pixel: the weights loaded beside its products, then its d */
#define TT_IR_DXD_PIX0(TA, TB, D)                                                                                \
    "vldr s0, [%[wa]]\n\tvldr s1, [%[wa], #4]\n\t"                                                             \
    "vmul.f32 s8, %[" TA "], s0\n\tvldr s2, [%[wa], #8]\n\t"                                                  \
    "vmul.f32 s9, %[" TA "], s1\n\tvldr s3, [%[wa], #12]\n\t"                                                 \
    "vmul.f32 s10, %[" TA "], s2\n\tvldr s4, [%[wb]]\n\t"                                                     \
    "vmul.f32 s11, %[" TA "], s3\n\tvldr s5, [%[wb], #4]\n\t"                                                 \
    "vmul.f32 s12, %[" TB "], s4\n\tvldr s6, [%[wb], #8]\n\t"                                                 \
    "vmul.f32 s13, %[" TB "], s5\n\tvldr s7, [%[wb], #12]\n\t"                                                \
    "vmul.f32 s14, %[" TB "], s6\n\tvldr s16, [%[" D "]]\n\t"                                                 \
    "vmul.f32 s15, %[" TB "], s7\n\tvldr s17, [%[" D "], #4]\n\t"                                             \
    "vadd.f32 s16, s16, s8\n\tvldr s18, [%[" D "], #8]\n\t"                                                   \
    "vadd.f32 s17, s17, s9\n\tvldr s19, [%[" D "], #12]\n\t"                                                  \
    "vadd.f32 s18, s18, s10\n\tadd %[wa], %[wa], #16\n\t"                                                     \
    "vadd.f32 s19, s19, s11\n\tadd %[wb], %[wb], #16\n\t"                                                     \
    "vadd.f32 s16, s16, s12\n\tvadd.f32 s17, s17, s13\n\tvadd.f32 s18, s18, s14\n\tvadd.f32 s19, s19, s15\n\t"
/* a later pixel: the previous pixel's sums stored (to P, then P += 4 floats) beside this pixel's products */
#define TT_IR_DXD_PIX(TA, TB, D, P, X)                                                                           \
    "vmul.f32 s8, %[" TA "], s0\n\tvstr s16, [%[" P "]]\n\t"                                                  \
    "vmul.f32 s9, %[" TA "], s1\n\tvstr s17, [%[" P "], #4]\n\t"                                              \
    "vmul.f32 s10, %[" TA "], s2\n\tvstr s18, [%[" P "], #8]\n\t"                                             \
    "vmul.f32 s11, %[" TA "], s3\n\tvstr s19, [%[" P "], #12]\n\t"                                            \
    "vmul.f32 s12, %[" TB "], s4\n\tvldr s16, [%[" D "]]\n\t"                                                 \
    "vmul.f32 s13, %[" TB "], s5\n\tvldr s17, [%[" D "], #4]\n\t"                                             \
    "vmul.f32 s14, %[" TB "], s6\n\tvldr s18, [%[" D "], #8]\n\t"                                             \
    "vmul.f32 s15, %[" TB "], s7\n\tvldr s19, [%[" D "], #12]\n\t" TT_IR_DXD_ADD("add %[" P "], %[" P "], #16\n\t" X)
#else
#define TT_IR_DX_DUAL 0
#endif

/* da[p], db[p]: the pw2 input gradients of channels ch and ch + 1 (co2 <= TT_IR_MAX_C), masked. */
static __attribute__((noinline)) void ir_pw2_grad2(const tt_ir_block_bwd_args *a, int ch, float *da, float *db) {
    const int no = a->ho * a->wo, co2 = a->co2, e = a->e;
    float wfa[co2], wfb[co2];
    for (int o = 0; o < co2; o++) {
        const int8_t *wp = a->w2 + (size_t)o * e + ch;
        wfa[o] = (float)wp[0];
        wfb[o] = (float)wp[1];
    }
    int p = 0;
#ifdef TT_IR_VLDM
    for (; p + 3 < no; p += 4) {
        const float *g0 = a->g + (size_t)p * co2, *g1 = g0 + co2, *g2 = g1 + co2, *g3 = g2 + co2;
        const float *q0 = g0, *q1 = g1, *q2 = g2, *q3 = g3;
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f, tm;
        int o = 0;
        if (co2 >= 4) { /* the whole o loop in one asm statement: sums in s0-s7 (a0-a3, b0-b3), stored to acc;
                          * pixels in pairs, the four sums' terms interleaved (each sum's terms still in o order) */
            float acc[8] __attribute__((aligned(8)));
            const float *sp = a->s_w2, *wpa = wfa, *wpb = wfb;
            int nb = co2 >> 2;
            uint32_t z;
            __asm volatile("movs %[z], #0\n\t"
                           "vmov s0, s1, %[z], %[z]\n\tvmov s2, s3, %[z], %[z]\n\t"
                           "vmov s4, s5, %[z], %[z]\n\tvmov s6, s7, %[z], %[z]\n\t"
                           "1:\n\t"
#if TT_IR_DX_DUAL /* single VLDRs beside the FP operations; group k+1's loads and t products within group k */
                           "vldr s16, [%[sp], #0]\n\t"
                           "vldr s24, [%[q0], #0]\n\t"
                           "vldr s9, [%[q1], #0]\n\t"
                           "vldr s20, [%[wa], #0]\n\t"
                           "vmul.f32 s24, s24, s16\n\t"
                           "vldr s28, [%[wb], #0]\n\t"
                           "vmul.f32 s9, s9, s16\n\t"
                           "vmul.f32 s8, s24, s20\n\t"
                           "vldr s17, [%[sp], #4]\n\t"
                           "vmul.f32 s13, s24, s28\n\t"
                           "vldr s25, [%[q0], #4]\n\t"
                           "vmul.f32 s14, s9, s20\n\t"
                           "vldr s10, [%[q1], #4]\n\t"
                           "vmul.f32 s15, s9, s28\n\t"
                           "vldr s21, [%[wa], #4]\n\t"
                           "vmul.f32 s25, s25, s17\n\t"
                           "vldr s29, [%[wb], #4]\n\t"
                           "vmul.f32 s10, s10, s17\n\t"
                           "vadd.f32 s0, s0, s8\n\t"
                           "vadd.f32 s4, s4, s13\n\t"
                           "vadd.f32 s1, s1, s14\n\t"
                           "vadd.f32 s5, s5, s15\n\t"
                           "vmul.f32 s8, s25, s21\n\t"
                           "vldr s18, [%[sp], #8]\n\t"
                           "vmul.f32 s13, s25, s29\n\t"
                           "vldr s26, [%[q0], #8]\n\t"
                           "vmul.f32 s14, s10, s21\n\t"
                           "vldr s11, [%[q1], #8]\n\t"
                           "vmul.f32 s15, s10, s29\n\t"
                           "vldr s22, [%[wa], #8]\n\t"
                           "vmul.f32 s26, s26, s18\n\t"
                           "vldr s30, [%[wb], #8]\n\t"
                           "vmul.f32 s11, s11, s18\n\t"
                           "vadd.f32 s0, s0, s8\n\t"
                           "vadd.f32 s4, s4, s13\n\t"
                           "vadd.f32 s1, s1, s14\n\t"
                           "vadd.f32 s5, s5, s15\n\t"
                           "vmul.f32 s8, s26, s22\n\t"
                           "vldr s19, [%[sp], #12]\n\t"
                           "vmul.f32 s13, s26, s30\n\t"
                           "vldr s27, [%[q0], #12]\n\t"
                           "vmul.f32 s14, s11, s22\n\t"
                           "vldr s12, [%[q1], #12]\n\t"
                           "vmul.f32 s15, s11, s30\n\t"
                           "vldr s23, [%[wa], #12]\n\t"
                           "vmul.f32 s27, s27, s19\n\t"
                           "vldr s31, [%[wb], #12]\n\t"
                           "vmul.f32 s12, s12, s19\n\t"
                           "vadd.f32 s0, s0, s8\n\t"
                           "vadd.f32 s4, s4, s13\n\t"
                           "vadd.f32 s1, s1, s14\n\t"
                           "vadd.f32 s5, s5, s15\n\t"
                           "vmul.f32 s8, s27, s23\n\t"
                           "vldr s24, [%[q2], #0]\n\t"
                           "vmul.f32 s13, s27, s31\n\t"
                           "vldr s9, [%[q3], #0]\n\t"
                           "vmul.f32 s14, s12, s23\n\t"
                           "vmul.f32 s15, s12, s31\n\t"
                           "vmul.f32 s24, s24, s16\n\t"
                           "vmul.f32 s9, s9, s16\n\t"
                           "vadd.f32 s0, s0, s8\n\t"
                           "vadd.f32 s4, s4, s13\n\t"
                           "vadd.f32 s1, s1, s14\n\t"
                           "vadd.f32 s5, s5, s15\n\t"
                           "vmul.f32 s8, s24, s20\n\t"
                           "vldr s25, [%[q2], #4]\n\t"
                           "vmul.f32 s13, s24, s28\n\t"
                           "vldr s10, [%[q3], #4]\n\t"
                           "vmul.f32 s14, s9, s20\n\t"
                           "vmul.f32 s15, s9, s28\n\t"
                           "vmul.f32 s25, s25, s17\n\t"
                           "vmul.f32 s10, s10, s17\n\t"
                           "vadd.f32 s2, s2, s8\n\t"
                           "vadd.f32 s6, s6, s13\n\t"
                           "vadd.f32 s3, s3, s14\n\t"
                           "vadd.f32 s7, s7, s15\n\t"
                           "vmul.f32 s8, s25, s21\n\t"
                           "vldr s26, [%[q2], #8]\n\t"
                           "vmul.f32 s13, s25, s29\n\t"
                           "vldr s11, [%[q3], #8]\n\t"
                           "vmul.f32 s14, s10, s21\n\t"
                           "vmul.f32 s15, s10, s29\n\t"
                           "vmul.f32 s26, s26, s18\n\t"
                           "vmul.f32 s11, s11, s18\n\t"
                           "vadd.f32 s2, s2, s8\n\t"
                           "vadd.f32 s6, s6, s13\n\t"
                           "vadd.f32 s3, s3, s14\n\t"
                           "vadd.f32 s7, s7, s15\n\t"
                           "vmul.f32 s8, s26, s22\n\t"
                           "vldr s27, [%[q2], #12]\n\t"
                           "vmul.f32 s13, s26, s30\n\t"
                           "vldr s12, [%[q3], #12]\n\t"
                           "vmul.f32 s14, s11, s22\n\t"
                           "vmul.f32 s15, s11, s30\n\t"
                           "vmul.f32 s27, s27, s19\n\t"
                           "vmul.f32 s12, s12, s19\n\t"
                           "vadd.f32 s2, s2, s8\n\t"
                           "vadd.f32 s6, s6, s13\n\t"
                           "vadd.f32 s3, s3, s14\n\t"
                           "vadd.f32 s7, s7, s15\n\t"
                           "vmul.f32 s8, s27, s23\n\t"
                           "add %[sp], %[sp], #16\n\t"
                           "vmul.f32 s13, s27, s31\n\t"
                           "add %[wa], %[wa], #16\n\t"
                           "vmul.f32 s14, s12, s23\n\t"
                           "add %[wb], %[wb], #16\n\t"
                           "vmul.f32 s15, s12, s31\n\t"
                           "add %[q0], %[q0], #16\n\t"
                           "vadd.f32 s2, s2, s8\n\t"
                           "add %[q1], %[q1], #16\n\t"
                           "vadd.f32 s6, s6, s13\n\t"
                           "add %[q2], %[q2], #16\n\t"
                           "vadd.f32 s3, s3, s14\n\t"
                           "add %[q3], %[q3], #16\n\t"
                           "vadd.f32 s7, s7, s15\n\t"
                           "subs %[nb], %[nb], #1\n\t"
                           "bne 1b\n\t"
#else
                           "vldmia %[sp]!, {s16-s19}\n\t"
                           "vldmia %[wa]!, {s20-s23}\n\t"
                           "vldmia %[wb]!, {s28-s31}\n\t"
#if TT_FMA
                           "vldmia %[q0]!, {s24-s27}\n\t"
                           "vldmia %[q1]!, {s9-s12}\n\t"
                           "vmul.f32 s24, s24, s16\n\tvmul.f32 s25, s25, s17\n\tvmul.f32 s26, s26, s18\n\tvmul.f32 s27, s27, s19\n\t"
                           "vmul.f32 s9, s9, s16\n\tvmul.f32 s10, s10, s17\n\tvmul.f32 s11, s11, s18\n\tvmul.f32 s12, s12, s19\n\t"
                           "vfma.f32 s0, s24, s20\n\t"
                           "vfma.f32 s4, s24, s28\n\t"
                           "vfma.f32 s1, s9, s20\n\t"
                           "vfma.f32 s5, s9, s28\n\t"
                           "vfma.f32 s0, s25, s21\n\t"
                           "vfma.f32 s4, s25, s29\n\t"
                           "vfma.f32 s1, s10, s21\n\t"
                           "vfma.f32 s5, s10, s29\n\t"
                           "vfma.f32 s0, s26, s22\n\t"
                           "vfma.f32 s4, s26, s30\n\t"
                           "vfma.f32 s1, s11, s22\n\t"
                           "vfma.f32 s5, s11, s30\n\t"
                           "vfma.f32 s0, s27, s23\n\t"
                           "vfma.f32 s4, s27, s31\n\t"
                           "vfma.f32 s1, s12, s23\n\t"
                           "vfma.f32 s5, s12, s31\n\t"
                           "vldmia %[q2]!, {s24-s27}\n\t"
                           "vldmia %[q3]!, {s9-s12}\n\t"
                           "vmul.f32 s24, s24, s16\n\tvmul.f32 s25, s25, s17\n\tvmul.f32 s26, s26, s18\n\tvmul.f32 s27, s27, s19\n\t"
                           "vmul.f32 s9, s9, s16\n\tvmul.f32 s10, s10, s17\n\tvmul.f32 s11, s11, s18\n\tvmul.f32 s12, s12, s19\n\t"
                           "vfma.f32 s2, s24, s20\n\t"
                           "vfma.f32 s6, s24, s28\n\t"
                           "vfma.f32 s3, s9, s20\n\t"
                           "vfma.f32 s7, s9, s28\n\t"
                           "vfma.f32 s2, s25, s21\n\t"
                           "vfma.f32 s6, s25, s29\n\t"
                           "vfma.f32 s3, s10, s21\n\t"
                           "vfma.f32 s7, s10, s29\n\t"
                           "vfma.f32 s2, s26, s22\n\t"
                           "vfma.f32 s6, s26, s30\n\t"
                           "vfma.f32 s3, s11, s22\n\t"
                           "vfma.f32 s7, s11, s30\n\t"
                           "vfma.f32 s2, s27, s23\n\t"
                           "vfma.f32 s6, s27, s31\n\t"
                           "vfma.f32 s3, s12, s23\n\t"
                           "vfma.f32 s7, s12, s31\n\t"
#else
                           "vldmia %[q0]!, {s24-s27}\n\t"
                           "vldmia %[q1]!, {s9-s12}\n\t"
                           "vmul.f32 s24, s24, s16\n\tvmul.f32 s25, s25, s17\n\tvmul.f32 s26, s26, s18\n\tvmul.f32 s27, s27, s19\n\t"
                           "vmul.f32 s9, s9, s16\n\tvmul.f32 s10, s10, s17\n\tvmul.f32 s11, s11, s18\n\tvmul.f32 s12, s12, s19\n\t"
                           "vmul.f32 s8, s24, s20\n\t""vmul.f32 s13, s24, s28\n\t""vmul.f32 s14, s9, s20\n\t""vmul.f32 s15, s9, s28\n\t"
                           "vadd.f32 s0, s0, s8\n\t""vadd.f32 s4, s4, s13\n\t""vadd.f32 s1, s1, s14\n\t""vadd.f32 s5, s5, s15\n\t"
                           "vmul.f32 s8, s25, s21\n\t""vmul.f32 s13, s25, s29\n\t""vmul.f32 s14, s10, s21\n\t""vmul.f32 s15, s10, s29\n\t"
                           "vadd.f32 s0, s0, s8\n\t""vadd.f32 s4, s4, s13\n\t""vadd.f32 s1, s1, s14\n\t""vadd.f32 s5, s5, s15\n\t"
                           "vmul.f32 s8, s26, s22\n\t""vmul.f32 s13, s26, s30\n\t""vmul.f32 s14, s11, s22\n\t""vmul.f32 s15, s11, s30\n\t"
                           "vadd.f32 s0, s0, s8\n\t""vadd.f32 s4, s4, s13\n\t""vadd.f32 s1, s1, s14\n\t""vadd.f32 s5, s5, s15\n\t"
                           "vmul.f32 s8, s27, s23\n\t""vmul.f32 s13, s27, s31\n\t""vmul.f32 s14, s12, s23\n\t""vmul.f32 s15, s12, s31\n\t"
                           "vadd.f32 s0, s0, s8\n\t""vadd.f32 s4, s4, s13\n\t""vadd.f32 s1, s1, s14\n\t""vadd.f32 s5, s5, s15\n\t"
                           "vldmia %[q2]!, {s24-s27}\n\t"
                           "vldmia %[q3]!, {s9-s12}\n\t"
                           "vmul.f32 s24, s24, s16\n\tvmul.f32 s25, s25, s17\n\tvmul.f32 s26, s26, s18\n\tvmul.f32 s27, s27, s19\n\t"
                           "vmul.f32 s9, s9, s16\n\tvmul.f32 s10, s10, s17\n\tvmul.f32 s11, s11, s18\n\tvmul.f32 s12, s12, s19\n\t"
                           "vmul.f32 s8, s24, s20\n\t""vmul.f32 s13, s24, s28\n\t""vmul.f32 s14, s9, s20\n\t""vmul.f32 s15, s9, s28\n\t"
                           "vadd.f32 s2, s2, s8\n\t""vadd.f32 s6, s6, s13\n\t""vadd.f32 s3, s3, s14\n\t""vadd.f32 s7, s7, s15\n\t"
                           "vmul.f32 s8, s25, s21\n\t""vmul.f32 s13, s25, s29\n\t""vmul.f32 s14, s10, s21\n\t""vmul.f32 s15, s10, s29\n\t"
                           "vadd.f32 s2, s2, s8\n\t""vadd.f32 s6, s6, s13\n\t""vadd.f32 s3, s3, s14\n\t""vadd.f32 s7, s7, s15\n\t"
                           "vmul.f32 s8, s26, s22\n\t""vmul.f32 s13, s26, s30\n\t""vmul.f32 s14, s11, s22\n\t""vmul.f32 s15, s11, s30\n\t"
                           "vadd.f32 s2, s2, s8\n\t""vadd.f32 s6, s6, s13\n\t""vadd.f32 s3, s3, s14\n\t""vadd.f32 s7, s7, s15\n\t"
                           "vmul.f32 s8, s27, s23\n\t""vmul.f32 s13, s27, s31\n\t""vmul.f32 s14, s12, s23\n\t""vmul.f32 s15, s12, s31\n\t"
                           "vadd.f32 s2, s2, s8\n\t""vadd.f32 s6, s6, s13\n\t""vadd.f32 s3, s3, s14\n\t""vadd.f32 s7, s7, s15\n\t"
#endif
                           "subs %[nb], %[nb], #1\n\t"
                           "bne 1b\n\t"
#endif
                           "vstmia %[acc], {s0-s7}"
                           : [q0] "+r"(q0), [q1] "+r"(q1), [q2] "+r"(q2), [q3] "+r"(q3), [sp] "+r"(sp),
                             [wa] "+r"(wpa), [wb] "+r"(wpb), [nb] "+r"(nb), [z] "=&r"(z)
                           : [acc] "r"(acc)
                           : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13",
                             "s14", "s15", TT_IR_S16_27, TT_IR_S28_31, "memory", "cc");
            a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
            b0 = acc[4], b1 = acc[5], b2 = acc[6], b3 = acc[7];
            o = co2 & ~3;
        }
        (void)tm;
        for (; o < co2; o++) {
            const float sw = a->s_w2[o], wa = wfa[o], wb = wfb[o];
            const float t0 = g0[o] * sw, t1 = g1[o] * sw, t2 = g2[o] * sw, t3 = g3[o] * sw;
            a0 = TT_MAC(a0, t0, wa);
            a1 = TT_MAC(a1, t1, wa);
            a2 = TT_MAC(a2, t2, wa);
            a3 = TT_MAC(a3, t3, wa);
            b0 = TT_MAC(b0, t0, wb);
            b1 = TT_MAC(b1, t1, wb);
            b2 = TT_MAC(b2, t2, wb);
            b3 = TT_MAC(b3, t3, wb);
        }
        da[p] = a0; da[p + 1] = a1; da[p + 2] = a2; da[p + 3] = a3;
        db[p] = b0; db[p + 1] = b1; db[p + 2] = b2; db[p + 3] = b3;
    }
#endif
    for (; p + 3 < no; p += 4) {
        const float *g0 = a->g + (size_t)p * co2, *g1 = g0 + co2, *g2 = g1 + co2, *g3 = g2 + co2;
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f;
        for (int o = 0; o < co2; o++) {
            const float sw = a->s_w2[o], wa = wfa[o], wb = wfb[o];
            const float t0 = g0[o] * sw, t1 = g1[o] * sw, t2 = g2[o] * sw, t3 = g3[o] * sw;
            a0 = TT_MAC(a0, t0, wa);
            a1 = TT_MAC(a1, t1, wa);
            a2 = TT_MAC(a2, t2, wa);
            a3 = TT_MAC(a3, t3, wa);
            b0 = TT_MAC(b0, t0, wb);
            b1 = TT_MAC(b1, t1, wb);
            b2 = TT_MAC(b2, t2, wb);
            b3 = TT_MAC(b3, t3, wb);
        }
        da[p] = a0; da[p + 1] = a1; da[p + 2] = a2; da[p + 3] = a3;
        db[p] = b0; db[p + 1] = b1; db[p + 2] = b2; db[p + 3] = b3;
    }
    for (; p < no; p++) {
        const float *gp = a->g + (size_t)p * co2;
        float va = 0.0f, vb = 0.0f;
        for (int o = 0; o < co2; o++) {
            const float t = gp[o] * a->s_w2[o];
            va = TT_MAC(va, t, wfa[o]);
            vb = TT_MAC(vb, t, wfb[o]);
        }
        da[p] = va;
        db[p] = vb;
    }
    if (a->bits_dw)
        for (p = 0; p < no; p++) {
            const size_t j = (size_t)p * e + ch, k = j + 1;
            if (!((a->bits_dw[j >> 3] >> (j & 7)) & 1u)) da[p] = 0.0f;
            if (!((a->bits_dw[k >> 3] >> (k & 7)) & 1u)) db[p] = 0.0f;
        }
}

/* dx[p][i] += (ga[p] * s_w1[ch]) * W1[ch][i], then += (gb[p] * s_w1[ch + 1]) * W1[ch + 1][i] (ci <= TT_IR_MAX_C). */
static __attribute__((noinline)) void ir_dx_acc2(const tt_ir_block_bwd_args *a, int ch, const float *ga,
                                                 const float *gb) {
    const int ni = a->h * a->w, ci = a->ci, k1 = a->k1, kr = ci - k1;
    const float sa = a->s_w1[ch], sb = a->s_w1[ch + 1];
    float wfa[ci], wfb[ci];
    {
        const int8_t *ra = a->w1 + (size_t)ch * k1, *rb = ra + k1;
        for (int i = 0; i < k1; i++) {
            wfa[i] = (float)ra[i];
            wfb[i] = (float)rb[i];
        }
        if (a->w1_rest) {
            const int8_t *qa = a->w1_rest + (size_t)ch * kr, *qb = qa + kr;
            for (int i = 0; i < kr; i++) {
                wfa[k1 + i] = (float)qa[i];
                wfb[k1 + i] = (float)qb[i];
            }
        }
    }
    int p = 0;
#ifdef TT_IR_VLDM
    for (; p + 3 < ni; p += 4) {
        const float ta0 = ga[p] * sa, ta1 = ga[p + 1] * sa, ta2 = ga[p + 2] * sa, ta3 = ga[p + 3] * sa;
        const float tb0 = gb[p] * sb, tb1 = gb[p + 1] * sb, tb2 = gb[p + 2] * sb, tb3 = gb[p + 3] * sb;
        float *d0 = a->dx + (size_t)p * ci, *d1 = d0 + ci, *d2 = d1 + ci, *d3 = d2 + ci;
        const float *wpa = wfa, *wpb = wfb;
        int i = 0;
#if TT_IR_DX_DUAL
        if (ci >= 4) {
            int nb = ci >> 2;
            __asm volatile("1:\n\t" TT_IR_DXD_PIX0("ta0", "tb0", "d0") TT_IR_DXD_PIX("ta1", "tb1", "d1", "d0", "")
                               TT_IR_DXD_PIX("ta2", "tb2", "d2", "d1", "") TT_IR_DXD_PIX("ta3", "tb3", "d3", "d2",
                                                                                       "subs %[nb], %[nb], #1\n\t")
                                   "vstr s16, [%[d3]]\n\tvstr s17, [%[d3], #4]\n\t"
                                   "vstr s18, [%[d3], #8]\n\tvstr s19, [%[d3], #12]\n\t"
                                   "add %[d3], %[d3], #16\n\tbne 1b\n\t"
                           : [wa] "+r"(wpa), [wb] "+r"(wpb), [d0] "+r"(d0), [d1] "+r"(d1), [d2] "+r"(d2),
                             [d3] "+r"(d3), [nb] "+r"(nb)
                           : [ta0] "t"(ta0), [ta1] "t"(ta1), [ta2] "t"(ta2), [ta3] "t"(ta3), [tb0] "t"(tb0),
                             [tb1] "t"(tb1), [tb2] "t"(tb2), [tb3] "t"(tb3)
                           : TT_IR_S0_19, "memory", "cc");
            i = ci & ~3;
        }
#endif
        for (; i + 3 < ci; i += 4)
            __asm volatile("vldmia %[wa]!, {s16-s19}\n\t"
                           "vldmia %[wb]!, {s28-s31}\n\t" TT_IR_DX_PIX2("d0", "ta0", "tb0")
                               TT_IR_DX_PIX2("d1", "ta1", "tb1") TT_IR_DX_PIX2("d2", "ta2", "tb2")
                                   TT_IR_DX_PIX2("d3", "ta3", "tb3")
                           : [wa] "+r"(wpa), [wb] "+r"(wpb), [d0] "+r"(d0), [d1] "+r"(d1), [d2] "+r"(d2),
                             [d3] "+r"(d3)
                           : [ta0] "t"(ta0), [ta1] "t"(ta1), [ta2] "t"(ta2), [ta3] "t"(ta3), [tb0] "t"(tb0),
                             [tb1] "t"(tb1), [tb2] "t"(tb2), [tb3] "t"(tb3)
                           : TT_IR_S16_27, TT_IR_S28_31, "memory");
        for (; i < ci; i++, d0++, d1++, d2++, d3++) {
            const float wa = wfa[i], wb = wfb[i];
            *d0 = TT_MAC(TT_MAC(*d0, ta0, wa), tb0, wb);
            *d1 = TT_MAC(TT_MAC(*d1, ta1, wa), tb1, wb);
            *d2 = TT_MAC(TT_MAC(*d2, ta2, wa), tb2, wb);
            *d3 = TT_MAC(TT_MAC(*d3, ta3, wa), tb3, wb);
        }
    }
#endif
    for (; p + 3 < ni; p += 4) {
        const float ta0 = ga[p] * sa, ta1 = ga[p + 1] * sa, ta2 = ga[p + 2] * sa, ta3 = ga[p + 3] * sa;
        const float tb0 = gb[p] * sb, tb1 = gb[p + 1] * sb, tb2 = gb[p + 2] * sb, tb3 = gb[p + 3] * sb;
        float *d0 = a->dx + (size_t)p * ci, *d1 = d0 + ci, *d2 = d1 + ci, *d3 = d2 + ci;
        for (int i = 0; i < ci; i++) {
            const float wa = wfa[i], wb = wfb[i];
            const float v0 = TT_MAC(TT_MAC(d0[i], ta0, wa), tb0, wb), v1 = TT_MAC(TT_MAC(d1[i], ta1, wa), tb1, wb);
            const float v2 = TT_MAC(TT_MAC(d2[i], ta2, wa), tb2, wb), v3 = TT_MAC(TT_MAC(d3[i], ta3, wa), tb3, wb);
            d0[i] = v0;
            d1[i] = v1;
            d2[i] = v2;
            d3[i] = v3;
        }
    }
    for (; p < ni; p++) {
        const float ta = ga[p] * sa, tb = gb[p] * sb;
        float *dp = a->dx + (size_t)p * ci;
        for (int i = 0; i < ci; i++) dp[i] = TT_MAC(TT_MAC(dp[i], ta, wfa[i]), tb, wfb[i]);
    }
}

void tt_ir_block_bwd_f32(const tt_ir_block_bwd_args *a, float *scratch) {
    const int ho = a->ho, wo = a->wo, e = a->e, h = a->h, w = a->w, ci = a->ci, k1 = a->k1;
    const int no = ho * wo, ni = h * w;
    float *d = scratch, *g1 = scratch + no, *d2 = g1 + ni, *g12 = d2 + no; /* two planes per channel of a pair */
    if (a->dx)
        for (size_t j = 0; j < (size_t)ni * ci; j++) a->dx[j] = 0.0f;
    int ch = 0;
    if (a->co2 <= TT_IR_MAX_C && ci <= TT_IR_MAX_C && a->k_in <= TT_IR_MAX_C)
        for (; ch + 1 < e; ch += 2) { /* the same steps as below for ch, then ch + 1, with shared loads */
            ir_pw2_grad2(a, ch, d, d2);
            if (a->b_dw) {
                tt_bias_grad_update(d, no, 1, a->b_dw + ch, a->qb_dw + ch, a->neg_lr);
                tt_bias_grad_update(d2, no, 1, a->b_dw + ch + 1, a->qb_dw + ch + 1, a->neg_lr);
            }
            ir_dw_grad(a, ch, d, g1);
            ir_dw_grad(a, ch + 1, d2, g12);
            if (a->dx) ir_dx_acc2(a, ch, g1, g12);
            if (a->x1) {
                float *sh = a->rule == TT_RULE_SHADOW && a->shadow1 ? a->shadow1 + (size_t)ch * a->k_in : 0;
                tt_wgrad_update_1x1_rows2(g1, g12, a->x1, ni, a->x1_c, a->x_zero, a->k_in, a->w1 + (size_t)ch * k1,
                                          a->w1 + (size_t)(ch + 1) * k1, a->neg_lr * a->q1[ch],
                                          a->neg_lr * a->q1[ch + 1], a->rule, a->rng, sh, sh ? sh + a->k_in : 0);
            }
            if (a->b1) {
                tt_bias_grad_update(g1, ni, 1, a->b1 + ch, a->qb1 + ch, a->neg_lr);
                tt_bias_grad_update(g12, ni, 1, a->b1 + ch + 1, a->qb1 + ch + 1, a->neg_lr);
            }
        }
    for (; ch < e; ch++) {
        ir_pw2_grad(a, ch, d); /* pw2 input gradient of channel ch, then the dw mask */
        if (a->b_dw) tt_bias_grad_update(d, no, 1, a->b_dw + ch, a->qb_dw + ch, a->neg_lr);
        ir_dw_grad(a, ch, d, g1); /* dw input gradient of channel ch, then the pw1 mask */
        /* block input gradient: channel ch's terms, with pw1 row ch before its update */
        if (a->dx) ir_dx_acc(a, ch, g1);
        if (a->x1)
            tt_conv2d_wgrad_update(g1, a->x1, h, w, a->x1_c, a->x_zero, a->w1 + (size_t)ch * k1, 1, 1, 1, k1,
                                   a->k_in, a->q1 + ch, a->neg_lr, a->rule, a->rng,
                                   a->shadow1 ? a->shadow1 + (size_t)ch * a->k_in : 0, 1, 0);
        if (a->b1) tt_bias_grad_update(g1, ni, 1, a->b1 + ch, a->qb1 + ch, a->neg_lr);
    }
    (void)ci;
}
