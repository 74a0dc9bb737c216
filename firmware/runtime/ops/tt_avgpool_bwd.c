/* Global average pool gradient (tinytrain/ops/avgpool.py). Compiled through tt_backward.c. */
#include "tt_kernels.h"

void tt_avgpool_bwd_f32(const float *g, int c, int h, int w, float *dx) {
    const float inv_hw = 1.0f / (float)(h * w);
    const int n = h * w;
    for (int ch = 0; ch < c; ch++) {
        const float v = g[ch] * inv_hw;
        for (int j = 0; j < n; j++) dx[(size_t)j * c + ch] = v;
    }
}
