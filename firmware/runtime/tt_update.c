/* The shared rng and the update rules (tt_update_rules.h); the weight-gradient + update kernels of the zoo
 * ops one file per op in ops/ (tinytrain/ops/registry.py), compiled in this translation unit. */
#include "tt_dsp.h"
#include "tt_kernels.h"
#include "tt_math.h"

uint32_t tt_rng_state = 0x2545F491u;

uint32_t tt_xorshift32(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

#include "tt_update_rules.h"

#include "ops/tt_conv2d_update.c"
