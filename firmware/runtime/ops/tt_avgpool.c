/* Global average pool forward (tinytrain/ops/avgpool.py; docs/numerics.md). Compiled through tt_forward.c. */
#include "tt_kernels.h"

void tt_avgpool_s8(const int8_t *x, int h, int w, int c, int8_t *y) {
    const int32_t n = h * w;
    for (int ch = 0; ch < c; ch++) {
        int32_t s = 0;
        for (int j = 0; j < n; j++) s += x[(size_t)j * c + ch];
        int32_t q = s / n, r = s - q * n;
        if (r < 0) { /* floor division */
            q -= 1;
            r += n;
        }
        if (2 * r > n || (2 * r == n && (q & 1))) q += 1;
        y[ch] = (int8_t)q;
    }
}
