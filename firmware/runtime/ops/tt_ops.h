/* Kernels of the imported models' op kinds (tinytrain/ops/<op>.py; one C file each in this directory,
 * compiled through firmware/runtime/tt_ops.c). Layouts as tt_kernels.h: activations HWC, regular conv
 * weights OHWI, depthwise [kh][kw][C]. No allocation, no scratch. */
#ifndef TT_OPS_H
#define TT_OPS_H

#include <stdint.h>

void tt_qconv_s8(const int8_t *x, int h, int w, int ci, const int8_t *wt, int co, int kh, int kw,
                 const int32_t *bias, const int32_t *mult, const int32_t *shift, int32_t x_zero, int32_t y_zero,
                 int32_t act_min, int32_t act_max, int stride_h, int stride_w, int pad_top, int pad_left,
                 int out_h, int out_w, int8_t *y);
void tt_qdwconv_s8(const int8_t *x, int h, int w, int c, const int8_t *wt, int kh, int kw, const int32_t *bias,
                   const int32_t *mult, const int32_t *shift, int32_t x_zero, int32_t y_zero, int32_t act_min,
                   int32_t act_max, int stride_h, int stride_w, int pad_top, int pad_left, int out_h, int out_w,
                   int dm, int8_t *y); /* c: output channels = input channels * dm */
void tt_qadd_s8(const int8_t *a, const int8_t *b, int n, int32_t a_zero, int32_t b_zero, int32_t y_zero,
                int left_shift, int32_t a_mult, int32_t a_shift, int32_t b_mult, int32_t b_shift, int32_t y_mult,
                int32_t y_shift, int32_t act_min, int32_t act_max, int8_t *y);
void tt_maxpool_s8(const int8_t *x, int h, int w, int c, int kh, int kw, int stride_h, int stride_w, int pad_top,
                   int pad_left, int out_h, int out_w, int32_t act_min, int32_t act_max, int8_t *y);
void tt_avgpool_win_s8(const int8_t *x, int h, int w, int c, int kh, int kw, int stride_h, int stride_w,
                       int pad_top, int pad_left, int out_h, int out_w, int32_t act_min, int32_t act_max,
                       int8_t *y);
void tt_mean_s8(const int8_t *x, int h, int w, int c, int32_t x_zero, int32_t y_zero, int32_t multiplier,
                int32_t shift, int8_t *y);
void tt_pad_s8(const int8_t *x, int h, int w, int c, int pad_top, int pad_bottom, int pad_left, int pad_right,
               int32_t value, int8_t *y);
void tt_concat2_s8(const int8_t *a, const int8_t *b, int h, int w, int ca, int cb, int axis, int ha, int wa,
                   int8_t *y);
/* bit j of bits: act_min < y[j] < act_max (the fused activation's clamp did not bind) */
void tt_mask_range_s8(const int8_t *y, int n, int32_t act_min, int32_t act_max, uint8_t *bits);

/* numerics "ort" (onnxruntime): float32 requantization scale per output channel */
void tt_qconv_f_s8(const int8_t *x, int h, int w, int ci, const int8_t *wt, int co, int kh, int kw,
                   const int32_t *bias, const float *scale, int32_t x_zero, int32_t y_zero, int32_t act_min,
                   int32_t act_max, int stride_h, int stride_w, int pad_top, int pad_left, int out_h, int out_w,
                   int8_t *y);
void tt_qdwconv_f_s8(const int8_t *x, int h, int w, int c, const int8_t *wt, int kh, int kw, const int32_t *bias,
                     const float *scale, int32_t x_zero, int32_t y_zero, int32_t act_min, int32_t act_max,
                     int stride_h, int stride_w, int pad_top, int pad_left, int out_h, int out_w, int dm,
                     int8_t *y);
void tt_qadd_ort_s8(const int8_t *a, const int8_t *b, int n, int32_t a_mult, int32_t b_mult, int32_t zconst,
                    int shift, int32_t y_zero, int8_t *y);
