/* conv2d input gradients: pointwise 1x1 (and the classifier), depthwise; portable C + Cortex-M fast paths
 * (tinytrain/ops/conv2d; docs/numerics.md, "Float backward"). Compiled through tt_backward.c. */
#include "tt_dw_plane.h"
#include "tt_kernels.h"
#include "tt_math.h"

/* Four pixels at a time: t[o][j] = g[q + j][o] * s_w[o] once into a stack block (4 * co floats, co <= 128: 2 KB),
 * then 4 pixels x 4 input channels of sums in registers per pass over o. */
#define TT_BWD1X1_MAX_CO 128
static __attribute__((noinline)) int bwd1x1_quads(const float *g, int p, int co, const int8_t *wt, int ci,
                                                  const float *s_w, float *dx) {
    float t[4 * co] __attribute__((aligned(8)));
    int q = 0;
    for (; q + 3 < p; q += 4) {
        const float *g0 = g + (size_t)q * co;
        for (int o = 0; o < co; o++) {
            const float s = s_w[o];
            t[4 * o] = g0[o] * s;
            t[4 * o + 1] = g0[co + o] * s;
            t[4 * o + 2] = g0[2 * co + o] * s;
            t[4 * o + 3] = g0[3 * co + o] * s;
        }
        float *d0 = dx + (size_t)q * ci;
        int i = 0;
        for (; i + 3 < ci; i += 4) {
            float a00 = 0.0f, a01 = 0.0f, a02 = 0.0f, a03 = 0.0f, a10 = 0.0f, a11 = 0.0f, a12 = 0.0f, a13 = 0.0f;
            float a20 = 0.0f, a21 = 0.0f, a22 = 0.0f, a23 = 0.0f, a30 = 0.0f, a31 = 0.0f, a32 = 0.0f, a33 = 0.0f;
            const int8_t *wp = wt + i;
            const float *tp = t;
            for (int o = 0; o < co; o++, wp += ci, tp += 4) {
                const float t0 = tp[0], t1 = tp[1], t2 = tp[2], t3 = tp[3];
                const float w0 = (float)wp[0], w1 = (float)wp[1], w2 = (float)wp[2], w3 = (float)wp[3];
                a00 = TT_MAC(a00, t0, w0);
                a01 = TT_MAC(a01, t0, w1);
                a02 = TT_MAC(a02, t0, w2);
                a03 = TT_MAC(a03, t0, w3);
                a10 = TT_MAC(a10, t1, w0);
                a11 = TT_MAC(a11, t1, w1);
                a12 = TT_MAC(a12, t1, w2);
                a13 = TT_MAC(a13, t1, w3);
                a20 = TT_MAC(a20, t2, w0);
                a21 = TT_MAC(a21, t2, w1);
                a22 = TT_MAC(a22, t2, w2);
                a23 = TT_MAC(a23, t2, w3);
                a30 = TT_MAC(a30, t3, w0);
                a31 = TT_MAC(a31, t3, w1);
                a32 = TT_MAC(a32, t3, w2);
                a33 = TT_MAC(a33, t3, w3);
            }
            float *d = d0 + i;
            d[0] = a00; d[1] = a01; d[2] = a02; d[3] = a03;
            d += ci;
            d[0] = a10; d[1] = a11; d[2] = a12; d[3] = a13;
            d += ci;
            d[0] = a20; d[1] = a21; d[2] = a22; d[3] = a23;
            d += ci;
            d[0] = a30; d[1] = a31; d[2] = a32; d[3] = a33;
        }
        for (; i < ci; i++) {
            float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
            for (int o = 0; o < co; o++) {
                const float wv = (float)wt[(size_t)o * ci + i];
                a0 = TT_MAC(a0, t[4 * o], wv);
                a1 = TT_MAC(a1, t[4 * o + 1], wv);
                a2 = TT_MAC(a2, t[4 * o + 2], wv);
                a3 = TT_MAC(a3, t[4 * o + 3], wv);
            }
            d0[i] = a0;
            d0[ci + i] = a1;
            d0[2 * ci + i] = a2;
            d0[3 * ci + i] = a3;
        }
    }
    return q;
}

