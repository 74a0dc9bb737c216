/* qpool backward (tinytrain/ops/pool.py): average pool spreads g / n over the in-bounds taps; max pool routes
 * g to the first tap (row-major) holding the window's maximum of the saved input. Output p in raster order. */
#include "ops/tt_ops.h"

void tt_avgpool_win_bwd_f32(const float *g, int ho, int wo, int c, int in_h, int in_w, int kh, int kw,
                            int stride_h, int stride_w, int pad_top, int pad_left, int count_include_pad,
                            float *dx) {
    for (long i = 0; i < (long)in_h * in_w * c; ++i) dx[i] = 0.0f;
    for (int oy = 0; oy < ho; ++oy) {
        int y0 = oy * stride_h - pad_top;
        int ya = y0 < 0 ? 0 : y0, yb = y0 + kh > in_h ? in_h : y0 + kh;
        for (int ox = 0; ox < wo; ++ox) {
            int x0 = ox * stride_w - pad_left;
            int xa = x0 < 0 ? 0 : x0, xb = x0 + kw > in_w ? in_w : x0 + kw;
            float n = (float)(count_include_pad ? kh * kw : (yb - ya) * (xb - xa));
            const float *gp = g + ((long)oy * wo + ox) * c;
            for (int ch = 0; ch < c; ++ch) {
                float d = gp[ch] / n;
                for (int iy = ya; iy < yb; ++iy)
                    for (int ix = xa; ix < xb; ++ix) dx[((long)iy * in_w + ix) * c + ch] += d;
            }
        }
    }
}

void tt_maxpool_bwd_f32(const float *g, int ho, int wo, int c, const int8_t *x, int h, int w, int kh, int kw,
                        int stride_h, int stride_w, int pad_top, int pad_left, float *dx) {
    for (long i = 0; i < (long)h * w * c; ++i) dx[i] = 0.0f;
    for (int oy = 0; oy < ho; ++oy) {
        int y0 = oy * stride_h - pad_top;
        int ya = y0 < 0 ? 0 : y0, yb = y0 + kh > h ? h : y0 + kh;
        for (int ox = 0; ox < wo; ++ox) {
            int x0 = ox * stride_w - pad_left;
            int xa = x0 < 0 ? 0 : x0, xb = x0 + kw > w ? w : x0 + kw;
            for (int ch = 0; ch < c; ++ch) {
                long best = ((long)ya * w + xa) * c + ch;
                for (int iy = ya; iy < yb; ++iy) {
                    for (int ix = xa; ix < xb; ++ix) {
                        long k = ((long)iy * w + ix) * c + ch;
                        if (x[k] > x[best]) best = k;
                    }
                }
                dx[best] += g[((long)oy * wo + ox) * c + ch];
            }
        }
    }
}
