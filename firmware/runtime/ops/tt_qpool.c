/* qpool forward: max and average pooling over the in-bounds taps, TFLite Micro numerics (tinytrain/ops/pool.py). */
#include "ops/tt_ops.h"
#include "ops/tt_tflm.h"
#include "tt_math.h"

static void pool(const int8_t *x, int h, int w, int c, int kh, int kw, int stride_h, int stride_w, int pad_top,
                 int pad_left, int out_h, int out_w, int32_t act_min, int32_t act_max, int is_max, int8_t *y) {
    for (int oy = 0; oy < out_h; ++oy) {
        int y0 = oy * stride_h - pad_top;
        int ya = y0 < 0 ? 0 : y0, yb = y0 + kh > h ? h : y0 + kh;
        for (int ox = 0; ox < out_w; ++ox) {
            int x0 = ox * stride_w - pad_left;
            int xa = x0 < 0 ? 0 : x0, xb = x0 + kw > w ? w : x0 + kw;
            int32_t n = (int32_t)(yb - ya) * (xb - xa);
            for (int ch = 0; ch < c; ++ch) {
                int32_t acc = is_max ? -128 : 0;
                for (int iy = ya; iy < yb; ++iy) {
                    for (int ix = xa; ix < xb; ++ix) {
                        int32_t v = x[((long)iy * w + ix) * c + ch];
                        if (is_max) {
                            if (v > acc) acc = v;
                        } else {
                            acc += v;
                        }
                    }
                }
                if (!is_max) acc = acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n;
                y[((long)oy * out_w + ox) * c + ch] = (int8_t)tt_clamp32(acc, act_min, act_max);
            }
        }
    }
}

void tt_maxpool_s8(const int8_t *x, int h, int w, int c, int kh, int kw, int stride_h, int stride_w, int pad_top,
                   int pad_left, int out_h, int out_w, int32_t act_min, int32_t act_max, int8_t *y) {
    pool(x, h, w, c, kh, kw, stride_h, stride_w, pad_top, pad_left, out_h, out_w, act_min, act_max, 1, y);
}

void tt_avgpool_win_s8(const int8_t *x, int h, int w, int c, int kh, int kw, int stride_h, int stride_w,
                       int pad_top, int pad_left, int out_h, int out_w, int32_t act_min, int32_t act_max,
                       int8_t *y) {
    pool(x, h, w, c, kh, kw, stride_h, stride_w, pad_top, pad_left, out_h, out_w, act_min, act_max, 0, y);
}

/* onnxruntime's QLinearAveragePool (numerics "ort", tinytrain/ops/pool.py avgpool_f_s8). */
void tt_avgpool_f_s8(const int8_t *x, int h, int w, int c, int kh, int kw, int stride_h, int stride_w, int pad_top,
                     int pad_left, int out_h, int out_w, int32_t x_zero, int32_t y_zero, float x_scale,
                     float y_scale, int count_include_pad, int8_t *y) {
    float lo = (float)(-128 - y_zero), hi = (float)(127 - y_zero);
    for (int oy = 0; oy < out_h; ++oy) {
        int y0 = oy * stride_h - pad_top;
        int ya = y0 < 0 ? 0 : y0, yb = y0 + kh > h ? h : y0 + kh;
        for (int ox = 0; ox < out_w; ++ox) {
            int x0 = ox * stride_w - pad_left;
            int xa = x0 < 0 ? 0 : x0, xb = x0 + kw > w ? w : x0 + kw;
            int n = count_include_pad ? kh * kw : (yb - ya) * (xb - xa);
            float sc = x_scale / ((float)n * y_scale);
            for (int ch = 0; ch < c; ++ch) {
                int32_t s = 0;
                for (int iy = ya; iy < yb; ++iy)
                    for (int ix = xa; ix < xb; ++ix) s += (int32_t)x[((long)iy * w + ix) * c + ch] - x_zero;
                float v = (float)s * sc;
                v = v < lo ? lo : (v > hi ? hi : v);
                y[((long)oy * out_w + ox) * c + ch] = (int8_t)((int32_t)tt_rne(v) + y_zero);
            }
        }
    }
}
