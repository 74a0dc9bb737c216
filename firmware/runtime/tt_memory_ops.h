/* tinytrain runtime: memory-saving kernels, the C twins of tinytrain/kernels/memory_ops.py (bit-identical
 * by contract, docs/numerics.md and docs/memory.md). Same conventions as tt_kernels.h: HWC activations,
 * OHWI weights, explicit sizes, no allocation. */
#ifndef TT_MEMORY_OPS_H
#define TT_MEMORY_OPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- split trainable weights (CompileOptions.split_weights) ----
 * A regular conv whose first k of ci input channels are trained keeps those in SRAM (wt: [co][kh][kw][k]) and
 * the rest in flash (wt_rest: [co][kh][kw][ci - k]). Same results as tt_conv2d_s8 / tt_conv2d_bwd_input_f32 on
 * the concatenated weights. */
void tt_conv2d_split_s8(const int8_t *x, int h, int w, int ci, const int8_t *wt, const int8_t *wt_rest, int co,
                        int kh, int kw, int k, const int32_t *bias, const float *m, int32_t x_zero, int32_t y_zero,
                        int stride, int pad, int8_t *y);
/* 1x1 stride 1 (and the classifier): dx[p][i] = sum_{o asc} (g[p][o] * s_w[o]) * W[o][i]. */
void tt_conv2d_split_bwd_input_f32(const float *g, int p, int co, const int8_t *wt, const int8_t *wt_rest, int ci,
                                   int k, const float *s_w, float *dx);

/* ---- patch-based first stage (CompileOptions.patch) ----
 * A tile t [rows][cols][c] holds the window whose top-left element is (row0, col0) of an h x w tensor; row0 and
 * col0 may be negative and the window may pass the border: such positions hold `fill` (the consuming conv's
 * zero point), so an unpadded conv over the tile equals the padded conv over the tensor. */
void tt_tile_load_s8(const int8_t *x, int h, int w, int c, int row0, int col0, int rows, int cols, int32_t fill,
                     int8_t *t);
/* In place: every position of t outside the h x w tensor set to fill. */
void tt_tile_fill_s8(int8_t *t, int rows, int cols, int c, int row0, int col0, int h, int w, int32_t fill);
/* y[row0 + r][col0 + s][:] = t[r][s][:]; the window lies inside y ([h][w][c]); writes nothing else. */
void tt_tile_store_s8(const int8_t *t, int rows, int cols, int c, int8_t *y, int h, int w, int row0, int col0);

/* ---- in-place depthwise input gradient (CompileOptions.inplace_dw_grad), stride 1 ----
 * dx (same shape as g, [ho][wo][c]) overwrites g: channel by channel, the plane g[:][:][ch] is copied to
 * `scratch` (ho * wo floats) and dx[:][:][ch] computed from it (taps kh asc, kw asc, from +0.0f), so it only
 * overwrites elements of channel ch, already copied. Bit-identical to tt_dwconv2d_bwd_input_f32. */
void tt_dwconv2d_bwd_input_inplace_f32(float *g, int ho, int wo, int c, const int8_t *wt, int kh, int kw,
                                       const float *s_w, int pad, float *scratch);
static inline size_t tt_dwconv2d_bwd_input_inplace_f32_scratch_bytes(int ho, int wo) {
    return (size_t)4 * (size_t)ho * (size_t)wo;
}

#ifdef __cplusplus
}
#endif
#endif
