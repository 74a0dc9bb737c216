/* Memory-saving kernels (tt_memory_ops.h; numpy twins in tinytrain/kernels/memory_ops.py). */
#include "tt_memory_ops.h"

#include <stddef.h>
#include <string.h>

#include "tt_math.h"

static inline int8_t split_requant(int32_t acc, int32_t bias, float m, int32_t y_zero) {
    int32_t s = (int32_t)((uint32_t)acc + (uint32_t)bias); /* int32 wrap, as tt_conv2d_s8 */
    return tt_requant_out((float)s * m, y_zero);
}

void tt_conv2d_split_s8(const int8_t *x, int h, int w, int ci, const int8_t *wt, const int8_t *wt_rest, int co,
                        int kh, int kw, int k, const int32_t *bias, const float *m, int32_t x_zero, int32_t y_zero,
                        int stride, int pad, int8_t *y) {
    const int ho = (h + 2 * pad - kh) / stride + 1, wo = (w + 2 * pad - kw) / stride + 1;
    const int kr = ci - k;
    if (kh == 1 && kw == 1 && stride == 1 && pad == 0) {
        const int np = h * w;
        for (int p = 0; p < np; p++) {
            const int8_t *xp = x + (size_t)p * ci, *xr = xp + k;
            int8_t *yp = y + (size_t)p * co;
            for (int o = 0; o < co; o++) {
                const int8_t *wa = wt + (size_t)o * k, *wb = wt_rest + (size_t)o * kr;
                int32_t acc = 0;
                for (int i = 0; i < k; i++) acc += (xp[i] - x_zero) * wa[i];
                for (int i = 0; i < kr; i++) acc += (xr[i] - x_zero) * wb[i];
                yp[o] = split_requant(acc, bias[o], m[o], y_zero);
            }
        }
        return;
    }
    for (int oh = 0; oh < ho; oh++) {
        for (int ow = 0; ow < wo; ow++) {
            int8_t *yp = y + ((size_t)oh * wo + ow) * co;
            for (int o = 0; o < co; o++) {
                int32_t acc = 0;
                for (int a = 0; a < kh; a++) {
                    const int ih = oh * stride - pad + a;
                    if (ih < 0 || ih >= h) continue; /* padded taps add (x_zero - x_zero) * w = 0 */
                    for (int b = 0; b < kw; b++) {
                        const int iw = ow * stride - pad + b;
                        if (iw < 0 || iw >= w) continue;
                        const int8_t *xp = x + ((size_t)ih * w + iw) * ci;
                        const int8_t *wa = wt + (((size_t)o * kh + a) * kw + b) * k;
                        const int8_t *wb = wt_rest + (((size_t)o * kh + a) * kw + b) * kr;
                        for (int i = 0; i < k; i++) acc += (xp[i] - x_zero) * wa[i];
                        for (int i = 0; i < kr; i++) acc += (xp[k + i] - x_zero) * wb[i];
                    }
                }
                yp[o] = split_requant(acc, bias[o], m[o], y_zero);
            }
        }
    }
}

void tt_conv2d_split_bwd_input_f32(const float *g, int p, int co, const int8_t *wt, const int8_t *wt_rest, int ci,
                                   int k, const float *s_w, float *dx) {
    const int kr = ci - k;
    for (int q = 0; q < p; q++) {
        const float *gp = g + (size_t)q * co;
        float *dp = dx + (size_t)q * ci;
        for (int i = 0; i < ci; i++) dp[i] = 0.0f;
        for (int o = 0; o < co; o++) { /* o ascending: every dx[q][i] sums its terms in the contract's order */
            const float t = gp[o] * s_w[o];
            const int8_t *wa = wt + (size_t)o * k, *wb = wt_rest + (size_t)o * kr;
            for (int i = 0; i < k; i++) dp[i] = dp[i] + t * (float)wa[i];
            for (int i = 0; i < kr; i++) dp[k + i] = dp[k + i] + t * (float)wb[i];
        }
    }
}

void tt_tile_load_s8(const int8_t *x, int h, int w, int c, int row0, int col0, int rows, int cols, int32_t fill,
                     int8_t *t) {
    const int8_t f = (int8_t)fill;
    for (int r = 0; r < rows; r++) {
        const int ih = row0 + r;
        int8_t *tr = t + (size_t)r * cols * c;
        if (ih < 0 || ih >= h) {
            memset(tr, (unsigned char)f, (size_t)cols * c);
            continue;
        }
        int s = 0;
        for (; s < cols && col0 + s < 0; s++) memset(tr + (size_t)s * c, (unsigned char)f, (size_t)c);
        int s_end = cols;
        if (col0 + s_end > w) s_end = w - col0;
        if (s_end > s) {
            memcpy(tr + (size_t)s * c, x + ((size_t)ih * w + (col0 + s)) * c, (size_t)(s_end - s) * c);
            s = s_end;
        }
        for (; s < cols; s++) memset(tr + (size_t)s * c, (unsigned char)f, (size_t)c);
    }
}

void tt_tile_fill_s8(int8_t *t, int rows, int cols, int c, int row0, int col0, int h, int w, int32_t fill) {
    const unsigned char f = (unsigned char)(int8_t)fill;
    for (int r = 0; r < rows; r++) {
        const int ih = row0 + r;
        int8_t *tr = t + (size_t)r * cols * c;
        if (ih < 0 || ih >= h) {
            memset(tr, f, (size_t)cols * c);
            continue;
        }
        for (int s = 0; s < cols; s++) {
            const int iw = col0 + s;
            if (iw < 0 || iw >= w) memset(tr + (size_t)s * c, f, (size_t)c);
        }
    }
}

void tt_tile_store_s8(const int8_t *t, int rows, int cols, int c, int8_t *y, int h, int w, int row0, int col0) {
    (void)h;
    for (int r = 0; r < rows; r++)
        memcpy(y + ((size_t)(row0 + r) * w + col0) * c, t + (size_t)r * cols * c, (size_t)cols * c);
}

void tt_dwconv2d_bwd_input_inplace_f32(float *g, int ho, int wo, int c, const int8_t *wt, int kh, int kw,
                                       const float *s_w, int pad, float *scratch) {
    const int h = ho, w = wo; /* stride 1: dx has g's shape */
    for (int ch = 0; ch < c; ch++) {
        const float s = s_w[ch];
        for (int j = 0; j < ho * wo; j++) scratch[j] = g[(size_t)j * c + ch];
        for (int ih = 0; ih < h; ih++) {
            for (int iw = 0; iw < w; iw++) {
                float acc = 0.0f;
                for (int a = 0; a < kh; a++) {
                    const int oh = ih + pad - a;
                    if (oh < 0) break;
                    if (oh >= ho) continue;
                    for (int b = 0; b < kw; b++) {
                        const int ow = iw + pad - b;
                        if (ow < 0) break;
                        if (ow >= wo) continue;
                        acc = acc + (scratch[(size_t)oh * wo + ow] * s) * (float)wt[((size_t)a * kw + b) * c + ch];
                    }
                }
                g[((size_t)ih * w + iw) * c + ch] = acc;
            }
        }
    }
}