/* dx[p][i] = sum_{o asc} (g[p][o] * s_w[o]) * w[o][i]; four pixels at a time (bwd1x1_quads), then two pixels x
 * four input channels per pass. */
void tt_conv2d_bwd_input_f32(const float *g, int p, int co, const int8_t *wt, int ci, const float *s_w,
                             float *dx) {
    int q = 0;
    if (co <= TT_BWD1X1_MAX_CO && p >= 4) q = bwd1x1_quads(g, p, co, wt, ci, s_w, dx);
    for (; q + 1 < p; q += 2) {
        const float *ga = g + (size_t)q * co, *gb = ga + co;
        float *da = dx + (size_t)q * ci, *db = da + ci;
        int i = 0;
        for (; i + 3 < ci; i += 4) {
            float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f;
            const int8_t *wp = wt + i;
            for (int o = 0; o < co; o++, wp += ci) {
                const float s = s_w[o], ta = ga[o] * s, tb = gb[o] * s;
                const float w0 = (float)wp[0], w1 = (float)wp[1], w2 = (float)wp[2], w3 = (float)wp[3];
                a0 = TT_MAC(a0, ta, w0);
                a1 = TT_MAC(a1, ta, w1);
                a2 = TT_MAC(a2, ta, w2);
                a3 = TT_MAC(a3, ta, w3);
                b0 = TT_MAC(b0, tb, w0);
                b1 = TT_MAC(b1, tb, w1);
                b2 = TT_MAC(b2, tb, w2);
                b3 = TT_MAC(b3, tb, w3);
            }
            da[i] = a0;
            da[i + 1] = a1;
            da[i + 2] = a2;
            da[i + 3] = a3;
            db[i] = b0;
            db[i + 1] = b1;
            db[i + 2] = b2;
            db[i + 3] = b3;
        }
        for (; i < ci; i++) {
            float a = 0.0f, b = 0.0f;
            for (int o = 0; o < co; o++) {
                const float s = s_w[o], wv = (float)wt[(size_t)o * ci + i];
                a = TT_MAC(a, (ga[o] * s), wv);
                b = TT_MAC(b, (gb[o] * s), wv);
            }
            da[i] = a;
            db[i] = b;
        }
    }
    for (; q < p; q++) {
        const float *ga = g + (size_t)q * co;
        float *da = dx + (size_t)q * ci;
        for (int i = 0; i < ci; i++) {
            float a = 0.0f;
            for (int o = 0; o < co; o++) a = TT_MAC(a, (ga[o] * s_w[o]), (float)wt[(size_t)o * ci + i]);
            da[i] = a;
        }
    }
}

#if defined(__arm__) && defined(__thumb2__) && defined(__ARM_FP) && (__ARM_FP & 4) && !defined(TT_NO_ASM)
/* Device, stride 1, k = 3 or 5, four channels at a time: a zero-padded plane of t = g * s_w for the four channels
 * (T[row][col][4], rows = ho + 2 pt), then tap-major by kernel rows (ta ascending): each dx element of the four
 * channels adds its row's taps (tb ascending) to its partial sum (from +0.0f for ta = 0, else loaded from dx): per
 * element one VLDM / VSTM of the 4 partial sums, per tap a VLDMDB of the plane's 4 values and 4 multiply-adds with
 * the row's weights in s8-s27. The same terms in the same order as the gather form; padded taps add +-0 (see
 * tt_dw_plane.h). Stack: the plane (<= TT_DWB4_PLANE floats) and the weights. */
