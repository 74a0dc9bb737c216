/* Softmax cross-entropy on int8 logits (docs/numerics.md, Loss). */
#include "tt_kernels.h"
#include "tt_math.h"

float tt_expf(float x) {
    if (x < -87.0f) return 0.0f;
    const float n = tt_rne(x * 1.44269504f);
    const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
    float t = 0.0013888889f;
    t = 0.008333334f + r * t;
    t = 0.041666668f + r * t;
    t = 0.16666667f + r * t;
    t = 0.5f + r * t;
    t = 1.0f + r * t;
    t = 1.0f + r * t;
    return t * tt_bits_f32((uint32_t)((int32_t)n + 127) << 23); /* exact 2^n, n >= -126 */
}

float tt_logf(float s) {
    const uint32_t u = tt_f32_bits(s);
    const int32_t e = (int32_t)(u >> 23) - 127;
    const float m = tt_bits_f32((u & 0x007FFFFFu) | 0x3F800000u);
    const float sv = (m - 1.0f) / (m + 1.0f);
    const float s2 = sv * sv;
    float t = 0.11111111f;
    t = 0.14285715f + s2 * t;
    t = 0.2f + s2 * t;
    t = 0.33333334f + s2 * t;
    t = 1.0f + s2 * t;
    const float l = (2.0f * sv) * t;
    return (float)e * 0.6931472f + l;
}

void tt_softmax_xent(const int8_t *z, int k, float z_scale, int label, float *g, float *loss) {
    int32_t zmax = -128;
    for (int j = 0; j < k; j++)
        if (z[j] > zmax) zmax = z[j];
    float s = 0.0f;
    for (int j = 0; j < k; j++) { /* g holds e[k] until the division */
        g[j] = tt_expf((float)(z[j] - zmax) * z_scale);
        s = s + g[j];
    }
    for (int j = 0; j < k; j++) g[j] = g[j] / s;
    g[label] = g[label] - 1.0f;
    *loss = tt_logf(s) - (float)(z[label] - zmax) * z_scale;
}
