/* tinytrain runtime: memory-saving kernels, the C twins of tinytrain/ops/conv2d/memory.py and the tiles of
 * tinytrain/kernels/memory_ops.py (bit-identical
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
/* tt_tile_load_s8 from a streamed sample (CompileOptions.stream_input): the same tile, but every stretch of a
 * row inside the image is fetched with tt_input_read(sample, byte offset in the HWC sample, dst, bytes), so the
 * sample is never whole in SRAM. */
void tt_tile_load_stream_s8(const int8_t *sample, int h, int w, int c, int row0, int col0, int rows, int cols,
                            int32_t fill, int8_t *t);
/* Where the streamed sample's bytes come from. The library's default (a weak symbol) copies them from `sample`,
 * so a caller that passes a pointer (to flash, to a camera frame, ...) needs nothing more; an application that
 * keeps no copy at all (the training app reads its source row by row) defines its own and passes NULL. */
void tt_input_read(const int8_t *sample, uint32_t offset, int8_t *dst, uint32_t nbytes);
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

/* ---- in-place depthwise forward (CompileOptions.inplace_dw_forward), stride 1 ----
 * y (same shape as x, [h][w][c], kh = kw = 2 * pad + 1) overwrites x: channel by channel, the plane x[:][:][ch]
 * is copied to `scratch` (h * w bytes) and y[:][:][ch] computed from it (padded taps skipped: they add
 * (x_zero - x_zero) * w = 0), so it only overwrites elements of channel ch, already copied. Integer sums:
 * bit-identical to tt_dwconv2d_s8. The DSP fast path (k in {3,5,7}) reads x through an int16 plane on the stack
 * that keeps the halo rows between strips instead, and leaves scratch unused. */
void tt_dwconv2d_s8_inplace(int8_t *x, int h, int w, int c, const int8_t *wt, int kh, int kw, const int32_t *bias,
                            const float *m, int32_t x_zero, int32_t y_zero, int pad, int8_t *scratch);
static inline size_t tt_dwconv2d_s8_inplace_scratch_bytes(int h, int w) { return (size_t)h * (size_t)w; }

/* ---- channel-wise fused inverted-residual backward (CompileOptions.fused_block_backward) ----
 * Block pw1 (1x1, [e][ci]) -> dw (depthwise [kh][kw][e], any stride) -> pw2 (1x1, [co2][e]), dw and pw2 weights
 * frozen. For each expanded channel ch ascending, through two float planes of scratch (ho * wo, then h * w):
 * d = pw2 input gradient of channel ch (sum over o ascending of (g[p][o] * s_w2[o]) * w2[o][ch], from +0.0f),
 * its dw mask, the dw bias update of ch, the dw input gradient of ch (taps kh asc, kw asc), its pw1 mask, then
 * dx[p][i] += (g1[p] * s_w1[ch]) * W1[ch][i] (dx zeroed first: the sum over ch ascending of
 * tt_conv2d_bwd_input_f32), then the pw1 weight-row ch update (tt_conv2d_wgrad_update on one output channel:
 * same sums, same draw order) and the pw1 bias update of ch. Bit-identical to the unfused steps. NULL pointers
 * skip a part (masks, b_dw, dx, x1 = no pw1 weight update, b1). */
typedef struct {
    const float *g; /* pw2 output gradient [ho][wo][co2], masked */
    int ho, wo, co2, e;
    const int8_t *w2;
    const float *s_w2;
    const uint8_t *bits_dw; /* mask of the dw output [ho][wo][e] or NULL */
    const int8_t *w_dw;
    const float *s_w_dw;
    int kh, kw, stride, pad, h, w; /* h, w: the dw input (= pw1 output) size */
    int32_t *b_dw;                 /* dw bias update, or NULL */
    const float *qb_dw;
    const uint8_t *bits_pw1; /* mask of the pw1 output [h][w][e] or NULL */
    int8_t *w1;              /* pw1 [e][k1] (SRAM when trained) */
    const int8_t *w1_rest;   /* [e][ci - k1] (flash) or NULL (k1 == ci) */
    int ci, k1;
    const float *s_w1;
    float *dx; /* block input gradient [h][w][ci], or NULL */
    int32_t *b1;
    const float *qb1;
    const int8_t *x1; /* saved pw1 input [h][w][x1_c] for the pw1 weight update, or NULL */
    int x1_c;
    int32_t x_zero;
    int k_in;
    const float *q1;
    float *shadow1;
    float neg_lr;
    int rule;
    uint32_t *rng;
} tt_ir_block_bwd_args;
void tt_ir_block_bwd_f32(const tt_ir_block_bwd_args *a, float *scratch);
static inline size_t tt_ir_block_bwd_f32_scratch_bytes(int ho, int wo, int h, int w) {
    return (size_t)8 * ((size_t)ho * (size_t)wo + (size_t)h * (size_t)w); /* two planes of each (channel pairs) */
}

#ifdef __cplusplus
}
#endif
#endif
