/* Float backward kernels (docs/numerics.md, "Float backward"): masks and input gradients. */
#include "tt_dw_plane.h"
#include "tt_kernels.h"
#include "tt_math.h"

void tt_mask_s8(const int8_t *y, int n, uint8_t *bits) {
    const int nb = (n + 7) / 8;
    for (int k = 0; k < nb; k++) {
        uint8_t v = 0;
        for (int b = 0; b < 8; b++) {
            const int j = 8 * k + b;
            if (j < n && y[j] != -128 && y[j] != 127) v |= (uint8_t)(1u << b);
        }
        bits[k] = v;
    }
}

void tt_apply_mask_f32(const float *g, const uint8_t *bits, int n, float *out) {
    for (int j = 0; j < n; j++) out[j] = ((bits[j >> 3] >> (j & 7)) & 1u) ? g[j] : 0.0f;
}

void tt_add_f32(const float *a, const float *b, int n, float *y) {
    for (int j = 0; j < n; j++) y[j] = a[j] + b[j];
}

void tt_avgpool_bwd_f32(const float *g, int c, int h, int w, float *dx) {
    const float inv_hw = 1.0f / (float)(h * w);
    const int n = h * w;
    for (int ch = 0; ch < c; ch++) {
        const float v = g[ch] * inv_hw;
        for (int j = 0; j < n; j++) dx[(size_t)j * c + ch] = v;
    }
}

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

/* One channel at a time over a zero-padded float plane (tt_dw_plane.h: square 3/5/7 kernels, stride 1/2, maps up
 * to TT_DWF_PLANE); otherwise the gather form: each input element sums its taps in (kh asc, kw asc) order. */
void tt_dwconv2d_bwd_input_f32(const float *g, int ho, int wo, int c, const int8_t *wt, int kh, int kw,
                               const float *s_w, int in_h, int in_w, int stride, int pad, float *dx) {
    if (c > 0 && tt_dwf_channel(g, (size_t)c, ho, wo, s_w[0], wt, (size_t)c, kh, kw, stride, pad, in_h, in_w, dx,
                                (size_t)c, 0, 0, 1)) {
        for (int ch = 1; ch < c; ch++)
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
