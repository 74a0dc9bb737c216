/* qconv forward, TFLite Micro numerics (tinytrain/ops/conv.py). */
#include "ops/tt_ops.h"
#include "tt_dsp.h"
#include "ops/tt_tflm.h"
#include "tt_math.h"

static inline int8_t qconv_out(int64_t acc, int32_t bias, int32_t mult, int32_t shift, int32_t y_zero,
                               int32_t lo, int32_t hi) {
    int32_t a = (int32_t)((uint32_t)(int32_t)acc + (uint32_t)bias);
    return (int8_t)tt_clamp32(tt_mbqm(a, mult, shift) + y_zero, lo, hi);
}


/* acc = sum over the in-bounds taps of (x - x_zero) * w for output channel weights wo at window origin (y0, x0):
 * each kernel row's in-bounds taps are one contiguous run of (j1 - j0) * ci bytes in x and in w, and the zero
 * point is applied once, acc = sum(x * w) - x_zero * sum(w) (the same integer). */
static inline int32_t qconv_acc(const int8_t *x, int h, int w, int ci, const int8_t *wo, int kh, int kw, int y0,
                                int x0, int32_t x_zero) {
    int i0 = y0 < 0 ? -y0 : 0, i1 = y0 + kh > h ? h - y0 : kh;
    int j0 = x0 < 0 ? -x0 : 0, j1 = x0 + kw > w ? w - x0 : kw;
    int32_t sxw = 0, sw = 0;
    int run = (j1 - j0) * ci;
    for (int i = i0; i < i1; ++i) {
        const int8_t *xp = x + ((long)(y0 + i) * w + x0 + j0) * ci;
        const int8_t *wp = wo + ((long)i * kw + j0) * ci;
        int t = 0;
#ifdef TT_USE_DSP
        /* four products per step: bytes 0/2 and 1/3 of x and w as int16 pairs, two SMLADs (the same integers) */
        const uint32_t ones = 0x00010001u;
        for (; t + 4 <= run; t += 4) {
            uint32_t xw = tt_load32(xp + t), ww = tt_load32(wp + t);
            uint32_t wa = __sxtb16(ww), wb = tt_sxtb16_ror8(ww);
            sxw = __smlad(__sxtb16(xw), wa, sxw);
            sxw = __smlad(tt_sxtb16_ror8(xw), wb, sxw);
            sw = __smlad(wa, ones, sw);
            sw = __smlad(wb, ones, sw);
        }
#endif
        for (; t < run; ++t) {
            sxw += (int32_t)xp[t] * (int32_t)wp[t];
            sw += wp[t];
        }
    }
    return sxw - x_zero * sw;
}

void tt_qconv_s8(const int8_t *x, int h, int w, int ci, const int8_t *wt, int co, int kh, int kw,
                 const int32_t *bias, const int32_t *mult, const int32_t *shift, int32_t x_zero, int32_t y_zero,
                 int32_t act_min, int32_t act_max, int stride_h, int stride_w, int pad_top, int pad_left,
                 int out_h, int out_w, int8_t *y) {
    for (int oy = 0; oy < out_h; ++oy) {
        for (int ox = 0; ox < out_w; ++ox) {
            int y0 = oy * stride_h - pad_top, x0 = ox * stride_w - pad_left;
            for (int o = 0; o < co; ++o) {
                int32_t acc = qconv_acc(x, h, w, ci, wt + (long)o * kh * kw * ci, kh, kw, y0, x0, x_zero);
                y[((long)oy * out_w + ox) * co + o] =
                    qconv_out(acc, bias[o], mult[o], shift[o], y_zero, act_min, act_max);
            }
        }
    }
}

