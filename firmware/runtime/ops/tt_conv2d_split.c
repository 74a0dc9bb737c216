/* conv2d with split trainable weights (CompileOptions.split_weights; tinytrain/ops/conv2d). Compiled through
 * tt_memory_ops.c. */
#include "tt_memory_ops.h"

#include <stddef.h>
#include <string.h>

#include "tt_dot2x2.h"
#include "tt_dsp.h"
#include "tt_dw_plane.h"
#include "tt_kernels.h"
#include "tt_math.h"

#ifdef TT_USE_DSP
/* ---- split 1x1 fast path: the 1x1 path of tt_conv2d_s8 (ops/tt_conv2d.c) on each part ----
 * Per pixel pair, the first k channels and the other ci - k are widened (tt_widen_pair, tt_dot2x2.h) into xa and
 * xr; per output pair, the 2 pixels x 2 outputs dot runs over xa with the SRAM rows, then over xr with the flash
 * rows, into the same four int32 accumulators (exact integer sums: the order does not matter); requantized once
 * (QADD bias, VCVTR, QADD, SSAT). With k % 4 == (ci - k) % 4 == 0 every output pair of a pixel pair in assembly
 * (tt_pw2x2_split, ops/tt_conv2d.c); else tt_dot2x2 over each part plus the % 4 tails in C. A last odd pixel is
 * widened twice (both halves of the pair equal) and stored once. Stack: 4 * ceil(k / 4) + 4 * ceil((ci - k) / 4)
 * words + 16, ci <= 512. */
#define TT_SPLIT_MAX_CI 512

/* acc (a00, a01, a10, a11) += the n % 4 tail of one part: rows pa, pa + wb from column n & ~3. */
static inline void split_tail(const int32_t *t0, const int32_t *t1, int n, const int8_t *pa, int wb,
                              int32_t *acc) {
    pa += n & ~3;
    for (int t = 0; t < (n & 3); t++) {
        acc[0] += t0[t] * pa[t];
        acc[1] += t0[t] * pa[wb + t];
        acc[2] += t1[t] * pa[t];
        acc[3] += t1[t] * pa[wb + t];
    }
}

static __attribute__((noinline)) void split1x1_fast(const int8_t *x, int np, int ci, const int8_t *wt,
                                                    const int8_t *wt_rest, int co, int k, const int32_t *bias,
                                                    const float *m, int32_t x_zero, int32_t y_zero, int8_t *y) {
    const int kr = ci - k, qa = k >> 2, qb = kr >> 2;
    uint32_t xa[4 * ((k + 3) >> 2) + 2] __attribute__((aligned(8)));
    uint32_t xr[4 * ((kr + 3) >> 2) + 2] __attribute__((aligned(8)));
    int32_t ta0[3], ta1[3], tb0[3], tb1[3];
#ifdef TT_PW2X2_ASM
    const int asm_ok = (k & 3) == 0 && (kr & 3) == 0 && co >= 2;
    tt_pw2x2_split_args st = {{bias, m, y, co, y_zero, 0, y}, xr, xr + 4 * qb, wt_rest, kr};
#endif
    for (int p = 0; p < np; p += 2) {
        const int two = p + 1 < np;
        const int8_t *x0 = x + (size_t)p * ci, *x1 = two ? x0 + ci : x0;
        tt_widen_pair(x0, x1, k, x_zero, xa, ta0, ta1);
        tt_widen_pair(x0 + k, x1 + k, kr, x_zero, xr, tb0, tb1);
        int8_t *y0 = y + (size_t)p * co, *y1 = y0 + co;
        int o = 0;
#ifdef TT_PW2X2_ASM
        if (two && asm_ok) { /* the output pairs in assembly; an odd last output below */
            st.out.y0 = y0;
            st.out.y0_end = y0 + (co & ~1);
            tt_pw2x2_split(xa, xa + 4 * qa, wt, k, &st);
            o = co & ~1;
        }
#endif
        for (; o < co; o += 2) {
            const int pair = o + 1 < co; /* odd co: the last output twice, stored once */
            const int8_t *pa = wt + (size_t)o * k, *pr = wt_rest + (size_t)o * kr;
            const int wa = pair ? k : 0, wr = pair ? kr : 0;
            int32_t acc[4] = {0, 0, 0, 0};
            tt_dot2x2(xa, xa + 4 * qa, pa, wa, acc);
            tt_dot2x2(xr, xr + 4 * qb, pr, wr, acc);
            split_tail(ta0, ta1, k, pa, wa, acc);
            split_tail(tb0, tb1, kr, pr, wr, acc);
            const int32_t ba = bias[o];
            const float ma = m[o];
            y0[o] = tt_requant_dsp(acc[0], ba, ma, y_zero);
            if (two) y1[o] = tt_requant_dsp(acc[2], ba, ma, y_zero);
            if (pair) {
                const int32_t bb = bias[o + 1];
                const float mb = m[o + 1];
                y0[o + 1] = tt_requant_dsp(acc[1], bb, mb, y_zero);
                if (two) y1[o + 1] = tt_requant_dsp(acc[3], bb, mb, y_zero);
            }
        }
    }
}
#endif

