/* Optimizer-state kernels: SGD momentum and mini-batch gradient accumulation (docs/numerics.md,
 * "Momentum and mini-batches"). C twins of tinytrain/kernels/optim.py; the accumulation itself is tt_add_f32
 * in place. Both kernels work in place; no allocation. Build with -ffp-contract=off (no FMA). */
#include "tt_kernels.h"

/* m[e] = f32(f32(mu * m[e]) + g[e]): two roundings, the product first (PyTorch SGD's buf.mul_(mu).add_(g)). */
void tt_momentum_f32(float *m, const float *g, int n, float mu) {
    for (int e = 0; e < n; e++) {
        const float t = mu * m[e];
        m[e] = t + g[e];
    }
}

/* x[e] = +0.0f (a gradient accumulator after its mini-batch's update, and at tt_model_init). */
void tt_zero_f32(float *x, int n) {
    for (int e = 0; e < n; e++) x[e] = 0.0f;
}
