/* Memory-saving kernels (tt_memory_ops.h): the patch tiles here; the conv2d memory levers in ops/ (split weights,
 * in-place depthwise, fused block backward), compiled in this translation unit. */
#include "tt_memory_ops.h"

#include <stddef.h>
#include <string.h>

#include "tt_dot2x2.h"
#include "tt_dsp.h"
#include "tt_dw_plane.h"
#include "tt_kernels.h"
#include "tt_math.h"

#include "ops/tt_conv2d_split.c"

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

#if defined(__GNUC__) || defined(__clang__)
#define TT_WEAK __attribute__((weak))
#else
#define TT_WEAK
#endif
/* the default reader (weak: an application's own tt_input_read replaces it at link time) */
TT_WEAK void tt_input_read(const int8_t *sample, uint32_t offset, int8_t *dst, uint32_t nbytes) {
    memcpy(dst, sample + offset, nbytes);
}

void tt_tile_load_stream_s8(const int8_t *sample, int h, int w, int c, int row0, int col0, int rows, int cols,
                            int32_t fill, int8_t *t) {
    const unsigned char f = (unsigned char)(int8_t)fill;
    int s0 = 0; /* the columns of the tile inside the image: [s0, s1) */
    while (s0 < cols && col0 + s0 < 0) s0++;
    int s1 = cols;
    if (col0 + s1 > w) s1 = w - col0;
    if (s1 < s0) s1 = s0;
    for (int r = 0; r < rows; r++) {
        const int ih = row0 + r;
        int8_t *tr = t + (size_t)r * cols * c;
        if (ih < 0 || ih >= h || s1 == s0) {
            memset(tr, f, (size_t)cols * c);
            continue;
        }
        if (s0 > 0) memset(tr, f, (size_t)s0 * c);
        tt_input_read(sample, (uint32_t)(((size_t)ih * w + (size_t)(col0 + s0)) * c), tr + (size_t)s0 * c,
                      (uint32_t)((size_t)(s1 - s0) * c));
        if (s1 < cols) memset(tr + (size_t)s1 * c, f, (size_t)(cols - s1) * c);
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

#include "ops/tt_conv2d_inplace.c"

#include "ops/tt_ir_block_bwd.c"