void tt_avgpool_f_s8(const int8_t *x, int h, int w, int c, int kh, int kw, int stride_h, int stride_w, int pad_top,
                     int pad_left, int out_h, int out_w, int32_t x_zero, int32_t y_zero, float x_scale,
                     float y_scale, int count_include_pad, int8_t *y);
void tt_lut_s8(const int8_t *x, int n, const int8_t *table, int8_t *y); /* y = table[x + 128] */
void tt_mean_f_s8(const int8_t *x, int h, int w, int c, int32_t x_zero, int32_t y_zero, float scale, int8_t *y);

void tt_hardswish_s8(const int8_t *x, int n, int32_t x_zero, int32_t y_zero, int32_t out_mult16, int32_t out_exp,
                     int32_t relu_mult16, int32_t relu_exp, int8_t *y);

void tt_logistic_s8(const int8_t *x, int n, int32_t x_zero, int32_t mult, int32_t shift, int32_t radius,
                    int8_t *y);
void tt_mul_s8(const int8_t *a, const int8_t *b, int n, int c, int nb, int32_t a_zero, int32_t b_zero,
               int32_t y_zero, int32_t mult, int32_t shift, int32_t act_min, int32_t act_max, int8_t *y);

/* ---- backward (float32) ---- */
void tt_logistic_bwd_f32(const float *g, const int8_t *y, int n, float y_scale, int32_t y_zero, float *dx);
void tt_mul_bwd_f32(const float *g, int n, int c, const int8_t *other, int n_other, float other_scale,
                    int32_t other_zero, int reduce, float *dx);
void tt_hardswish_bwd_f32(const float *g, const int8_t *x, int n, float x_scale, int32_t x_zero, float *dx);
void tt_qconv_bwd_input_f32(const float *g, int ho, int wo, int co, const int8_t *wt, int kh, int kw, int ci,
                            const float *s_w, int in_h, int in_w, int stride_h, int stride_w, int pad_top,
                            int pad_left, float *dx);
void tt_qdwconv_bwd_input_f32(const float *g, int ho, int wo, int c, const int8_t *wt, int kh, int kw, int dm,
                              const float *s_w, int in_h, int in_w, int stride_h, int stride_w, int pad_top,
                              int pad_left, float *dx);
void tt_qconv_wgrad_f32(const float *g, int ho, int wo, int co, const int8_t *x, int h, int w, int cx,
                        int32_t x_zero, int k_in, int kh, int kw, int stride_h, int stride_w, int pad_top,
                        int pad_left, float *s);
void tt_qdwconv_wgrad_f32(const float *g, int ho, int wo, int c, const int8_t *x, int h, int w, int cx,
                          int32_t x_zero, int k_in, int kh, int kw, int stride_h, int stride_w, int pad_top,
                          int pad_left, int dm, float *s);
void tt_avgpool_win_bwd_f32(const float *g, int ho, int wo, int c, int in_h, int in_w, int kh, int kw,
                            int stride_h, int stride_w, int pad_top, int pad_left, int count_include_pad,
                            float *dx);
void tt_maxpool_bwd_f32(const float *g, int ho, int wo, int c, const int8_t *x, int h, int w, int kh, int kw,
                        int stride_h, int stride_w, int pad_top, int pad_left, float *dx);
void tt_pad_bwd_f32(const float *g, int ho, int wo, int c, int pad_top, int pad_left, int in_h, int in_w,
                    float *dx);
void tt_concat2_bwd_f32(const float *g, int ho, int wo, int co, int axis, int h, int w, int c, int offset,
                        float *dx);

/* ---- embedding (gather) and its sparse table update (ops/embedding.c) ---- */
void tt_embedding_s8(const int8_t *ids, int t_len, const int8_t *wt, int rows, int d, int8_t *y);
void tt_embedding_wgrad_update(const float *g, const int8_t *ids, int t_len, int8_t *wt, int rows, int d,
                               const float *q, float neg_lr, int rule, uint32_t *rng, float *shadow);
void tt_embedding_wgrad_f32(const float *g, const int8_t *ids, int t_len, int rows, int d, float *s);

#endif
