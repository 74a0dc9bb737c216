/* tinytrain runtime kernels: the C twins of the numpy kernels (each op's in tinytrain/ops/<op>, the shared
 * machinery's in tinytrain.kernels), bit-identical by contract. This header, tt_memory_ops.h and ops/tt_ops.h are
 * the one signature table (tinytrain/signatures.py parses them: the ctypes binding and the emitters follow; one
 * declaration per kernel, `ret tt_name(type name, ...);`).
 * Specification: docs/numerics.md. Layouts: activations HWC, regular conv weights OHWI
 * ([Co][kh][kw][Ci]; 1x1 = [Co][Ci]), depthwise weights [kh][kw][C]. No allocation. The kernels declared here
 * need no arena scratch: they work in registers, their own output buffers and bounded stack buffers sized to
 * the layer (at most 2 KB: depthwise int16 plane, 1x1 / im2col widened inputs, weight-gradient float input
 * block; docs/kernels.md). Their outputs never alias inputs, except tt_apply_mask_f32 and tt_add_f32, which may
 * run in place (the in-place kernels of tt_memory_ops.h write over their input through arena scratch).
 * Build float code with -ffp-contract=off and without -ffast-math (no implicit FMA, no reassociation); the one
 * fused operation is TT_MAC, the backward sums' multiply-add contract (tt_math.h: TT_FMA, decided by the model's
 * tt_config.h; docs/numerics.md, "Fused multiply-add"). */
#ifndef TT_KERNELS_H
#define TT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Update rules (docs/numerics.md, Update). */
#define TT_RULE_NEAREST 0
#define TT_RULE_STOCHASTIC 1
#define TT_RULE_SHADOW 2

/* The one shared xorshift32 state (seed != 0), advanced by the stochastic rule. */
extern uint32_t tt_rng_state;
uint32_t tt_xorshift32(uint32_t *state);

/* ---- integer forward ---- */
void tt_conv2d_s8(const int8_t *x, int h, int w, int ci, const int8_t *wt, int co, int kh, int kw,
                  const int32_t *bias, const float *m, int32_t x_zero, int32_t y_zero, int stride, int pad,
                  int8_t *y);
void tt_dwconv2d_s8(const int8_t *x, int h, int w, int c, const int8_t *wt, int kh, int kw, const int32_t *bias,
                    const float *m, int32_t x_zero, int32_t y_zero, int stride, int pad, int8_t *y);
void tt_add_s8(const int8_t *a, const int8_t *b, int n, float fa, float fb, int32_t a_zero, int32_t b_zero,
               int32_t y_zero, int8_t *y);
void tt_avgpool_s8(const int8_t *x, int h, int w, int c, int8_t *y);
void tt_slice_channels_s8(const int8_t *x, int h, int w, int c, int k, int8_t *y);

/* ---- loss ---- */
float tt_expf(float x); /* x <= 0 */
float tt_logf(float s); /* s >= 1 */
void tt_softmax_xent(const int8_t *z, int k, float z_scale, int label, float *g, float *loss);

/* ---- float backward ---- */
void tt_mask_s8(const int8_t *y, int n, uint8_t *bits); /* writes (n + 7) / 8 bytes */
void tt_apply_mask_f32(const float *g, const uint8_t *bits, int n, float *out);
void tt_conv2d_bwd_input_f32(const float *g, int p, int co, const int8_t *wt, int ci, const float *s_w, float *dx);
void tt_dwconv2d_bwd_input_f32(const float *g, int ho, int wo, int c, const int8_t *wt, int kh, int kw,
                               const float *s_w, int in_h, int in_w, int stride, int pad, float *dx);
void tt_avgpool_bwd_f32(const float *g, int c, int h, int w, float *dx);
void tt_add_f32(const float *a, const float *b, int n, float *y);

/* ---- weight gradient + QAS-SGD update (in place on wt / bias / shadow / *rng) ----
 * x: saved input [h][w][x_c], first k_in channels read. shadow: float32 copy of the updated elements
 * ([co][kh][kw][k_in] or [kh][kw][k_in]) for TT_RULE_SHADOW, else may be NULL. rng: for TT_RULE_STOCHASTIC. */
void tt_conv2d_wgrad_update(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int8_t *wt,
                            int co, int kh, int kw, int ci, int k_in, const float *q, float neg_lr, int rule,
                            uint32_t *rng, float *shadow, int stride, int pad);
void tt_dwconv2d_wgrad_update(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int8_t *wt,
                              int kh, int kw, int c, int k_in, const float *q, float neg_lr, int rule,
                              uint32_t *rng, float *shadow, int stride, int pad);
void tt_bias_grad_update(const float *g, int p, int co, int32_t *bias, const float *qb, float neg_lr);
/* Runtime-internal (the fused block backward, channels in pairs): two 1x1 rows of one output each, weight rows wa
 * and wb ([k_in] in SRAM) from output gradients ga and gb ([np]) over the same saved input x ([np][x_c]): both rows'
 * sums (each the one-output tt_conv2d_wgrad_update sum), then row a's update, then row b's (ka, kb: neg_lr * q;
 * sha, shb: shadow rows for TT_RULE_SHADOW). Stack: 2 * k_in floats. */
void tt_wgrad_update_1x1_rows2(const float *ga, const float *gb, const int8_t *x, int np, int x_c, int32_t x_zero,
                               int k_in, int8_t *wa, int8_t *wb, float ka, float kb, int rule, uint32_t *rng,
                               float *sha, float *shb);

/* ---- the same, split in two (operator reordering off): sums into s, then the update from s ----
 * s layouts: [co][kernel][kernel][k_in], [kernel][kernel][k_in], [co]. Bit-identical to the fused kernels. */
void tt_conv2d_wgrad_f32(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int co,
                         int kernel, int k_in, int stride, int pad, float *s);
void tt_dwconv2d_wgrad_f32(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int c,
                           int kernel, int k_in, int stride, int pad, float *s);
void tt_bias_grad_f32(const float *g, int p, int co, float *s);
void tt_conv2d_weight_update(const float *s, int8_t *wt, int co, int kh, int kw, int ci, int k_in, const float *q,
                             float neg_lr, int rule, uint32_t *rng, float *shadow);
void tt_dwconv2d_weight_update(const float *s, int8_t *wt, int kh, int kw, int c, int k_in, const float *q,
                               float neg_lr, int rule, uint32_t *rng, float *shadow);
void tt_bias_update(const float *s, int co, int32_t *bias, const float *qb, float neg_lr);

/* ---- optimizer state (tt_optim.c; docs/numerics.md, "Momentum and mini-batches"), in place ----
 * The mini-batch accumulator adds each sample's sums with tt_add_f32 (y == b). */
void tt_momentum_f32(float *m, const float *g, int n, float mu); /* m = f32(f32(mu * m) + g) */
void tt_zero_f32(float *x, int n);                                /* x = +0.0f */

/* Scratch: no kernel declared here needs arena scratch (tinytrain.kernels.scratch_bytes returns 0; the fast paths'
 * bounded stack buffers are part of the measured stack high-water). A kernel that does declares
 * static inline size_t tt_<name>_scratch_bytes(...) beside it (tt_memory_ops.h), twinned by <name>_scratch_bytes in
 * its op's Python module (tests/kernels/test_signatures.py checks both sides). */
#define TT_SCRATCH_BYTES_NONE ((size_t)0)

#ifdef __cplusplus
}
#endif
#endif