void tt_conv2d_split_s8(const int8_t *x, int h, int w, int ci, const int8_t *wt, const int8_t *wt_rest, int co,
                        int kh, int kw, int k, const int32_t *bias, const float *m, int32_t x_zero, int32_t y_zero,
                        int stride, int pad, int8_t *y) {
    const int ho = (h + 2 * pad - kh) / stride + 1, wo = (w + 2 * pad - kw) / stride + 1;
    const int kr = ci - k;
    if (kh == 1 && kw == 1 && stride == 1 && pad == 0) {
        const int np = h * w;
#ifdef TT_USE_DSP
        if (ci <= TT_SPLIT_MAX_CI && k >= 0 && k <= ci) {
            split1x1_fast(x, np, ci, wt, wt_rest, co, k, bias, m, x_zero, y_zero, y);
            return;
        }
#endif
        for (int p = 0; p < np; p++) {
            const int8_t *xp = x + (size_t)p * ci, *xr = xp + k;
            int8_t *yp = y + (size_t)p * co;
            for (int o = 0; o < co; o++) {
                const int8_t *wa = wt + (size_t)o * k, *wb = wt_rest + (size_t)o * kr;
                int32_t acc = 0;
                for (int i = 0; i < k; i++) acc += (xp[i] - x_zero) * wa[i];
                for (int i = 0; i < kr; i++) acc += (xr[i] - x_zero) * wb[i];
                yp[o] = tt_requant_acc(acc, bias[o], m[o], y_zero);
            }
        }
        return;
    }
    for (int oh = 0; oh < ho; oh++) {
        for (int ow = 0; ow < wo; ow++) {
            int8_t *yp = y + ((size_t)oh * wo + ow) * co;
            for (int o = 0; o < co; o++) {
                int32_t acc = 0;
                for (int a = 0; a < kh; a++) {
                    const int ih = oh * stride - pad + a;
                    if (ih < 0 || ih >= h) continue; /* padded taps add (x_zero - x_zero) * w = 0 */
                    for (int b = 0; b < kw; b++) {
                        const int iw = ow * stride - pad + b;
                        if (iw < 0 || iw >= w) continue;
                        const int8_t *xp = x + ((size_t)ih * w + iw) * ci;
                        const int8_t *wa = wt + (((size_t)o * kh + a) * kw + b) * k;
                        const int8_t *wb = wt_rest + (((size_t)o * kh + a) * kw + b) * kr;
                        for (int i = 0; i < k; i++) acc += (xp[i] - x_zero) * wa[i];
                        for (int i = 0; i < kr; i++) acc += (xp[k + i] - x_zero) * wb[i];
                    }
                }
                yp[o] = tt_requant_acc(acc, bias[o], m[o], y_zero);
            }
        }
    }
}

void tt_conv2d_split_bwd_input_f32(const float *g, int p, int co, const int8_t *wt, const int8_t *wt_rest, int ci,
                                   int k, const float *s_w, float *dx) {
    const int kr = ci - k;
    for (int q = 0; q < p; q++) {
        const float *gp = g + (size_t)q * co;
        float *dp = dx + (size_t)q * ci;
        for (int i = 0; i < ci; i++) dp[i] = 0.0f;
        for (int o = 0; o < co; o++) { /* o ascending: every dx[q][i] sums its terms in the contract's order */
            const float t = gp[o] * s_w[o];
            const int8_t *wa = wt + (size_t)o * k, *wb = wt_rest + (size_t)o * kr;
            for (int i = 0; i < k; i++) dp[i] = TT_MAC(dp[i], t, (float)wa[i]);
            for (int i = 0; i < kr; i++) dp[k + i] = TT_MAC(dp[k + i], t, (float)wb[i]);
        }
    }
}
