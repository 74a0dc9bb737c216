/* Backward of the copying ops (tinytrain/ops/pad.py, concat.py): slices of the output gradient. */
#include "ops/tt_ops.h"

void tt_pad_bwd_f32(const float *g, int ho, int wo, int c, int pad_top, int pad_left, int in_h, int in_w,
                    float *dx) {
    (void)ho;
    for (int iy = 0; iy < in_h; ++iy)
        for (int ix = 0; ix < in_w; ++ix)
            for (int ch = 0; ch < c; ++ch)
                dx[((long)iy * in_w + ix) * c + ch] = g[((long)(iy + pad_top) * wo + ix + pad_left) * c + ch];
}

void tt_concat2_bwd_f32(const float *g, int ho, int wo, int co, int axis, int h, int w, int c, int offset,
                        float *dx) {
    (void)ho;
    int oy0 = axis == 1 ? offset : 0, ox0 = axis == 2 ? offset : 0, oc0 = axis == 0 ? offset : 0;
    for (int iy = 0; iy < h; ++iy)
        for (int ix = 0; ix < w; ++ix)
            for (int ch = 0; ch < c; ++ch)
                dx[((long)iy * w + ix) * c + ch] = g[((long)(iy + oy0) * wo + ix + ox0) * co + oc0 + ch];
}
