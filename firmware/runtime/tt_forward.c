/* Integer forward kernels (docs/numerics.md, "Integer forward"): the translation unit of the zoo ops' forward
 * kernels, one file per op in ops/ (tinytrain/ops/registry.py), and the saved-activation slice. */
#include "tt_dot2x2.h"
#include "tt_dsp.h"
#include "tt_dw_plane.h"
#include "tt_kernels.h"
#include "tt_math.h"

#include "ops/tt_conv2d.c"

#include "ops/tt_add.c"

#include "ops/tt_avgpool.c"

void tt_slice_channels_s8(const int8_t *x, int h, int w, int c, int k, int8_t *y) {
    const int n = h * w;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < k; i++) y[(size_t)j * k + i] = x[(size_t)j * c + i];
}
