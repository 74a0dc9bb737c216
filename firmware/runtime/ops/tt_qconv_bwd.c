/* qconv backward, any kernel / stride / padding (tinytrain/ops/conv.py): input gradients and weight-gradient
 * sums, float32, in the summation order the numpy kernels state. */
#include "ops/tt_ops.h"

void tt_qconv_bwd_input_f32(const float *g, int ho, int wo, int co, const int8_t *wt, int kh, int kw, int ci,
                            const float *s_w, int in_h, int in_w, int stride_h, int stride_w, int pad_top,
                            int pad_left, float *dx) {
    for (long i = 0; i < (long)in_h * in_w * ci; ++i) dx[i] = 0.0f;
    for (int i = 0; i < kh; ++i) {
        for (int j = 0; j < kw; ++j) {
            for (int o = 0; o < co; ++o) {
                const int8_t *wr = wt + (((long)o * kh + i) * kw + j) * ci;
                for (int oy = 0; oy < ho; ++oy) {
                    int iy = oy * stride_h - pad_top + i;
                    if (iy < 0 || iy >= in_h) continue;
                    for (int ox = 0; ox < wo; ++ox) {
                        int ix = ox * stride_w - pad_left + j;
                        if (ix < 0 || ix >= in_w) continue;
                        float t = g[((long)oy * wo + ox) * co + o] * s_w[o];
                        float *d = dx + ((long)iy * in_w + ix) * ci;
                        for (int c = 0; c < ci; ++c) d[c] += t * (float)wr[c];
                    }
                }
            }
        }
    }
}

void tt_qdwconv_bwd_input_f32(const float *g, int ho, int wo, int c, const int8_t *wt, int kh, int kw, int dm,
                              const float *s_w, int in_h, int in_w, int stride_h, int stride_w, int pad_top,
                              int pad_left, float *dx) {
    int cin = c / dm; /* c: output channels; output channel ci * dm + k reads input channel ci */
    for (long i = 0; i < (long)in_h * in_w * cin; ++i) dx[i] = 0.0f;
    for (int i = 0; i < kh; ++i) {
        for (int j = 0; j < kw; ++j) {
            const int8_t *wr = wt + ((long)i * kw + j) * c;
            for (int oy = 0; oy < ho; ++oy) {
                int iy = oy * stride_h - pad_top + i;
                if (iy < 0 || iy >= in_h) continue;
                for (int ox = 0; ox < wo; ++ox) {
                    int ix = ox * stride_w - pad_left + j;
                    if (ix < 0 || ix >= in_w) continue;
                    const float *gp = g + ((long)oy * wo + ox) * c;
                    float *d = dx + ((long)iy * in_w + ix) * cin;
                    for (int ci = 0; ci < cin; ++ci)
                        for (int k = 0; k < dm; ++k) {
                            int ch = ci * dm + k;
                            d[ci] += (gp[ch] * s_w[ch]) * (float)wr[ch];
                        }
                }
            }
        }
    }
}

void tt_qconv_wgrad_f32(const float *g, int ho, int wo, int co, const int8_t *x, int h, int w, int cx,
                        int32_t x_zero, int k_in, int kh, int kw, int stride_h, int stride_w, int pad_top,
                        int pad_left, float *s) {
    for (long i = 0; i < (long)co * kh * kw * k_in; ++i) s[i] = 0.0f;
    for (int oy = 0; oy < ho; ++oy) {
        for (int ox = 0; ox < wo; ++ox) {
            const float *gp = g + ((long)oy * wo + ox) * co;
            for (int o = 0; o < co; ++o) {
                float gv = gp[o];
                for (int i = 0; i < kh; ++i) {
                    int iy = oy * stride_h - pad_top + i;
                    if (iy < 0 || iy >= h) continue;
                    for (int j = 0; j < kw; ++j) {
                        int ix = ox * stride_w - pad_left + j;
                        if (ix < 0 || ix >= w) continue;
                        const int8_t *xp = x + ((long)iy * w + ix) * cx;
                        float *sp = s + (((long)o * kh + i) * kw + j) * k_in;
                        for (int c = 0; c < k_in; ++c) sp[c] += gv * (float)((int32_t)xp[c] - x_zero);
                    }
                }
            }
        }
    }
}

void tt_qdwconv_wgrad_f32(const float *g, int ho, int wo, int c, const int8_t *x, int h, int w, int cx,
                          int32_t x_zero, int k_in, int kh, int kw, int stride_h, int stride_w, int pad_top,
                          int pad_left, int dm, float *s) {
    for (long i = 0; i < (long)kh * kw * k_in; ++i) s[i] = 0.0f;
    for (int oy = 0; oy < ho; ++oy) {
        for (int ox = 0; ox < wo; ++ox) {
            const float *gp = g + ((long)oy * wo + ox) * c;
            for (int i = 0; i < kh; ++i) {
                int iy = oy * stride_h - pad_top + i;
                if (iy < 0 || iy >= h) continue;
                for (int j = 0; j < kw; ++j) {
                    int ix = ox * stride_w - pad_left + j;
                    if (ix < 0 || ix >= w) continue;
                    const int8_t *xp = x + ((long)iy * w + ix) * cx;
                    float *sp = s + ((long)i * kw + j) * k_in;
                    for (int ch = 0; ch < k_in; ++ch) sp[ch] += gp[ch] * (float)((int32_t)xp[ch / dm] - x_zero);
                }
            }
        }
    }
}
