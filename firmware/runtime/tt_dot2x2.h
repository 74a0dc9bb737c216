/* The 2 pixels x 2 outputs int8 dot of the 1x1 fast paths (DSP), shared by tt_conv2d_s8 (1x1 and im2col,
 * ops/tt_conv2d.c) and tt_conv2d_split_s8 (ops/tt_conv2d_split.c), and the output-pair loops around it (tt_pw2x2,
 * tt_pw2x2_split: dot + requantization in assembly). Internal to the runtime.
 *
 * Two input pixels are widened once (tt_widen_pair: x - x_zero as SXTB16 halfword pairs, interleaved
 * [p0 (0,2), p0 (1,3), p1 (0,2), p1 (1,3)] per 4 channels) and reused for every output pair; tt_dot2x2 adds the
 * widened pair dotted with two weight rows to four int32 accumulators (exact integer sums: any order). */
#ifndef TT_DOT2X2_H
#define TT_DOT2X2_H

#include <stdint.h>

#include "tt_dsp.h"

#ifdef TT_USE_DSP
#if defined(__ARM_FEATURE_DSP) && !defined(TT_NO_DSP)
/* tt_dot2x2(px, xend, pa, wb, acc): acc[0..3] (a00, a01, a10, a11) += the widened pixel pair px..xend dotted with
 * weight rows pa (output a) and pa + wb (output b). In assembly (ops/tt_conv2d.c, TT_DOT2X2_LOOP; GCC's allocation
 * spills on the M4): per 8 channels 34 instructions for 32 MAC (37 with -DTT_DUAL_ISSUE, fewer M7 cycles). */
void tt_dot2x2(const uint32_t *px, const uint32_t *xend, const int8_t *pa, int wb, int32_t *acc);
#define TT_DOT2X2_ASM 1
#if defined(__ARM_FP) && (__ARM_FP & 4)
/* What tt_pw2x2 needs besides the dot: the outputs' bias and m, y0 = the first pixel's outputs (the second's at
 * y0 + co), y_zero, skip = the weight row stride minus the dot's length (0, or -1..-3 over a zero-padded last
 * block), and y0_end = y0 + the count of outputs done (even, >= 2). */
typedef struct {
    const int32_t *bias;
    const float *m;
    int8_t *y0;
    int32_t co;
    int32_t y_zero;
    int32_t skip;
    int8_t *y0_end;
} tt_pw2x2_out;
/* tt_pw2x2(xb, xend, wt, stride, st): for each output pair o, o + 1 (o from 0 while y0 + o < y0_end), the widened
 * pixel pair xb..xend (n = 4 * (xend - xb) / 4 channels) dotted with rows o and o + 1 of wt (row stride `stride`,
 * n bytes read from each row) from zero, then the four outputs requantized (tt_requant_dsp, tt_dsp.h) and stored.
 * With a zero-padded last block (n > stride: the padded lanes are 0, so the bytes read past a row's end add 0),
 * the caller keeps the last row read inside wt (tt_pw2x2_outputs). In assembly (ops/tt_conv2d.c): the tt_dot2x2
 * loop plus about 50 instructions per output pair for the setup, requantization and stores. */
void tt_pw2x2(const uint32_t *xb, const uint32_t *xend, const int8_t *wt, int stride, const tt_pw2x2_out *st);
/* tt_pw2x2_split(xa, xa_end, wt, k, st): the same over two parts, both from zero into the same accumulators: xa
 * (k channels, k % 4 == 0) with rows o, o + 1 of wt (k each), then st->xr..st->xr_end (kr channels, kr % 4 == 0)
 * with rows o, o + 1 of st->wr (kr each). *st is read only. */
typedef struct {
    tt_pw2x2_out out;
    const uint32_t *xr;
    const uint32_t *xr_end;
    const int8_t *wr;
    int32_t kr;
} tt_pw2x2_split_args;
void tt_pw2x2_split(const uint32_t *xa, const uint32_t *xa_end, const int8_t *wt, int k,
                    const tt_pw2x2_split_args *st);
