/* qconcat forward: two int8 tensors side by side along channels (axis 0), rows (1) or columns (2) of the
 * IR's (C, H, W) (tinytrain/ops/concat.py). a is [ha][wa][ca], b fills the rest of y [h][w][ca + cb]. */
#include "ops/tt_ops.h"

void tt_concat2_s8(const int8_t *a, const int8_t *b, int h, int w, int ca, int cb, int axis, int ha, int wa,
                   int8_t *y) {
    int cy = axis == 0 ? ca + cb : ca;
    for (int iy = 0; iy < h; ++iy) {
        for (int ix = 0; ix < w; ++ix) {
            int8_t *dst = y + ((long)iy * w + ix) * cy;
            if (axis == 0) {
                for (int ch = 0; ch < ca; ++ch) dst[ch] = a[((long)iy * w + ix) * ca + ch];
                for (int ch = 0; ch < cb; ++ch) dst[ca + ch] = b[((long)iy * w + ix) * cb + ch];
            } else {
                int in_a = axis == 1 ? iy < ha : ix < wa;
                const int8_t *src;
                if (in_a) {
                    src = a + ((long)iy * wa + ix) * ca;
                } else if (axis == 1) {
                    src = b + ((long)(iy - ha) * w + ix) * ca;
                } else {
                    src = b + ((long)iy * (w - wa) + (ix - wa)) * ca;
                }
                for (int ch = 0; ch < ca; ++ch) dst[ch] = src[ch];
            }
        }
    }
}
