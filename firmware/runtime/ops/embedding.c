/* embedding (gather) forward and its sparse table update (tinytrain/ops/embedding.py). */
#include "ops/tt_ops.h"

#include "tt_kernels.h"

static inline int tt_embedding_row(int8_t id, int rows) {
    int v = id;
    return v < 0 ? 0 : (v >= rows ? rows - 1 : v);
}

void tt_embedding_s8(const int8_t *ids, int t_len, const int8_t *wt, int rows, int d, int8_t *y) {
    for (int t = 0; t < t_len; ++t) {
        const int8_t *src = wt + (long)tt_embedding_row(ids[t], rows) * d;
        for (int j = 0; j < d; ++j) y[(long)t * d + j] = src[j];
    }
}

/* Columns summed per pass: a bounded stack buffer (256 B). */
#define TT_EMBED_CHUNK 64

void tt_embedding_wgrad_update(const float *g, const int8_t *ids, int t_len, int8_t *wt, int rows, int d,
                               const float *q, float neg_lr, int rule, uint32_t *rng, float *shadow) {
    float s[TT_EMBED_CHUNK];
    for (int v = 0; v < rows; ++v) {
        int seen = 0;
        for (int t = 0; t < t_len && !seen; ++t) seen = tt_embedding_row(ids[t], rows) == v;
        if (!seen) continue; /* a row of a token not in the window: not read, not written, no draws */
        for (int c0 = 0; c0 < d; c0 += TT_EMBED_CHUNK) {
            int n = d - c0 < TT_EMBED_CHUNK ? d - c0 : TT_EMBED_CHUNK;
            for (int j = 0; j < n; ++j) s[j] = 0.0f;
            for (int t = 0; t < t_len; ++t) {
                if (tt_embedding_row(ids[t], rows) != v) continue;
                const float *gt = g + (long)t * d + c0;
                for (int j = 0; j < n; ++j) s[j] += gt[j];
            }
            /* the update rule on n consecutive elements, exactly as one output channel of a 1x1 conv */
            tt_conv2d_weight_update(s, wt + (long)v * d + c0, 1, 1, 1, n, n, q + v, neg_lr, rule, rng,
                                    shadow ? shadow + (long)v * d + c0 : 0);
        }
    }
}

void tt_embedding_wgrad_f32(const float *g, const int8_t *ids, int t_len, int rows, int d, float *s) {
    for (long i = 0; i < (long)rows * d; ++i) s[i] = 0.0f;
    for (int t = 0; t < t_len; ++t) {
        float *sv = s + (long)tt_embedding_row(ids[t], rows) * d;
        for (int j = 0; j < d; ++j) sv[j] += g[(long)t * d + j];
    }
}