#define TT_PW2X2_ASM 1
/* How many outputs (even) of co rows of ci bytes tt_pw2x2 may do over the padded last block: all pairs when
 * ci % 4 == 0; else only pairs whose row o + 1, read for 4 * ceil(ci / 4) bytes, ends inside the co rows. */
static inline int tt_pw2x2_outputs(int ci, int co) {
    const int d = ((ci + 3) & ~3) - ci;                   /* bytes read past a row: 0..3 */
    const int rows = d == 0 ? 0 : (ci == 1 ? 3 : 1);      /* ceil(d / ci): the rows those bytes reach into */
    const int lim = ci > 0 ? co - rows : 0;
    return lim >= 2 ? lim & ~1 : 0;
}
#endif
#else
/* The same in C (the host-native build with emulated intrinsics). */
static inline void tt_dot2x2(const uint32_t *px, const uint32_t *xend, const int8_t *pa, int wb, int32_t *acc) {
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
#pragma GCC unroll 2
    for (; px < xend; px += 4, pa += 4) {
        const uint32_t u = tt_load32(pa), v = tt_load32(pa + wb);
        const uint32_t ua = __sxtb16(u), uc = tt_sxtb16_ror8(u);
        const uint32_t va = __sxtb16(v), vc = tt_sxtb16_ror8(v);
        const uint32_t x0 = px[0], x1 = px[1], x2 = px[2], x3 = px[3];
        a00 = __smlad(x0, ua, a00);
        a00 = __smlad(x1, uc, a00);
        a01 = __smlad(x0, va, a01);
        a01 = __smlad(x1, vc, a01);
        a10 = __smlad(x2, ua, a10);
        a10 = __smlad(x3, uc, a10);
        a11 = __smlad(x2, va, a11);
        a11 = __smlad(x3, vc, a11);
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}
#endif

/* The n % 4 (1..3) tail of tt_widen_pair: t0, t1, and the last block of xb with zero lanes beyond n (read by
 * tt_pw2x2). Out of line: rare, and its locals stay off the callers' frames. */
static __attribute__((noinline)) void tt_widen_tail(const int8_t *x0, const int8_t *x1, int tl, int32_t x_zero,
                                                    uint32_t *q, int32_t *t0, int32_t *t1) {
    int32_t a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
    for (int t = 0; t < tl; t++) {
        t0[t] = a[t] = x0[t] - x_zero;
        t1[t] = b[t] = x1[t] - x_zero;
    }
    q[0] = (uint32_t)(uint16_t)a[0] | (uint32_t)(uint16_t)a[2] << 16;
    q[1] = (uint32_t)(uint16_t)a[1] | (uint32_t)(uint16_t)a[3] << 16;
    q[2] = (uint32_t)(uint16_t)b[0] | (uint32_t)(uint16_t)b[2] << 16;
    q[3] = (uint32_t)(uint16_t)b[1] | (uint32_t)(uint16_t)b[3] << 16;
}

/* Widen two int8 vectors of length n (x - x_zero) into xb (see above) and the n % 4 tail elements t0, t1; with a
 * tail, xb also gets it as one more block, zero beyond n: xb holds 4 * ((n + 3) / 4) words. */
static inline void tt_widen_pair(const int8_t *x0, const int8_t *x1, int n, int32_t x_zero, uint32_t *xb,
                                 int32_t *t0, int32_t *t1) {
    const int nq = n >> 2, ct = n & ~3;
    const uint32_t nzz = ((uint32_t)(uint16_t)(int16_t)-x_zero) * 0x00010001u;
    for (int q = 0; q < nq; q++) {
        const uint32_t u = tt_load32(x0 + 4 * q), v = tt_load32(x1 + 4 * q);
        xb[4 * q] = __sxtab16(nzz, u);
        xb[4 * q + 1] = tt_sxtab16_ror8(nzz, u);
        xb[4 * q + 2] = __sxtab16(nzz, v);
        xb[4 * q + 3] = tt_sxtab16_ror8(nzz, v);
    }
    if (n & 3) tt_widen_tail(x0 + ct, x1 + ct, n & 3, x_zero, xb + 4 * nq, t0, t1);
}
#endif

#endif
