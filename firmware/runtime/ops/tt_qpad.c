/* qpad forward: constant padding of rows and columns (tinytrain/ops/pad.py). */
#include "ops/tt_ops.h"

void tt_pad_s8(const int8_t *x, int h, int w, int c, int pad_top, int pad_bottom, int pad_left, int pad_right,
               int32_t value, int8_t *y) {
    int ow = w + pad_left + pad_right, oh = h + pad_top + pad_bottom;
    for (int oy = 0; oy < oh; ++oy) {
        for (int ox = 0; ox < ow; ++ox) {
            int iy = oy - pad_top, ix = ox - pad_left;
            int8_t *dst = y + ((long)oy * ow + ox) * c;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) {
                for (int ch = 0; ch < c; ++ch) dst[ch] = (int8_t)value;
            } else {
                const int8_t *src = x + ((long)iy * w + ix) * c;
                for (int ch = 0; ch < c; ++ch) dst[ch] = src[ch];
            }
        }
    }
}