#define TT_DWB4 1
#define TT_DWB4_PLANE 576
#if TT_FMA
#define DWB4_TAP(W0, W1, W2, W3)                                                                                 \
    "vldmdb %[tq]!, {s28-s31}\n\t"                                                                             \
    "vfma.f32 s0, s28, " W0 "\n\tvfma.f32 s1, s29, " W1 "\n\tvfma.f32 s2, s30, " W2 "\n\tvfma.f32 s3, s31, " W3 "\n\t"
#else
#define DWB4_TAP(W0, W1, W2, W3)                                                                                 \
    "vldmdb %[tq]!, {s28-s31}\n\t"                                                                             \
    "vmul.f32 s4, s28, " W0 "\n\tvmul.f32 s5, s29, " W1 "\n\tvmul.f32 s6, s30, " W2 "\n\tvmul.f32 s7, s31, " W3 "\n\t" \
    "vadd.f32 s0, s0, s4\n\tvadd.f32 s1, s1, s5\n\tvadd.f32 s2, s2, s6\n\tvadd.f32 s3, s3, s7\n\t"
#endif
#define DWB4_TAPS3 DWB4_TAP("s8", "s9", "s10", "s11") DWB4_TAP("s12", "s13", "s14", "s15") DWB4_TAP("s16", "s17", "s18", "s19")
#define DWB4_TAPS5 DWB4_TAPS3 DWB4_TAP("s20", "s21", "s22", "s23") DWB4_TAP("s24", "s25", "s26", "s27")
#define DWB4_ROW(INIT, TAPS)                                                                                     \
    __asm volatile("vldmia %[wr], {s8-s27}\n\t"                                                              \
                   "1:\n\t" INIT "add %[tq], %[tp], %[kb]\n\t" TAPS "vstmia %[d], {s0-s3}\n\t"                  \
                   "add %[d], %[d], %[cs]\n\t"                                                                \
                   "add %[tp], %[tp], #16\n\t"                                                                \
                   "subs %[n], %[n], #1\n\t"                                                                  \
                   "bne 1b"                                                                                   \
                   : [d] "+r"(d), [tp] "+r"(tp), [n] "+r"(n), [tq] "=&r"(tq), [z] "=&r"(z)                    \
                   : [wr] "r"(wr), [kb] "r"(16 * K), [cs] "r"(4 * c)                                          \
                   : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13",  \
                     "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", \
                     "s27", "s28", "s29", "s30", "s31", "cc", "memory")
/* 3x3: the row's three plane positions in one VLDM (s20-s31: columns iw, iw + 1, iw + 2 = taps tb 2, 1, 0), then
 * the taps in order tb = 0, 1, 2 */
#if TT_FMA
#define DWB4_WIN3 "vldmia %[tp], {s20-s31}\n\t" "vfma.f32 s0, s28, s8\n\t""vfma.f32 s1, s29, s9\n\t""vfma.f32 s2, s30, s10\n\t""vfma.f32 s3, s31, s11\n\t""vfma.f32 s0, s24, s12\n\t""vfma.f32 s1, s25, s13\n\t""vfma.f32 s2, s26, s14\n\t""vfma.f32 s3, s27, s15\n\t""vfma.f32 s0, s20, s16\n\t""vfma.f32 s1, s21, s17\n\t""vfma.f32 s2, s22, s18\n\t""vfma.f32 s3, s23, s19\n\t"
#else
#define DWB4_WIN3 "vldmia %[tp], {s20-s31}\n\t" "vmul.f32 s4, s28, s8\n\tvmul.f32 s5, s29, s9\n\tvmul.f32 s6, s30, s10\n\tvmul.f32 s7, s31, s11\n\t" "vadd.f32 s0, s0, s4\n\tvadd.f32 s1, s1, s5\n\tvadd.f32 s2, s2, s6\n\tvadd.f32 s3, s3, s7\n\t" "vmul.f32 s4, s24, s12\n\tvmul.f32 s5, s25, s13\n\tvmul.f32 s6, s26, s14\n\tvmul.f32 s7, s27, s15\n\t" "vadd.f32 s0, s0, s4\n\tvadd.f32 s1, s1, s5\n\tvadd.f32 s2, s2, s6\n\tvadd.f32 s3, s3, s7\n\t" "vmul.f32 s4, s20, s16\n\tvmul.f32 s5, s21, s17\n\tvmul.f32 s6, s22, s18\n\tvmul.f32 s7, s23, s19\n\t" "vadd.f32 s0, s0, s4\n\tvadd.f32 s1, s1, s5\n\tvadd.f32 s2, s2, s6\n\tvadd.f32 s3, s3, s7\n\t"
#endif
#define DWB4_ROW3(INIT)                                                                                          \
    __asm volatile("vldmia %[wr], {s8-s19}\n\t"                                                              \
                   "1:\n\t" INIT DWB4_WIN3 "vstmia %[d], {s0-s3}\n\t"                                          \
                   "add %[d], %[d], %[cs]\n\t"                                                                \
                   "add %[tp], %[tp], #16\n\t"                                                                \
                   "subs %[n], %[n], #1\n\t"                                                                  \
                   "bne 1b"                                                                                   \
                   : [d] "+r"(d), [tp] "+r"(tp), [n] "+r"(n), [z] "=&r"(z)                                    \
                   : [wr] "r"(wr), [cs] "r"(4 * c)                                                            \
                   : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13",  \
                     "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", \
                     "s27", "s28", "s29", "s30", "s31", "cc", "memory")
#define DWB4_ZERO "movs %[z], #0\n\tvmov s0, s1, %[z], %[z]\n\tvmov s2, s3, %[z], %[z]\n\t"
#define DWB4_LOAD "vldmia %[d], {s0-s3}\n\t"

/* One kernel row ta of K taps for the w outputs of dx row ih (four channels at dx0); T: the plane row of tap ta. */
static inline __attribute__((always_inline)) void dwb4_row(float *d, const float *tp, int n, const float *wr, int K,
                                                          int c, int first) {
    const float *tq;
    uint32_t z;
    if (K == 3) {
        if (first) DWB4_ROW3(DWB4_ZERO);
        else DWB4_ROW3(DWB4_LOAD);
    } else {
        if (first) DWB4_ROW(DWB4_ZERO, DWB4_TAPS5);
        else DWB4_ROW(DWB4_LOAD, DWB4_TAPS5);
    }
    (void)tq;
    (void)z;
}

/* Channels [0, c & ~3) of the stride-1 input gradient (k = 3 or 5, pad <= k - 1); returns the channels done (0 when
 * the shape is not served: the per-channel paths run). */
static __attribute__((noinline)) int dwb4_s1(const float *g, int ho, int wo, int c, const int8_t *wt, int K,
                                             const float *s_w, int h, int w, int pad, float *dx) {
    const int pt = K - 1 - pad, rows = ho + 2 * pt, pw = wo + 2 * pt;
    if ((K != 3 && K != 5) || pad < 0 || pt < 0 || c < 4 || h != ho + 2 * pt - K + 1 || w != pw - K + 1 ||
        4 * rows * pw > TT_DWB4_PLANE || w < 1 || wo < 1)
        return 0;
    float T[4 * rows * pw] __attribute__((aligned(8))), wk[K * K * 4] __attribute__((aligned(8)));
    for (int j = 0; j < 4 * rows * pw; j++) T[j] = 0.0f; /* the border stays zero; the interior is rewritten */
    const int c4 = c & ~3;
    for (int ch = 0; ch < c4; ch += 4) {
        for (int oh = 0; oh < ho; oh++) { /* t = g * s_w, four channels per VLDM / VMUL / VSTM */
            const float *gp = g + (size_t)oh * wo * c + ch;
            float *tr = T + ((size_t)(oh + pt) * pw + pt) * 4;
            int n = wo;
            __asm volatile("vldmia %[sw], {s4-s7}\n\t"
                           "1:\n\t"
                           "vldmia %[gp], {s0-s3}\n\t"
                           "add %[gp], %[gp], %[cs]\n\t"
                           "vmul.f32 s0, s0, s4\n\tvmul.f32 s1, s1, s5\n\tvmul.f32 s2, s2, s6\n\tvmul.f32 s3, s3, s7\n\t"
                           "vstmia %[tr]!, {s0-s3}\n\t"
                           "subs %[n], %[n], #1\n\t"
                           "bne 1b"
                           : [gp] "+r"(gp), [tr] "+r"(tr), [n] "+r"(n)
                           : [sw] "r"(s_w + ch), [cs] "r"(4 * c)
                           : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "cc", "memory");
        }
        for (int t = 0; t < K * K; t++)
            for (int j = 0; j < 4; j++) wk[4 * t + j] = (float)wt[(size_t)t * c + ch + j];
        for (int ta = 0; ta < K; ta++)
            for (int ih = 0; ih < h; ih++) /* element (ih, iw) reads plane row ih + K - 1 - ta, columns iw .. iw + K - 1 */
                dwb4_row(dx + (size_t)ih * w * c + ch, T + (size_t)(ih + K - 1 - ta) * pw * 4, w, wk + 4 * K * ta, K,
                         c, ta == 0);
    }
    return c4;
}
#endif

/* One channel at a time over a zero-padded float plane (tt_dw_plane.h: square 3/5/7 kernels, stride 1/2, maps up
 * to TT_DWF_PLANE); otherwise the gather form: each input element sums its taps in (kh asc, kw asc) order. */
void tt_dwconv2d_bwd_input_f32(const float *g, int ho, int wo, int c, const int8_t *wt, int kh, int kw,
                               const float *s_w, int in_h, int in_w, int stride, int pad, float *dx) {
    int c0 = 0;
#ifdef TT_DWB4
    if (stride == 1 && kh == kw) c0 = dwb4_s1(g, ho, wo, c, wt, kw, s_w, in_h, in_w, pad, dx);
    if (c0 == c) return;
#endif
    if (c0 < c && tt_dwf_channel(g + c0, (size_t)c, ho, wo, s_w[c0], wt + c0, (size_t)c, kh, kw, stride, pad, in_h,
                                 in_w, dx + c0, (size_t)c, 0, c0, 1)) {
        for (int ch = c0 + 1; ch < c; ch++)
            tt_dwf_channel(g + ch, (size_t)c, ho, wo, s_w[ch], wt + ch, (size_t)c, kh, kw, stride, pad, in_h, in_w,
                           dx + ch, (size_t)c, 0, ch, 1);
        return;
    }
    for (int ih = 0; ih < in_h; ih++) {
        for (int iw = 0; iw < in_w; iw++) {
            float *dp = dx + ((size_t)ih * in_w + iw) * c;
            for (int ch = 0; ch < c; ch++) dp[ch] = 0.0f;
            for (int a = 0; a < kh; a++) {
                const int th = ih + pad - a; /* = oh * stride */
                if (th < 0) break;
                if (th % stride) continue;
                const int oh = th / stride;
                if (oh >= ho) continue;
                for (int b = 0; b < kw; b++) {
                    const int tw = iw + pad - b;
                    if (tw < 0) break;
                    if (tw % stride) continue;
                    const int ow = tw / stride;
                    if (ow >= wo) continue;
                    const float *gp = g + ((size_t)oh * wo + ow) * c;
                    const int8_t *wp = wt + ((size_t)a * kw + b) * c;
                    for (int ch = 0; ch < c; ch++) dp[ch] = TT_MAC(dp[ch], (gp[ch] * s_w[ch]), (float)wp[ch]);
                }
            }
        }
    }
}