void tt_qdwconv_s8(const int8_t *x, int h, int w, int c, const int8_t *wt, int kh, int kw, const int32_t *bias,
                   const int32_t *mult, const int32_t *shift, int32_t x_zero, int32_t y_zero, int32_t act_min,
                   int32_t act_max, int stride_h, int stride_w, int pad_top, int pad_left, int out_h, int out_w,
                   int dm, int8_t *y) {
    int cin = c / dm; /* output channel ch reads input channel ch / dm (depth multiplier dm) */
    for (int oy = 0; oy < out_h; ++oy) {
        for (int ox = 0; ox < out_w; ++ox) {
            int y0 = oy * stride_h - pad_top, x0 = ox * stride_w - pad_left;
            for (int ch = 0; ch < c; ++ch) {
                int32_t acc = 0;
                for (int i = 0; i < kh; ++i) {
                    int iy = y0 + i;
                    if (iy < 0 || iy >= h) continue;
                    for (int j = 0; j < kw; ++j) {
                        int ix = x0 + j;
                        if (ix < 0 || ix >= w) continue;
                        acc += ((int32_t)x[((long)iy * w + ix) * cin + ch / dm] - x_zero) *
                               (int32_t)wt[((long)i * kw + j) * c + ch];
                    }
                }
                y[((long)oy * out_w + ox) * c + ch] =
                    qconv_out(acc, bias[ch], mult[ch], shift[ch], y_zero, act_min, act_max);
            }
        }
    }
}

/* onnxruntime's requantization (numerics "ort"): f32(acc + bias) * scale, clamped, rounded half to even. */
static inline int8_t qconv_out_f(int32_t acc, int32_t bias, float scale, int32_t y_zero, int32_t lo, int32_t hi) {
    int32_t a = (int32_t)((uint32_t)acc + (uint32_t)bias);
    float v = (float)a * scale;
    float vlo = (float)(lo - y_zero), vhi = (float)(hi - y_zero);
    v = v < vlo ? vlo : (v > vhi ? vhi : v);
    return (int8_t)((int32_t)tt_rne(v) + y_zero);
}

void tt_qconv_f_s8(const int8_t *x, int h, int w, int ci, const int8_t *wt, int co, int kh, int kw,
                   const int32_t *bias, const float *scale, int32_t x_zero, int32_t y_zero, int32_t act_min,
                   int32_t act_max, int stride_h, int stride_w, int pad_top, int pad_left, int out_h, int out_w,
                   int8_t *y) {
    for (int oy = 0; oy < out_h; ++oy) {
        for (int ox = 0; ox < out_w; ++ox) {
            int y0 = oy * stride_h - pad_top, x0 = ox * stride_w - pad_left;
            for (int o = 0; o < co; ++o) {
                int32_t acc = qconv_acc(x, h, w, ci, wt + (long)o * kh * kw * ci, kh, kw, y0, x0, x_zero);
                y[((long)oy * out_w + ox) * co + o] = qconv_out_f(acc, bias[o], scale[o], y_zero, act_min, act_max);
            }
        }
    }
}

void tt_qdwconv_f_s8(const int8_t *x, int h, int w, int c, const int8_t *wt, int kh, int kw, const int32_t *bias,
                     const float *scale, int32_t x_zero, int32_t y_zero, int32_t act_min, int32_t act_max,
                     int stride_h, int stride_w, int pad_top, int pad_left, int out_h, int out_w, int dm,
                     int8_t *y) {
    int cin = c / dm;
    for (int oy = 0; oy < out_h; ++oy) {
        for (int ox = 0; ox < out_w; ++ox) {
            int y0 = oy * stride_h - pad_top, x0 = ox * stride_w - pad_left;
            for (int ch = 0; ch < c; ++ch) {
                int32_t acc = 0;
                for (int i = 0; i < kh; ++i) {
                    int iy = y0 + i;
                    if (iy < 0 || iy >= h) continue;
                    for (int j = 0; j < kw; ++j) {
                        int ix = x0 + j;
                        if (ix < 0 || ix >= w) continue;
                        acc += ((int32_t)x[((long)iy * w + ix) * cin + ch / dm] - x_zero) *
                               (int32_t)wt[((long)i * kw + j) * c + ch];
                    }
                }
                y[((long)oy * out_w + ox) * c + ch] = qconv_out_f(acc, bias[ch], scale[ch], y_zero, act_min, act_max);
            }
        }
    }
}
