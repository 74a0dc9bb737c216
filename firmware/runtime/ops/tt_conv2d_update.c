/* conv2d weight gradient + QAS-SGD update kernels (docs/numerics.md, "Weight gradient sums", "Update").
 * Elements are summed and updated in device memory order (regular: o, kh, kw, i < k_in; depthwise:
 * kh, kw, c < k_in), four independent elements at a time, each sum over output positions in raster order.
 * The fast paths sum register blocks in another order of elements; for the stochastic rule they draw each
 * element's number from a per-row rng cursor (rng_starts), so the draws stay those of memory order.
 * (tinytrain/ops/conv2d). Fused (wgrad + update), split (sums, then update) and the bias kernels. Compiled
 * through tt_update.c. */
#include "tt_dsp.h"
#include "tt_kernels.h"
#include "tt_math.h"
#include "tt_update_rules.h"

/* Sums of n <= 4 consecutive updated elements: regular conv (o, a, b, i..i+n). */
static inline void conv_sums(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int co,
                             int ho, int wo, int o, int a, int b, int i, int n, int stride, int pad, float *s) {
    s[0] = s[1] = s[2] = s[3] = 0.0f;
    for (int oh = 0; oh < ho; oh++) {
        const int ih = oh * stride - pad + a;
        if (ih < 0 || ih >= h) continue;
        for (int ow = 0; ow < wo; ow++) {
            const int iw = ow * stride - pad + b;
            if (iw < 0 || iw >= w) continue;
            const float gv = g[((size_t)oh * wo + ow) * co + o];
            const int8_t *xp = x + ((size_t)ih * w + iw) * x_c + i;
            if (n == 4) {
                s[0] = TT_MAC(s[0], gv, (float)(xp[0] - x_zero));
                s[1] = TT_MAC(s[1], gv, (float)(xp[1] - x_zero));
                s[2] = TT_MAC(s[2], gv, (float)(xp[2] - x_zero));
                s[3] = TT_MAC(s[3], gv, (float)(xp[3] - x_zero));
            } else {
                for (int j = 0; j < n; j++) s[j] = TT_MAC(s[j], gv, (float)(xp[j] - x_zero));
            }
        }
    }
}

/* Sums of n <= 4 consecutive updated elements: depthwise (a, b, c..c+n). */
static inline void dw_sums(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int c,
                           int ho, int wo, int a, int b, int i, int n, int stride, int pad, float *s) {
    s[0] = s[1] = s[2] = s[3] = 0.0f;
    for (int oh = 0; oh < ho; oh++) {
        const int ih = oh * stride - pad + a;
        if (ih < 0 || ih >= h) continue;
        for (int ow = 0; ow < wo; ow++) {
            const int iw = ow * stride - pad + b;
            if (iw < 0 || iw >= w) continue;
            const float *gp = g + ((size_t)oh * wo + ow) * c + i;
            const int8_t *xp = x + ((size_t)ih * w + iw) * x_c + i;
            if (n == 4) {
                s[0] = TT_MAC(s[0], gp[0], (float)(xp[0] - x_zero));
                s[1] = TT_MAC(s[1], gp[1], (float)(xp[1] - x_zero));
                s[2] = TT_MAC(s[2], gp[2], (float)(xp[2] - x_zero));
                s[3] = TT_MAC(s[3], gp[3], (float)(xp[3] - x_zero));
            } else {
                for (int j = 0; j < n; j++) s[j] = TT_MAC(s[j], gp[j], (float)(xp[j] - x_zero));
            }
        }
    }
}

/* ---- fast paths: register-blocked sums over an int8 -> float converted block of the saved input ----
 * The input block (4 channels x every position, (x - x_zero) as float) is converted once and reused by every
 * output (1x1) or tap (depthwise). Each element's sum is still the sequential raster-order sum of the contract
 * (blocks interleave independent elements only, never the terms of one). The elements are then updated in
 * block order: input-channel blocks outer, so every row of the updated layout (1x1: an output o; depthwise: a
 * tap) finishes in ascending order, but the rows interleave. The stochastic rule therefore draws each row's
 * numbers from that row's cursor (rng_starts, on the stack: TT_WG_MAX_ROWS outputs per pass, TT_WG_MAX_TAPS
 * taps), which gives every element the draw of the contract's memory order. With a single channel block
 * (k_in <= 4) the block order is the memory order and the rng state itself is the one cursor.
 * Stack: the block, 4 * positions floats, positions <= TT_WG_MAX_POS = 64 (1 KB): maps up to 8x8; the
 * stochastic rule adds the cursors (512 B for 1x1, 256 B for depthwise). */
#define TT_WG_MAX_POS 64
#define TT_WG_MAX_ROWS 128
#define TT_WG_MAX_TAPS 64

/* d[j] = r[j], j < n <= 4, unrolled (a loop would become a memcpy call). */
static inline void copy_run(float *d, const float *r, int n) {
    switch (n) {
    case 4: d[3] = r[3]; /* fall through */
    case 3: d[2] = r[2]; /* fall through */
    case 2: d[1] = r[1]; /* fall through */
    case 1: d[0] = r[0]; /* fall through */
    default: break;
    }
}

/* Where finished sums go: s != NULL: s[idx] = sum (split kernels); else the update rule on wt[widx]. The
 * stochastic rule draws row r's numbers from cur[r * cur_step] (cur_step 0: one cursor, memory order). */
typedef struct {
    float *s;
    int8_t *wt;
    float *sh;
    int rule;
    uint32_t *cur;
    int cur_step;
} wg_sink;

/* Emit n <= 4 finished consecutive elements of row `row`: sums r[j] of updated element idx + j (weight widx + j),
 * step factor neg_lr * q[qi + j] (qstep 1) or neg_lr * q[qi] (qstep 0: one factor for the row). q: NULL for the
 * split kernels (sums only). */
static inline __attribute__((always_inline)) void wg_emit_run(const wg_sink *k, size_t idx, size_t widx, int row,
                                                              const float *r, int n, float neg_lr, const float *q,
                                                              int qi, int qstep) {
    if (k->s) {
        copy_run(k->s + idx, r, n);
        return;
    }
    int8_t *wp = k->wt + widx;
    q += qi;
    const float f0 = neg_lr * q[0]; /* qstep 0: loaded once, before the weight stores (which may alias q) */
    if (k->rule == TT_RULE_STOCHASTIC) {
        uint32_t *cp = k->cur + (size_t)row * (size_t)k->cur_step;
        uint32_t x = *cp;
        for (int j = 0; j < n; j++) {
            x = xs_next(x);
            wp[j] = stoch_one(wp[j], r[j] * (qstep ? neg_lr * q[j] : f0), xs_uniform(x));
        }
        *cp = x;
    } else {
        for (int j = 0; j < n; j++)
            wp[j] = update_one(wp[j], r[j] * (qstep ? neg_lr * q[j] : f0), k->rule, k->sh ? k->sh + idx + j : 0);
    }
}

/* wg_emit_run with the step factors of the run precomputed (f[j] = neg_lr * q[.. + j], the same product), the rule
 * chosen once, runs of 4 unrolled (stochastic: stoch_run4), the stochastic element without clamps (stoch_one_fast). */
static inline __attribute__((always_inline)) void wg_emit_f(const wg_sink *k, size_t idx, size_t widx, int row,
                                                            const float *r, int n, const float *f) {
    if (k->s) {
        copy_run(k->s + idx, r, n);
        return;
    }
    int8_t *wp = k->wt + widx;
    if (k->rule == TT_RULE_STOCHASTIC) {
        uint32_t *cp = k->cur + (size_t)row * (size_t)k->cur_step;
        uint32_t x = *cp;
        if (n == 4) {
            x = stoch_run4(wp, r, f, x);
        } else {
            for (int j = 0; j < n; j++) {
                x = xs_next(x);
                wp[j] = stoch_one_fast(wp[j], r[j] * f[j], xs_uniform(x));
            }
        }
        *cp = x;
    } else if (k->sh) {
        float *sh = k->sh + idx;
        for (int j = 0; j < n; j++) {
            const float v = sh[j] + r[j] * f[j];
            sh[j] = v;
            wp[j] = upd_nearest(0, v);
        }
    } else if (n == 4) {
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) wp[j] = upd_nearest(wp[j], r[j] * f[j]);
    } else {
        for (int j = 0; j < n; j++) wp[j] = upd_nearest(wp[j], r[j] * f[j]);
    }
}

/* xf[p][j] = f32(x[p * x_c + j] - x_zero) for j < n, 0 for n <= j < 4; p < np. */
static void wg_convert(const int8_t *x, int np, int x_c, int n, int32_t x_zero, float *xf) {
    for (int p = 0; p < np; p++, x += x_c, xf += 4)
        for (int j = 0; j < 4; j++) xf[j] = j < n ? (float)(x[j] - x_zero) : 0.0f;
}

#if defined(__arm__) && defined(__thumb2__) && defined(__ARM_FP) && (__ARM_FP & 4) && !defined(TT_NO_ASM)
/* Device: per p one VLDM of the four g (s16-s19), one of the four x (s20-s23), then the 16 multiply-adds (TT_FMA: VFMA,
 * else VMUL + VADD) into s0-s15 (fixed: an asm statement takes at most 30 operands), stored to r at the end: 18 (34)
 * instructions + the loop per 16 MACs instead of 8 VLDR + 16 (32). np >= 1. */
#define WG_BLOCK4X4_ASM 1
/* Sums s0-s11 set to +0.0f (z: a scratch core register); the kernel-row loops below keep 12 sums, this block 16. */
#define WG_ZERO_S0_S11                                                                                        \
    "movs %[z], #0\n\t"                                                                                        \
    "vmov s0, s1, %[z], %[z]\n\tvmov s2, s3, %[z], %[z]\n\tvmov s4, s5, %[z], %[z]\n\t"                            \
    "vmov s6, s7, %[z], %[z]\n\tvmov s8, s9, %[z], %[z]\n\tvmov s10, s11, %[z], %[z]\n\t"
static inline __attribute__((always_inline)) void wg_block4x4_asm(const float *gp, int gs, const float *xp, int np,
                                                                  float r[4][4]) {
    uint32_t z;
    __asm volatile(
        WG_ZERO_S0_S11
        "vmov s12, s13, %[z], %[z]\n\tvmov s14, s15, %[z], %[z]\n\t"
        "1:\n\t"
        "vldmia %[gp], {s16-s19}\n\t"
        "add %[gp], %[gp], %[gs]\n\t"
        "vldmia %[xp]!, {s20-s23}\n\t"
#if TT_FMA
        "vfma.f32 s0, s16, s20\n\t"
        "vfma.f32 s1, s16, s21\n\t"
        "vfma.f32 s2, s16, s22\n\t"
        "vfma.f32 s3, s16, s23\n\t"
        "vfma.f32 s4, s17, s20\n\t"
        "vfma.f32 s5, s17, s21\n\t"
        "vfma.f32 s6, s17, s22\n\t"
        "vfma.f32 s7, s17, s23\n\t"
        "vfma.f32 s8, s18, s20\n\t"
        "vfma.f32 s9, s18, s21\n\t"
        "vfma.f32 s10, s18, s22\n\t"
        "vfma.f32 s11, s18, s23\n\t"
        "vfma.f32 s12, s19, s20\n\t"
        "vfma.f32 s13, s19, s21\n\t"
        "vfma.f32 s14, s19, s22\n\t"
        "vfma.f32 s15, s19, s23\n\t"
#else
        "vmul.f32 s24, s16, s20\n\tvmul.f32 s25, s16, s21\n\tvmul.f32 s26, s16, s22\n\tvmul.f32 s27, s16, s23\n\t"
        "vadd.f32 s0, s0, s24\n\tvadd.f32 s1, s1, s25\n\tvadd.f32 s2, s2, s26\n\tvadd.f32 s3, s3, s27\n\t"
        "vmul.f32 s24, s17, s20\n\tvmul.f32 s25, s17, s21\n\tvmul.f32 s26, s17, s22\n\tvmul.f32 s27, s17, s23\n\t"
        "vadd.f32 s4, s4, s24\n\tvadd.f32 s5, s5, s25\n\tvadd.f32 s6, s6, s26\n\tvadd.f32 s7, s7, s27\n\t"
        "vmul.f32 s24, s18, s20\n\tvmul.f32 s25, s18, s21\n\tvmul.f32 s26, s18, s22\n\tvmul.f32 s27, s18, s23\n\t"
        "vadd.f32 s8, s8, s24\n\tvadd.f32 s9, s9, s25\n\tvadd.f32 s10, s10, s26\n\tvadd.f32 s11, s11, s27\n\t"
        "vmul.f32 s24, s19, s20\n\tvmul.f32 s25, s19, s21\n\tvmul.f32 s26, s19, s22\n\tvmul.f32 s27, s19, s23\n\t"
        "vadd.f32 s12, s12, s24\n\tvadd.f32 s13, s13, s25\n\tvadd.f32 s14, s14, s26\n\tvadd.f32 s15, s15, s27\n\t"
#endif
        "subs %[np], %[np], #1\n\t"
        "bne 1b\n\t"
        "vstmia %[r], {s0-s15}"
        : [gp] "+r"(gp), [xp] "+r"(xp), [np] "+r"(np), [z] "=&r"(z)
        : [gs] "r"(gs * 4), [r] "r"(&r[0][0])
        : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15",
          "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "cc", "memory");
}
#endif

/* r[oo][j] = sum_{p asc} g[p * gs + oo] * xf[p][j]: 4 x 4 sums in registers, per p 8 loads and 32 VMUL/VADD. */
static inline void wg_block4x4(const float *gp, int gs, const float *xp, int np, float r[4][4]) {
#ifdef WG_BLOCK4X4_ASM
    if (np > 0) {
        wg_block4x4_asm(gp, gs, xp, np, r);
        return;
    }
#endif
    float a00 = 0.0f, a01 = 0.0f, a02 = 0.0f, a03 = 0.0f, a10 = 0.0f, a11 = 0.0f, a12 = 0.0f, a13 = 0.0f;
    float a20 = 0.0f, a21 = 0.0f, a22 = 0.0f, a23 = 0.0f, a30 = 0.0f, a31 = 0.0f, a32 = 0.0f, a33 = 0.0f;
    for (int p = 0; p < np; p++, gp += gs, xp += 4) {
        const float g0 = gp[0], g1 = gp[1], g2 = gp[2], g3 = gp[3];
        const float x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];
        a00 = TT_MAC(a00, g0, x0);
        a01 = TT_MAC(a01, g0, x1);
        a02 = TT_MAC(a02, g0, x2);
        a03 = TT_MAC(a03, g0, x3);
        a10 = TT_MAC(a10, g1, x0);
        a11 = TT_MAC(a11, g1, x1);
        a12 = TT_MAC(a12, g1, x2);
        a13 = TT_MAC(a13, g1, x3);
        a20 = TT_MAC(a20, g2, x0);
        a21 = TT_MAC(a21, g2, x1);
        a22 = TT_MAC(a22, g2, x2);
        a23 = TT_MAC(a23, g2, x3);
        a30 = TT_MAC(a30, g3, x0);
        a31 = TT_MAC(a31, g3, x1);
        a32 = TT_MAC(a32, g3, x2);
        a33 = TT_MAC(a33, g3, x3);
    }
    r[0][0] = a00; r[0][1] = a01; r[0][2] = a02; r[0][3] = a03;
    r[1][0] = a10; r[1][1] = a11; r[1][2] = a12; r[1][3] = a13;
    r[2][0] = a20; r[2][1] = a21; r[2][2] = a22; r[2][3] = a23;
    r[3][0] = a30; r[3][1] = a31; r[3][2] = a32; r[3][3] = a33;
}

/* 1x1: S[o][i] = sum_{p asc} g[p][o] * f32(x[p][i] - x_zero) for outputs o_lo <= o < o_hi (g: co columns);
 * blocks of 4 outputs x 4 input channels. Cursor row of output o: o - o_lo. */
static __attribute__((noinline)) void wg1x1_fast(const float *g, const int8_t *x, int np, int x_c, int32_t x_zero,
                                                 int co, int o_lo, int o_hi, int ci, int k_in, const float *q,
                                                 float neg_lr, const wg_sink *sink) {
    float xf[4 * np] __attribute__((aligned(8)));
    for (int i = 0; i < k_in; i += 4) {
        const int n = k_in - i < 4 ? k_in - i : 4;
        wg_convert(x + i, np, x_c, n, x_zero, xf);
        for (int o = o_lo; o < o_hi; o += 4) {
            const int no = o_hi - o < 4 ? o_hi - o : 4;
            float r[4][4];
            int sh = 0; /* r row of output o */
            if (no == 4) {
                wg_block4x4(g + o, co, xf, np, r);
            } else if (o_hi >= 4) { /* last outputs: the block of the last four columns (earlier ones recomputed) */
                sh = 4 - no;
                wg_block4x4(g + o_hi - 4, co, xf, np, r);
            } else { /* fewer than four outputs in all */
                for (int oo = 0; oo < no; oo++)
                    for (int j = 0; j < 4; j++) {
                        float v = 0.0f;
                        for (int p = 0; p < np; p++) v = TT_MAC(v, g[(size_t)p * co + o + oo], xf[4 * p + j]);
                        r[oo][j] = v;
                    }
            }
            for (int oo = 0; oo < no; oo++)
                wg_emit_run(sink, (size_t)(o + oo) * k_in + i, (size_t)(o + oo) * ci + i, o + oo - o_lo, r[oo + sh],
                            n, neg_lr, q, o + oo, 0);
        }
    }
}

/* The stochastic rule over the 1x1 fast path: TT_WG_MAX_ROWS outputs per pass, one rng cursor each. */
static __attribute__((noinline)) void wg1x1_stochastic(const float *g, const int8_t *x, int np, int x_c,
                                                       int32_t x_zero, int8_t *wt, int co, int ci, int k_in,
                                                       const float *q, float neg_lr, uint32_t *rng) {
    uint32_t cur[TT_WG_MAX_ROWS];
    const wg_sink sink = {0, wt, 0, TT_RULE_STOCHASTIC, cur, 1};
    for (int o0 = 0; o0 < co; o0 += TT_WG_MAX_ROWS) {
        const int o1 = co - o0 > TT_WG_MAX_ROWS ? o0 + TT_WG_MAX_ROWS : co;
        rng_starts(rng, o1 - o0, k_in, cur);
        wg1x1_fast(g, x, np, x_c, x_zero, co, o0, o1, ci, k_in, q, neg_lr, &sink);
    }
}

/* Sums of one tap (a, b) for 4 channels over its valid output rectangle; d1..d3: g offsets of channels 1..3. */
static inline __attribute__((always_inline)) void wgdw_tap(const float *g, const float *xf, int w, int c, int wo,
                                                           int stride, int pad, int a, int b, int oh0, int oh1,
                                                           int ow0, int ow1, int d1, int d2, int d3, float *r) {
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    for (int oh = oh0; oh < oh1; oh++) {
        const float *gp = g + ((size_t)oh * wo + ow0) * c;
        const float *xp = xf + ((size_t)(oh * stride - pad + a) * w + ow0 * stride - pad + b) * 4;
        for (int ow = ow0; ow < ow1; ow++, gp += c, xp += 4 * stride) {
            s0 = TT_MAC(s0, gp[0], xp[0]);
            s1 = TT_MAC(s1, gp[d1], xp[1]);
            s2 = TT_MAC(s2, gp[d2], xp[2]);
            s3 = TT_MAC(s3, gp[d3], xp[3]);
        }
    }
    r[0] = s0;
    r[1] = s1;
    r[2] = s2;
    r[3] = s3;
}

/* Depthwise, the taps of one kernel row together (kw = KW constant, 3 or 5): over a zero-padded float plane of
 * the input block (xp: [(h + 2 pad)][(w + 2 pad)][4], (x - x_zero) inside, 0 around it) every tap of the row sums
 * over the whole output rectangle, g loaded once per position for the KW taps. A position whose tap falls in the
 * padding adds g * 0 = +-0, which leaves the sum's bits as skipping it does (a sum from +0.0f is never -0, and
 * acc + (+-0) = acc, fused too): the same sums as the per-tap rectangles. r[b][j]: tap b, channel j. */
static inline __attribute__((always_inline)) void wgdw_row(const float *g, const float *xp, int pwid, int c, int ho,
                                                          int wo, int S, int a, int KW, int d1, int d2, int d3,
                                                          float r[][4]) {
    float s[5][4];
#pragma GCC unroll 5
    for (int b = 0; b < KW; b++) s[b][0] = s[b][1] = s[b][2] = s[b][3] = 0.0f;
    for (int oh = 0; oh < ho; oh++) {
        const float *gp = g + (size_t)oh * wo * c;
        const float *xr = xp + (size_t)(oh * S + a) * pwid * 4;
        for (int ow = 0; ow < wo; ow++, gp += c, xr += 4 * S) {
            const float g0 = gp[0], g1 = gp[d1], g2 = gp[d2], g3 = gp[d3];
#pragma GCC unroll 5
            for (int b = 0; b < KW; b++) {
                s[b][0] = TT_MAC(s[b][0], g0, xr[4 * b]);
                s[b][1] = TT_MAC(s[b][1], g1, xr[4 * b + 1]);
                s[b][2] = TT_MAC(s[b][2], g2, xr[4 * b + 2]);
                s[b][3] = TT_MAC(s[b][3], g3, xr[4 * b + 3]);
            }
        }
    }
#pragma GCC unroll 5
    for (int b = 0; b < KW; b++) {
        r[b][0] = s[b][0];
        r[b][1] = s[b][1];
        r[b][2] = s[b][2];
        r[b][3] = s[b][3];
    }
}

#ifdef WG_BLOCK4X4_ASM
/* wgdw_row for kw = 3 and four channels on the device: per output position one VLDM of the four g (s28-s31) and one
 * of the row's 3 x 4 plane values (s16-s27, contiguous in the padded plane), then 12 multiply-adds into s0-s11 (fixed
 * registers), stored to r at the end. x0: the plane at row a (tap row), column 0; rows of the outputs step by
 * S * pwid plane positions, columns by S. */
static inline __attribute__((always_inline)) void wgdw_row3_asm(const float *gp, int c, const float *x0, int ho,
                                                                int wo, int S, int pwid, float r[][4]) {
    uint32_t z, co, ci;
    const float *xr;
    __asm volatile(
        WG_ZERO_S0_S11
        "mov %[co], %[ho]\n\t"
        "2:\n\t"
        "mov %[xr], %[x0]\n\t"
        "mov %[ci], %[wo]\n\t"
        "1:\n\t"
        "vldmia %[gp], {s28-s31}\n\t"
        "add %[gp], %[gp], %[gs]\n\t"
        "vldmia %[xr], {s16-s27}\n\t"
        "add %[xr], %[xr], %[xs]\n\t"
#if TT_FMA
        "vfma.f32 s0, s28, s16\n\t"
        "vfma.f32 s1, s29, s17\n\t"
        "vfma.f32 s2, s30, s18\n\t"
        "vfma.f32 s3, s31, s19\n\t"
        "vfma.f32 s4, s28, s20\n\t"
        "vfma.f32 s5, s29, s21\n\t"
        "vfma.f32 s6, s30, s22\n\t"
        "vfma.f32 s7, s31, s23\n\t"
        "vfma.f32 s8, s28, s24\n\t"
        "vfma.f32 s9, s29, s25\n\t"
        "vfma.f32 s10, s30, s26\n\t"
        "vfma.f32 s11, s31, s27\n\t"
#else
        "vmul.f32 s12, s28, s16\n\tvmul.f32 s13, s29, s17\n\tvmul.f32 s14, s30, s18\n\tvmul.f32 s15, s31, s19\n\t"
        "vadd.f32 s0, s0, s12\n\tvadd.f32 s1, s1, s13\n\tvadd.f32 s2, s2, s14\n\tvadd.f32 s3, s3, s15\n\t"
        "vmul.f32 s12, s28, s20\n\tvmul.f32 s13, s29, s21\n\tvmul.f32 s14, s30, s22\n\tvmul.f32 s15, s31, s23\n\t"
        "vadd.f32 s4, s4, s12\n\tvadd.f32 s5, s5, s13\n\tvadd.f32 s6, s6, s14\n\tvadd.f32 s7, s7, s15\n\t"
        "vmul.f32 s12, s28, s24\n\tvmul.f32 s13, s29, s25\n\tvmul.f32 s14, s30, s26\n\tvmul.f32 s15, s31, s27\n\t"
        "vadd.f32 s8, s8, s12\n\tvadd.f32 s9, s9, s13\n\tvadd.f32 s10, s10, s14\n\tvadd.f32 s11, s11, s15\n\t"
#endif
        "subs %[ci], %[ci], #1\n\t"
        "bne 1b\n\t"
        "add %[x0], %[x0], %[rs]\n\t"
        "subs %[co], %[co], #1\n\t"
        "bne 2b\n\t"
        "vstmia %[r], {s0-s11}"
        : [gp] "+r"(gp), [x0] "+r"(x0), [z] "=&r"(z), [co] "=&r"(co), [ci] "=&r"(ci), [xr] "=&r"(xr)
        : [ho] "r"(ho), [wo] "r"(wo), [gs] "r"(c * 4), [xs] "r"(16 * S), [rs] "r"(16 * S * pwid), [r] "r"(&r[0][0])
        : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16",
          "s17", "s18",
          "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29", "s30", "s31", "cc", "memory");
}
#endif

#if defined(WG_BLOCK4X4_ASM) && TT_FMA
/* wgdw_row3_asm for stride 1 with the fused multiply-add: four output positions per iteration. Their taps read plane
 * columns j..j+5 (4 floats each); one VLDM brings columns j..j+3 (s16-s31), which hold the 3 taps of positions j
 * (s16-s27) and j + 1 (s20-s31), then one more brings j+2..j+5 for positions j + 2 and j + 3 (two pointers, 32 bytes
 * apart, both advanced by the VLDM writeback: 4 positions = 64 bytes). The four g of a position go to s12-s15 (the
 * VFMA needs no product registers), so the 12 sums s0-s11 + 4 g + 16 plane values fill the 32 registers. Each sum
 * still takes its terms in position order. 62 instructions per 48 MACs with the loop (one position at a time: 72);
 * the wo % 4 last positions of a row one at a time, as in wgdw_row3_asm. */
#define WGDW_ROW3_S1_ASM 1
static inline __attribute__((always_inline)) void wgdw_row3_s1_asm(const float *gp, int c, const float *x0, int ho,
                                                                   int wo, int pwid, float r[][4]) {
    uint32_t z, co, ci;
    const float *xa, *xb;
    __asm volatile(
        WG_ZERO_S0_S11
        "mov %[co], %[ho]\n\t"
        "2:\n\t"
        "mov %[xa], %[x0]\n\t"
        "add %[xb], %[x0], #32\n\t"
        "lsrs %[ci], %[wo], #2\n\t"
        "beq 4f\n"
        "1:\n\t"
        "vldmia %[xa]!, {s16-s31}\n\t" /* columns j .. j+3 */
        "vldmia %[gp], {s12-s15}\n\t"  /* position j */
        "add %[gp], %[gp], %[gs]\n\t"
        "vfma.f32 s0, s12, s16\n\tvfma.f32 s1, s13, s17\n\tvfma.f32 s2, s14, s18\n\tvfma.f32 s3, s15, s19\n\t"
        "vfma.f32 s4, s12, s20\n\tvfma.f32 s5, s13, s21\n\tvfma.f32 s6, s14, s22\n\tvfma.f32 s7, s15, s23\n\t"
        "vfma.f32 s8, s12, s24\n\tvfma.f32 s9, s13, s25\n\tvfma.f32 s10, s14, s26\n\tvfma.f32 s11, s15, s27\n\t"
        "vldmia %[gp], {s12-s15}\n\t" /* position j + 1 */
        "add %[gp], %[gp], %[gs]\n\t"
        "vfma.f32 s0, s12, s20\n\tvfma.f32 s1, s13, s21\n\tvfma.f32 s2, s14, s22\n\tvfma.f32 s3, s15, s23\n\t"
        "vfma.f32 s4, s12, s24\n\tvfma.f32 s5, s13, s25\n\tvfma.f32 s6, s14, s26\n\tvfma.f32 s7, s15, s27\n\t"
        "vfma.f32 s8, s12, s28\n\tvfma.f32 s9, s13, s29\n\tvfma.f32 s10, s14, s30\n\tvfma.f32 s11, s15, s31\n\t"
        "vldmia %[xb]!, {s16-s31}\n\t" /* columns j+2 .. j+5 */
        "vldmia %[gp], {s12-s15}\n\t"  /* position j + 2 */
        "add %[gp], %[gp], %[gs]\n\t"
        "vfma.f32 s0, s12, s16\n\tvfma.f32 s1, s13, s17\n\tvfma.f32 s2, s14, s18\n\tvfma.f32 s3, s15, s19\n\t"
        "vfma.f32 s4, s12, s20\n\tvfma.f32 s5, s13, s21\n\tvfma.f32 s6, s14, s22\n\tvfma.f32 s7, s15, s23\n\t"
        "vfma.f32 s8, s12, s24\n\tvfma.f32 s9, s13, s25\n\tvfma.f32 s10, s14, s26\n\tvfma.f32 s11, s15, s27\n\t"
        "vldmia %[gp], {s12-s15}\n\t" /* position j + 3 */
        "add %[gp], %[gp], %[gs]\n\t"
        "vfma.f32 s0, s12, s20\n\tvfma.f32 s1, s13, s21\n\tvfma.f32 s2, s14, s22\n\tvfma.f32 s3, s15, s23\n\t"
        "vfma.f32 s4, s12, s24\n\tvfma.f32 s5, s13, s25\n\tvfma.f32 s6, s14, s26\n\tvfma.f32 s7, s15, s27\n\t"
        "vfma.f32 s8, s12, s28\n\tvfma.f32 s9, s13, s29\n\tvfma.f32 s10, s14, s30\n\tvfma.f32 s11, s15, s31\n\t"
        "subs %[ci], %[ci], #1\n\t"
        "bne 1b\n"
        "4:\n\t"
        "ands %[ci], %[wo], #3\n\t"
        "beq 5f\n"
        "3:\n\t" /* the last wo % 4 positions, one at a time */
        "vldmia %[gp], {s12-s15}\n\t"
        "add %[gp], %[gp], %[gs]\n\t"
        "vldmia %[xa], {s16-s27}\n\t"
        "add %[xa], %[xa], #16\n\t"
        "vfma.f32 s0, s12, s16\n\tvfma.f32 s1, s13, s17\n\tvfma.f32 s2, s14, s18\n\tvfma.f32 s3, s15, s19\n\t"
        "vfma.f32 s4, s12, s20\n\tvfma.f32 s5, s13, s21\n\tvfma.f32 s6, s14, s22\n\tvfma.f32 s7, s15, s23\n\t"
        "vfma.f32 s8, s12, s24\n\tvfma.f32 s9, s13, s25\n\tvfma.f32 s10, s14, s26\n\tvfma.f32 s11, s15, s27\n\t"
        "subs %[ci], %[ci], #1\n\t"
        "bne 3b\n"
        "5:\n\t"
        "add %[x0], %[x0], %[rs]\n\t"
        "subs %[co], %[co], #1\n\t"
        "bne 2b\n\t"
        "vstmia %[r], {s0-s11}"
        : [gp] "+r"(gp), [x0] "+r"(x0), [z] "=&r"(z), [co] "=&r"(co), [ci] "=&r"(ci), [xa] "=&r"(xa), [xb] "=&r"(xb)
        : [ho] "r"(ho), [wo] "r"(wo), [gs] "r"(c * 4), [rs] "r"(16 * pwid), [r] "r"(&r[0][0])
        : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15", "s16",
          "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29", "s30", "s31", "cc",
          "memory");
}
#endif

#if defined(WG_BLOCK4X4_ASM) && defined(TT_USE_DSP)
/* The 4-channel block of rows [0, h) into the padded plane (pr: row 0, column 0 of the image; rows pwid * 4 floats
 * apart): per position one word load, two SXTAB16 (minus x_zero), a VMOV of the register pair, two ASR and a VMOV
 * for channels 2 and 3, four exact conversions (VCVT .S16 fixed-point with 0 fraction bits reads the low halfword
 * sign-extended). Two positions per iteration (the second word by register offset, one pointer step) and one VSTM
 * of their 8 floats: 26 instructions per 2 positions; an odd last position of a row alone (15). */
#define WG_PLANE4_ASM 1
static __attribute__((noinline)) void wg_plane4_asm(const int8_t *xr, int h, int w, int x_c, uint32_t nz, float *pr,
                                                    int pwid) {
    uint32_t lo, hi, lo2, hi2, ci;
    __asm volatile("2:\n\t"
                   "lsrs %[ci], %[w], #1\n\t"
                   "beq 3f\n"
                   "1:\n\t"
                   "ldr %[lo], [%[x]]\n\t"
                   "ldr %[lo2], [%[x], %[xc]]\n\t"
                   "add %[x], %[x], %[xc], lsl #1\n\t"
                   "sxtab16 %[hi], %[nz], %[lo], ror #8\n\t" /* (x1, x3) - x_zero */
                   "sxtab16 %[lo], %[nz], %[lo]\n\t"         /* (x0, x2) - x_zero */
                   "sxtab16 %[hi2], %[nz], %[lo2], ror #8\n\t"
                   "sxtab16 %[lo2], %[nz], %[lo2]\n\t"
                   "vmov s0, s1, %[lo], %[hi]\n\t"
                   "vmov s4, s5, %[lo2], %[hi2]\n\t"
                   "asr %[lo], %[lo], #16\n\t"
                   "asr %[hi], %[hi], #16\n\t"
                   "asr %[lo2], %[lo2], #16\n\t"
                   "asr %[hi2], %[hi2], #16\n\t"
                   "vmov s2, s3, %[lo], %[hi]\n\t"
                   "vmov s6, s7, %[lo2], %[hi2]\n\t"
                   "vcvt.f32.s16 s0, s0, #0\n\t"
                   "vcvt.f32.s16 s1, s1, #0\n\t"
                   "vcvt.f32.s32 s2, s2\n\t"
                   "vcvt.f32.s32 s3, s3\n\t"
                   "vcvt.f32.s16 s4, s4, #0\n\t"
                   "vcvt.f32.s16 s5, s5, #0\n\t"
                   "vcvt.f32.s32 s6, s6\n\t"
                   "vcvt.f32.s32 s7, s7\n\t"
                   "vstmia %[p]!, {s0-s7}\n\t"
                   "subs %[ci], %[ci], #1\n\t"
                   "bne 1b\n"
                   "3:\n\t"
                   "tst %[w], #1\n\t"
                   "beq 4f\n\t"
                   "ldr %[lo], [%[x]]\n\t"
                   "add %[x], %[x], %[xc]\n\t"
                   "sxtab16 %[hi], %[nz], %[lo], ror #8\n\t"
                   "sxtab16 %[lo], %[nz], %[lo]\n\t"
                   "vmov s0, s1, %[lo], %[hi]\n\t"
                   "asr %[lo], %[lo], #16\n\t"
                   "asr %[hi], %[hi], #16\n\t"
                   "vmov s2, s3, %[lo], %[hi]\n\t"
                   "vcvt.f32.s16 s0, s0, #0\n\t"
                   "vcvt.f32.s16 s1, s1, #0\n\t"
                   "vcvt.f32.s32 s2, s2\n\t"
                   "vcvt.f32.s32 s3, s3\n\t"
                   "vstmia %[p]!, {s0-s3}\n"
                   "4:\n\t"
                   "add %[p], %[p], %[skip]\n\t"
                   "subs %[h], %[h], #1\n\t"
                   "bne 2b"
                   : [x] "+r"(xr), [p] "+r"(pr), [h] "+r"(h), [lo] "=&r"(lo), [hi] "=&r"(hi), [lo2] "=&r"(lo2),
                     [hi2] "=&r"(hi2), [ci] "=&r"(ci)
                   : [w] "r"(w), [xc] "r"(x_c), [nz] "r"(nz), [skip] "r"(16 * (pwid - w))
                   : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "cc", "memory");
}
#endif

#define TT_WG_PLANE 576 /* floats of the padded input block (2.3 KB of stack): 8x8 maps with 5x5 kernels */

/* wgdw_fast over the padded plane with kernel rows together (kh any, kw 3 or 5, stride 1 or 2); 0 if not served. */
static int wgdw_rows(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int c, int kh, int kw,
                     int k_in, int stride, int pad, const float *q, float neg_lr, const wg_sink *sink) {
    const int ho = (h + 2 * pad - kh) / stride + 1, wo = (w + 2 * pad - kw) / stride + 1;
    const int prow = h + 2 * pad, pwid = w + 2 * pad;
    if ((kw != 3 && kw != 5) || (stride != 1 && stride != 2) || pad < 0 || pad > kw - 1 || pad > kh - 1 ||
        4 * prow * pwid > TT_WG_PLANE || ho < 1 || wo < 1 || (ho - 1) * stride + kh > prow ||
        (wo - 1) * stride + kw > pwid)
        return 0;
    float xp[4 * prow * pwid] __attribute__((aligned(8)));
    for (int ih = 0; ih < prow; ih++) { /* the padding only, once: every block's fill writes the whole image part */
        float *row = xp + (size_t)ih * pwid * 4;
        const int img = ih >= pad && ih < pad + h, a = img ? pad : pwid;
        for (int j = 0; j < 4 * a; j++) row[j] = 0.0f;
        for (int j = 4 * (pad + w); img && j < 4 * pwid; j++) row[j] = 0.0f;
    }
    const wg_sink snk = *sink; /* a local copy: its fields stay in registers across the weight stores */
    for (int c0 = 0; c0 < k_in; c0 += 4) {
        const int cb = k_in >= 4 && c0 + 4 > k_in ? k_in - 4 : c0; /* block start */
        const int n = k_in - cb < 4 ? k_in - cb : 4;
        const int d1 = n > 1 ? 1 : 0, d2 = n > 2 ? 2 : d1, d3 = n > 3 ? 3 : d2;
#ifdef WG_PLANE4_ASM
        if (n == 4) /* one word load, SXTAB16 adds -x_zero to the halfwords, exact halfword conversions */
            wg_plane4_asm(x + cb, h, w, x_c, (uint32_t)(uint16_t)(int16_t)(-x_zero) * 0x10001u,
                          xp + ((size_t)pad * pwid + pad) * 4, pwid);
        else
#endif
        for (int ih = 0; ih < h; ih++) {
            const int8_t *xr = x + (size_t)ih * w * x_c + cb;
            float *pr = xp + ((size_t)(ih + pad) * pwid + pad) * 4;
#ifdef TT_USE_DSP
            if (n == 4) { /* one word load, SXTAB16 adds -x_zero to the halfwords, exact halfword conversions */
                const uint32_t nz = (uint32_t)(uint16_t)(int16_t)(-x_zero) * 0x10001u;
                for (int iw = 0; iw < w; iw++, xr += x_c, pr += 4) {
                    const uint32_t v = tt_load32(xr), lo = __sxtab16(nz, v), hi = tt_sxtab16_ror8(nz, v);
                    pr[0] = tt_s16lo_f32(lo);
                    pr[1] = tt_s16lo_f32(hi);
                    pr[2] = tt_s16hi_f32(lo);
                    pr[3] = tt_s16hi_f32(hi);
                }
                continue;
            }
#endif
            for (int iw = 0; iw < w; iw++, xr += x_c, pr += 4)
                for (int j = 0; j < 4; j++) pr[j] = j < n ? (float)(xr[j] - x_zero) : 0.0f;
        }
        const int j0 = c0 - cb;
        float f[4];
        if (q)
            for (int j = 0; j < n - j0; j++) f[j] = neg_lr * q[c0 + j];
        for (int a = 0; a < kh; a++) {
            float r[5][4];
#ifdef WG_BLOCK4X4_ASM
#ifdef WGDW_ROW3_S1_ASM
            if (kw == 3 && n == 4 && stride == 1)
                wgdw_row3_s1_asm(g + cb, c, xp + (size_t)a * pwid * 4, ho, wo, pwid, r);
            else
#endif
            if (kw == 3 && n == 4) wgdw_row3_asm(g + cb, c, xp + (size_t)a * pwid * 4, ho, wo, stride, pwid, r);
            else
#endif
            if (kw == 3) wgdw_row(g + cb, xp, pwid, c, ho, wo, stride, a, 3, d1, d2, d3, r);
            else wgdw_row(g + cb, xp, pwid, c, ho, wo, stride, a, 5, d1, d2, d3, r);
            for (int b = 0; b < kw; b++) {
                const int tap = a * kw + b;
                wg_emit_f(&snk, (size_t)tap * k_in + c0, (size_t)tap * c + c0, tap, r[b] + j0, n - j0, f);
            }
        }
    }
    return 1;
}

/* Depthwise: S[a][b][c] = sum_{valid (oh, ow) raster asc} g[oh][ow][c] * f32(x[ih][iw][c] - x_zero); per block of
 * 4 channels and per tap, over the tap's valid output rectangle (padded taps add nothing). The last block is
 * the last four channels (sums of channels already done are recomputed, not emitted again). Cursor row: the
 * tap a * kw + b. */
static __attribute__((noinline)) void wgdw_fast(const float *g, const int8_t *x, int h, int w, int x_c,
                                                int32_t x_zero, int c, int kh, int kw, int k_in, int stride, int pad,
                                                const float *q, float neg_lr, const wg_sink *sink) {
    if (wgdw_rows(g, x, h, w, x_c, x_zero, c, kh, kw, k_in, stride, pad, q, neg_lr, sink)) return;
    const int ho = (h + 2 * pad - kh) / stride + 1, wo = (w + 2 * pad - kw) / stride + 1;
    float xf[4 * h * w] __attribute__((aligned(8)));
    for (int c0 = 0; c0 < k_in; c0 += 4) {
        const int cb = k_in >= 4 && c0 + 4 > k_in ? k_in - 4 : c0; /* block start */
        const int n = k_in - cb < 4 ? k_in - cb : 4;
        const int d1 = n > 1 ? 1 : 0, d2 = n > 2 ? 2 : d1, d3 = n > 3 ? 3 : d2;
        wg_convert(x + cb, h * w, x_c, n, x_zero, xf);
        for (int a = 0; a < kh; a++) {
            int oh0 = 0, oh1 = ho;
            while (oh0 < oh1 && oh0 * stride - pad + a < 0) oh0++;
            while (oh1 > oh0 && (oh1 - 1) * stride - pad + a >= h) oh1--;
            for (int b = 0; b < kw; b++) {
                int ow0 = 0, ow1 = wo;
                while (ow0 < ow1 && ow0 * stride - pad + b < 0) ow0++;
                while (ow1 > ow0 && (ow1 - 1) * stride - pad + b >= w) ow1--;
                float r[4];
                if (n == 4) wgdw_tap(g + cb, xf, w, c, wo, stride, pad, a, b, oh0, oh1, ow0, ow1, 1, 2, 3, r);
                else wgdw_tap(g + cb, xf, w, c, wo, stride, pad, a, b, oh0, oh1, ow0, ow1, d1, d2, d3, r);
                const int tap = a * kw + b, j0 = c0 - cb;
                wg_emit_run(sink, (size_t)tap * k_in + c0, (size_t)tap * c + c0, tap, r + j0, n - j0, neg_lr, q,
                            c0, 1);
            }
        }
    }
}

/* The stochastic rule over the depthwise fast path: one rng cursor per tap (kh * kw <= TT_WG_MAX_TAPS). */
static __attribute__((noinline)) void wgdw_stochastic(const float *g, const int8_t *x, int h, int w, int x_c,
                                                      int32_t x_zero, int8_t *wt, int c, int kh, int kw, int k_in,
                                                      int stride, int pad, const float *q, float neg_lr,
                                                      uint32_t *rng) {
    uint32_t cur[TT_WG_MAX_TAPS];
    const wg_sink sink = {0, wt, 0, TT_RULE_STOCHASTIC, cur, 1};
    rng_starts(rng, kh * kw, k_in, cur);
    wgdw_fast(g, x, h, w, x_c, x_zero, c, kh, kw, k_in, stride, pad, q, neg_lr, &sink);
}

/* 1x1 with one output channel (the channel-wise fused block backward updates pw1 one row at a time): eight (or
 * four) sums in registers per block of input channels, x converted inline (no block buffer: each input element
 * serves one MAC). With the DSP, four channels are one word load: SXTAB16 (plain and ROR #8) adds -x_zero to the
 * sign-extended bytes as halfwords (exact: |x - x_zero| <= 255), then each halfword is converted exactly
 * (tt_s16lo_f32 / tt_s16hi_f32): the same f32(x - x_zero) values, the same sums. Elements finish in memory order
 * (i ascending), so every rule is served, stochastic included. Any number of positions. */
#ifdef TT_USE_DSP
#define WG_ROW_CVT4(xp, nz, f0, f1, f2, f3)                                                                     \
    const uint32_t xw_##f0 = tt_load32(xp), lo_##f0 = __sxtab16(nz, xw_##f0), hi_##f0 = tt_sxtab16_ror8(nz, xw_##f0); \
    const float f0 = tt_s16lo_f32(lo_##f0), f1 = tt_s16lo_f32(hi_##f0), f2 = tt_s16hi_f32(lo_##f0),                  \
                f3 = tt_s16hi_f32(hi_##f0)
#else
#define WG_ROW_CVT4(xp, nz, f0, f1, f2, f3)                                                                     \
    const float f0 = (float)((xp)[0] - x_zero), f1 = (float)((xp)[1] - x_zero), f2 = (float)((xp)[2] - x_zero), \
                f3 = (float)((xp)[3] - x_zero)
#endif
#if defined(__ARM_FEATURE_DSP) && !defined(TT_NO_DSP) && defined(__ARM_FP) && (__ARM_FP & 4) && defined(__thumb2__)
/* The 8-channel loop on the device (np >= 1): per pixel 2 LDR, 4 SXTAB16, 4 ASR, 4 VMOV of register pairs (two
 * floats per VMOV: the reason for assembly, it needs consecutive s-registers), 4 VCVT.F32.S16 #0 (low halfwords),
 * 4 VCVT.F32.S32 (the shifted high halfwords), VLDR g, then s[j] = s[j] + g * x[j] in the C loop's order: 42
 * instructions per pixel (the C loop: 46). */
#define WG_ROW8_ASM 1
static inline __attribute__((always_inline)) void wg_row8_asm(const float *g, int np, const int8_t *xp, int x_c,
                                                              uint32_t nz, float *r) {
    const float *ge = g + np;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f, s4 = 0.0f, s5 = 0.0f, s6 = 0.0f, s7 = 0.0f;
    uint32_t w0, w1, t0, t1, t2, t3;
    __asm volatile(
        "1:\n\t"
        "ldr %[w0], [%[xp]]\n\t"
        "ldr %[w1], [%[xp], #4]\n\t"
        "add %[xp], %[xp], %[xc]\n\t"
        "sxtab16 %[t0], %[nz], %[w0]\n\t"          /* (x0, x2) - x_zero */
        "sxtab16 %[t1], %[nz], %[w0], ror #8\n\t"  /* (x1, x3) */
        "sxtab16 %[t2], %[nz], %[w1]\n\t"          /* (x4, x6) */
        "sxtab16 %[t3], %[nz], %[w1], ror #8\n\t"  /* (x5, x7) */
        "vmov s16, s17, %[t0], %[t1]\n\t"
        "vmov s18, s19, %[t2], %[t3]\n\t"
        "asr %[t0], %[t0], #16\n\t"
        "asr %[t1], %[t1], #16\n\t"
        "asr %[t2], %[t2], #16\n\t"
        "asr %[t3], %[t3], #16\n\t"
        "vmov s20, s21, %[t0], %[t1]\n\t"
        "vmov s22, s23, %[t2], %[t3]\n\t"
        "vldmia %[g]!, {s24}\n\t"
        "vcvt.f32.s16 s16, s16, #0\n\t" /* x0 */
        "vcvt.f32.s16 s17, s17, #0\n\t" /* x1 */
        "vcvt.f32.s16 s18, s18, #0\n\t" /* x4 */
        "vcvt.f32.s16 s19, s19, #0\n\t" /* x5 */
        "vcvt.f32.s32 s20, s20\n\t"     /* x2 */
        "vcvt.f32.s32 s21, s21\n\t"     /* x3 */
        "vcvt.f32.s32 s22, s22\n\t"     /* x6 */
        "vcvt.f32.s32 s23, s23\n\t"     /* x7 */
#if TT_FMA /* s[j] = fma(g, x[j], s[j]) */
        "vfma.f32 %[a0], s24, s16\n\t"
        "vfma.f32 %[a1], s24, s17\n\t"
        "vfma.f32 %[a2], s24, s20\n\t"
        "vfma.f32 %[a3], s24, s21\n\t"
        "vfma.f32 %[a4], s24, s18\n\t"
        "vfma.f32 %[a5], s24, s19\n\t"
        "vfma.f32 %[a6], s24, s22\n\t"
        "vfma.f32 %[a7], s24, s23\n\t"
#else
        "vmul.f32 s16, s24, s16\n\t"
        "vmul.f32 s17, s24, s17\n\t"
        "vmul.f32 s20, s24, s20\n\t"
        "vmul.f32 s21, s24, s21\n\t"
        "vmul.f32 s18, s24, s18\n\t"
        "vmul.f32 s19, s24, s19\n\t"
        "vmul.f32 s22, s24, s22\n\t"
        "vmul.f32 s23, s24, s23\n\t"
        "vadd.f32 %[a0], %[a0], s16\n\t"
        "vadd.f32 %[a1], %[a1], s17\n\t"
        "vadd.f32 %[a2], %[a2], s20\n\t"
        "vadd.f32 %[a3], %[a3], s21\n\t"
        "vadd.f32 %[a4], %[a4], s18\n\t"
        "vadd.f32 %[a5], %[a5], s19\n\t"
        "vadd.f32 %[a6], %[a6], s22\n\t"
        "vadd.f32 %[a7], %[a7], s23\n\t"
#endif
        "cmp %[g], %[ge]\n\t"
        "bne 1b"
        : [a0] "+t"(s0), [a1] "+t"(s1), [a2] "+t"(s2), [a3] "+t"(s3), [a4] "+t"(s4), [a5] "+t"(s5),
          [a6] "+t"(s6), [a7] "+t"(s7), [g] "+r"(g), [xp] "+r"(xp), [w0] "=&r"(w0), [w1] "=&r"(w1),
          [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3)
        : [ge] "r"(ge), [xc] "r"(x_c), [nz] "r"(nz)
        : "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "cc", "memory");
    r[0] = s0; r[1] = s1; r[2] = s2; r[3] = s3;
    r[4] = s4; r[5] = s5; r[6] = s6; r[7] = s7;
}
#endif

static __attribute__((noinline)) void wg1x1_row(const float *g, const int8_t *x, int np, int x_c, int32_t x_zero,
                                                int k_in, float *s, int8_t *wt, float k, int rule, uint32_t *rng,
                                                float *sh) {
    uint32_t xs = !s && rule == TT_RULE_STOCHASTIC ? *rng : 0; /* the rng state, kept in a register */
#ifdef TT_USE_DSP
    const uint32_t nz = (uint32_t)(uint16_t)(int16_t)(-x_zero) * 0x10001u; /* -x_zero in both halfwords */
#else
    const uint32_t nz = 0;
#endif
    (void)nz;
    for (int i = 0; i < k_in;) {
        const int left = k_in - i, n = left >= 8 ? 8 : (left < 4 ? left : 4);
        float r[8];
        const int8_t *xp = x + i;
#ifdef WG_ROW8_ASM
        if (n == 8 && np > 0) {
            wg_row8_asm(g, np, xp, x_c, nz, r);
        } else
#endif
        if (n == 8) {
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f, s4 = 0.0f, s5 = 0.0f, s6 = 0.0f, s7 = 0.0f;
            for (int p = 0; p < np; p++, xp += x_c) {
                const float gv = g[p];
                WG_ROW_CVT4(xp, nz, x0, x1, x2, x3);
                WG_ROW_CVT4(xp + 4, nz, x4, x5, x6, x7);
                s0 = TT_MAC(s0, gv, x0);
                s1 = TT_MAC(s1, gv, x1);
                s2 = TT_MAC(s2, gv, x2);
                s3 = TT_MAC(s3, gv, x3);
                s4 = TT_MAC(s4, gv, x4);
                s5 = TT_MAC(s5, gv, x5);
                s6 = TT_MAC(s6, gv, x6);
                s7 = TT_MAC(s7, gv, x7);
            }
            r[0] = s0; r[1] = s1; r[2] = s2; r[3] = s3;
            r[4] = s4; r[5] = s5; r[6] = s6; r[7] = s7;
        } else if (n == 4) {
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
            for (int p = 0; p < np; p++, xp += x_c) {
                const float gv = g[p];
                WG_ROW_CVT4(xp, nz, x0, x1, x2, x3);
                s0 = TT_MAC(s0, gv, x0);
                s1 = TT_MAC(s1, gv, x1);
                s2 = TT_MAC(s2, gv, x2);
                s3 = TT_MAC(s3, gv, x3);
            }
            r[0] = s0; r[1] = s1; r[2] = s2; r[3] = s3;
        } else {
            for (int j = 0; j < n; j++) {
                float v = 0.0f;
                for (int p = 0; p < np; p++) v = TT_MAC(v, g[p], (float)(x[(size_t)p * x_c + i + j] - x_zero));
                r[j] = v;
            }
        }
        if (s) {
            copy_run(s + i, r, n < 4 ? n : 4);
            if (n > 4) copy_run(s + i + 4, r + 4, n - 4);
        } else if (rule == TT_RULE_STOCHASTIC) {
            for (int j = 0; j < n; j++) {
                xs = xs_next(xs);
                wt[i + j] = stoch_one(wt[i + j], r[j] * k, xs_uniform(xs));
            }
        } else {
            update_run(wt + i, sh, r, n, k, rule, rng);
            if (sh) sh += n;
        }
        i += n;
    }
    if (!s && rule == TT_RULE_STOCHASTIC) *rng = xs;
}
/* ---- two 1x1 rows of one output each (the fused block backward, channels in pairs): both rows' sums over the
 * same saved input, so each converted x element serves two MACs ----
 * sa[i] = sum_{p asc} ga[p] * f32(x[p][i] - x_zero), sb the same with gb: each sum exactly the one-row sum
 * (wg1x1_row), eight channels per pass (four, then one at a time for the tail). */
#ifdef WG_ROW8_ASM
/* Per pixel: the 22-instruction conversion of wg_row8_asm, VLDR ga, VLDR gb, then 16 multiply-adds (TT_FMA: 16
 * VFMA, else 16 VMUL + 16 VADD): 43 instructions per 16 MACs (fused), 59 otherwise. The 16 sums live in s0-s15
 * (row a: channels 0-7 in s0-s7, row b in s8-s15; fixed registers: an asm statement takes at most 30 operands),
 * start at +0.0f and are stored to r[0..16) at the end. np >= 1. */
#if TT_FMA
#define WG2_MAC4(A0, G0, X0, A1, G1, X1, A2, G2, X2, A3, G3, X3)                                              \
    "vfma.f32 " A0 ", " G0 ", " X0 "\n\tvfma.f32 " A1 ", " G1 ", " X1 "\n\t"                                \
    "vfma.f32 " A2 ", " G2 ", " X2 "\n\tvfma.f32 " A3 ", " G3 ", " X3 "\n\t"
#else /* four products into s26-s29, then the four sums (no product is waited for by the next instruction) */
#define WG2_MAC4(A0, G0, X0, A1, G1, X1, A2, G2, X2, A3, G3, X3)                                              \
    "vmul.f32 s26, " G0 ", " X0 "\n\tvmul.f32 s27, " G1 ", " X1 "\n\t"                                      \
    "vmul.f32 s28, " G2 ", " X2 "\n\tvmul.f32 s29, " G3 ", " X3 "\n\t"                                      \
    "vadd.f32 " A0 ", " A0 ", s26\n\tvadd.f32 " A1 ", " A1 ", s27\n\t"                                      \
    "vadd.f32 " A2 ", " A2 ", s28\n\tvadd.f32 " A3 ", " A3 ", s29\n\t"
#endif
#ifdef TT_DUAL_ISSUE
/* Dual-issue cores (the Cortex-M7): the same FP operations in the same order per sum, software-pipelined for the
 * in-order dual issue: the next pixel's LDR / SXTAB16 (into t0-t3) run beside this pixel's multiply-adds, the
 * g values are single VLDRs (a VLDM issues alone), and the integer work pairs with FP operations. The next
 * pixel's x address advances only while there is a next pixel (no read past the last row). */
static inline __attribute__((always_inline)) void wg_row8x2_asm(const float *ga, const float *gb, int np,
                                                                const int8_t *xp, int x_c, uint32_t nz, float *r) {
    const float *ge = ga + np;
    uint32_t w0, w1, t0, t1, t2, t3;
    __asm volatile(
        "ldr %[w0], [%[xp]]\n\t"
        "ldr %[w1], [%[xp], #4]\n\t"
        "movs %[t0], #0\n\t"
        "vmov s0, s1, %[t0], %[t0]\n\tvmov s2, s3, %[t0], %[t0]\n\tvmov s4, s5, %[t0], %[t0]\n\t"
        "vmov s6, s7, %[t0], %[t0]\n\tvmov s8, s9, %[t0], %[t0]\n\tvmov s10, s11, %[t0], %[t0]\n\t"
        "vmov s12, s13, %[t0], %[t0]\n\tvmov s14, s15, %[t0], %[t0]\n\t"
        "sxtab16 %[t0], %[nz], %[w0]\n\t"
        "sxtab16 %[t1], %[nz], %[w0], ror #8\n\t"
        "sxtab16 %[t2], %[nz], %[w1]\n\t"
        "sxtab16 %[t3], %[nz], %[w1], ror #8\n\t"
        "1:\n\t"
        "vmov s16, s17, %[t0], %[t1]\n\t" /* (x0, x1) - x_zero as low halfwords */
        "asr %[w0], %[t0], #16\n\t"
        "vmov s18, s19, %[t2], %[t3]\n\t" /* (x4, x5) */
        "asr %[w1], %[t1], #16\n\t"
        "vmov s20, s21, %[w0], %[w1]\n\t" /* x2, x3 */
        "asr %[w0], %[t2], #16\n\t"
        "vldr s24, [%[ga]]\n\t"
        "asr %[w1], %[t3], #16\n\t"
        "vldr s25, [%[gb]]\n\t"
        "vmov s22, s23, %[w0], %[w1]\n\t" /* x6, x7 */
        "add %[ga], %[ga], #4\n\t"
        "vcvt.f32.s16 s16, s16, #0\n\t"
        "add %[gb], %[gb], #4\n\t"
        "vcvt.f32.s16 s17, s17, #0\n\t"
        "cmp %[ga], %[ge]\n\t"
        "vcvt.f32.s16 s18, s18, #0\n\t"
        "it ne\n\t"
        "addne %[xp], %[xp], %[xc]\n\t"
        "vcvt.f32.s16 s19, s19, #0\n\t"
        "vcvt.f32.s32 s20, s20\n\t"
        "ldr %[w0], [%[xp]]\n\t"
        "vcvt.f32.s32 s21, s21\n\t"
        "ldr %[w1], [%[xp], #4]\n\t"
        "vcvt.f32.s32 s22, s22\n\t"
        "vcvt.f32.s32 s23, s23\n\t"
        WG2_MAC4("s0", "s24", "s16", "s1", "s24", "s17", "s2", "s24", "s20", "s3", "s24", "s21")
        "sxtab16 %[t0], %[nz], %[w0]\n\t"
        WG2_MAC4("s4", "s24", "s18", "s5", "s24", "s19", "s6", "s24", "s22", "s7", "s24", "s23")
        "sxtab16 %[t1], %[nz], %[w0], ror #8\n\t"
        WG2_MAC4("s8", "s25", "s16", "s9", "s25", "s17", "s10", "s25", "s20", "s11", "s25", "s21")
        "sxtab16 %[t2], %[nz], %[w1]\n\t"
        WG2_MAC4("s12", "s25", "s18", "s13", "s25", "s19", "s14", "s25", "s22", "s15", "s25", "s23")
        "sxtab16 %[t3], %[nz], %[w1], ror #8\n\t"
        "bne 1b\n\t"
        "vstmia %[r], {s0-s15}"
        : [ga] "+r"(ga), [gb] "+r"(gb), [xp] "+r"(xp), [w0] "=&r"(w0), [w1] "=&r"(w1), [t0] "=&r"(t0),
          [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3)
        : [ge] "r"(ge), [xc] "r"(x_c), [nz] "r"(nz), [r] "r"(r)
        : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15",
          "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29", "cc",
          "memory");
}
#else
static inline __attribute__((always_inline)) void wg_row8x2_asm(const float *ga, const float *gb, int np,
                                                                const int8_t *xp, int x_c, uint32_t nz, float *r) {
    const float *ge = ga + np;
    uint32_t w0, w1, t0, t1, t2, t3;
    __asm volatile(
        "movs %[w0], #0\n\t"
        "vmov s0, s1, %[w0], %[w0]\n\tvmov s2, s3, %[w0], %[w0]\n\tvmov s4, s5, %[w0], %[w0]\n\t"
        "vmov s6, s7, %[w0], %[w0]\n\tvmov s8, s9, %[w0], %[w0]\n\tvmov s10, s11, %[w0], %[w0]\n\t"
        "vmov s12, s13, %[w0], %[w0]\n\tvmov s14, s15, %[w0], %[w0]\n\t"
        "1:\n\t"
        "ldr %[w0], [%[xp]]\n\t"
        "ldr %[w1], [%[xp], #4]\n\t"
        "add %[xp], %[xp], %[xc]\n\t"
        "sxtab16 %[t0], %[nz], %[w0]\n\t"          /* (x0, x2) - x_zero */
        "sxtab16 %[t1], %[nz], %[w0], ror #8\n\t"  /* (x1, x3) */
        "sxtab16 %[t2], %[nz], %[w1]\n\t"          /* (x4, x6) */
        "sxtab16 %[t3], %[nz], %[w1], ror #8\n\t"  /* (x5, x7) */
        "vmov s16, s17, %[t0], %[t1]\n\t"
        "vmov s18, s19, %[t2], %[t3]\n\t"
        "asr %[t0], %[t0], #16\n\t"
        "asr %[t1], %[t1], #16\n\t"
        "asr %[t2], %[t2], #16\n\t"
        "asr %[t3], %[t3], #16\n\t"
        "vmov s20, s21, %[t0], %[t1]\n\t"
        "vmov s22, s23, %[t2], %[t3]\n\t"
        "vldmia %[ga]!, {s24}\n\t"
        "vldmia %[gb]!, {s25}\n\t"
        "vcvt.f32.s16 s16, s16, #0\n\t" /* x0 */
        "vcvt.f32.s16 s17, s17, #0\n\t" /* x1 */
        "vcvt.f32.s16 s18, s18, #0\n\t" /* x4 */
        "vcvt.f32.s16 s19, s19, #0\n\t" /* x5 */
        "vcvt.f32.s32 s20, s20\n\t"     /* x2 */
        "vcvt.f32.s32 s21, s21\n\t"     /* x3 */
        "vcvt.f32.s32 s22, s22\n\t"     /* x6 */
        "vcvt.f32.s32 s23, s23\n\t"     /* x7 */
        WG2_MAC4("s0", "s24", "s16", "s1", "s24", "s17", "s2", "s24", "s20", "s3", "s24", "s21")
        WG2_MAC4("s4", "s24", "s18", "s5", "s24", "s19", "s6", "s24", "s22", "s7", "s24", "s23")
        WG2_MAC4("s8", "s25", "s16", "s9", "s25", "s17", "s10", "s25", "s20", "s11", "s25", "s21")
        WG2_MAC4("s12", "s25", "s18", "s13", "s25", "s19", "s14", "s25", "s22", "s15", "s25", "s23")
        "cmp %[ga], %[ge]\n\t"
        "bne 1b\n\t"
        "vstmia %[r], {s0-s15}"
        : [ga] "+r"(ga), [gb] "+r"(gb), [xp] "+r"(xp), [w0] "=&r"(w0), [w1] "=&r"(w1), [t0] "=&r"(t0),
          [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3)
        : [ge] "r"(ge), [xc] "r"(x_c), [nz] "r"(nz), [r] "r"(r)
        : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12", "s13", "s14", "s15",
          "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29", "cc",
          "memory");
}
#endif
#undef WG2_MAC4
#endif

static __attribute__((noinline)) void wg1x1_sums2(const float *ga, const float *gb, const int8_t *x, int np, int x_c,
                                                  int32_t x_zero, int k_in, float *sa, float *sb) {
#ifdef TT_USE_DSP
    const uint32_t nz = (uint32_t)(uint16_t)(int16_t)(-x_zero) * 0x10001u; /* -x_zero in both halfwords */
#else
    const uint32_t nz = 0;
#endif
    (void)nz;
    int i = 0;
#ifdef WG_ROW8_ASM
    if (np > 0)
        for (; i + 8 <= k_in; i += 8) {
            float r[16] __attribute__((aligned(8)));
            wg_row8x2_asm(ga, gb, np, x + i, x_c, nz, r);
            for (int j = 0; j < 8; j++) {
                sa[i + j] = r[j];
                sb[i + j] = r[8 + j];
            }
        }
#endif
    for (; i + 4 <= k_in; i += 4) {
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f;
        const int8_t *xp = x + i;
        for (int p = 0; p < np; p++, xp += x_c) {
            const float gva = ga[p], gvb = gb[p];
            WG_ROW_CVT4(xp, nz, x0, x1, x2, x3);
            a0 = TT_MAC(a0, gva, x0);
            a1 = TT_MAC(a1, gva, x1);
            a2 = TT_MAC(a2, gva, x2);
            a3 = TT_MAC(a3, gva, x3);
            b0 = TT_MAC(b0, gvb, x0);
            b1 = TT_MAC(b1, gvb, x1);
            b2 = TT_MAC(b2, gvb, x2);
            b3 = TT_MAC(b3, gvb, x3);
        }
        sa[i] = a0; sa[i + 1] = a1; sa[i + 2] = a2; sa[i + 3] = a3;
        sb[i] = b0; sb[i + 1] = b1; sb[i + 2] = b2; sb[i + 3] = b3;
    }
    for (; i < k_in; i++) {
        float va = 0.0f, vb = 0.0f;
        for (int p = 0; p < np; p++) {
            const float xv = (float)(x[(size_t)p * x_c + i] - x_zero);
            va = TT_MAC(va, ga[p], xv);
            vb = TT_MAC(vb, gb[p], xv);
        }
        sa[i] = va;
        sb[i] = vb;
    }
}

/* The rule on one row wt[0..n) from its finished sums s (step factor k; sh: its shadow row, shadow rule only),
 * elements in ascending order (the stochastic draws of memory order). */
static void row_apply(int8_t *wt, const float *s, int n, float k, int rule, uint32_t *rng, float *sh) {
    if (rule == TT_RULE_STOCHASTIC) {
        uint32_t xs = *rng;
        for (int j = 0; j < n; j++) {
            xs = xs_next(xs);
            wt[j] = stoch_one(wt[j], s[j] * k, xs_uniform(xs));
        }
        *rng = xs;
        return;
    }
    for (int j = 0; j < n; j++) wt[j] = update_one(wt[j], s[j] * k, rule, sh ? sh + j : 0);
}

void tt_wgrad_update_1x1_rows2(const float *ga, const float *gb, const int8_t *x, int np, int x_c, int32_t x_zero,
                               int k_in, int8_t *wa, int8_t *wb, float ka, float kb, int rule, uint32_t *rng,
                               float *sha, float *shb) {
    float sa[k_in > 0 ? k_in : 1], sb[k_in > 0 ? k_in : 1];
    wg1x1_sums2(ga, gb, x, np, x_c, x_zero, k_in, sa, sb);
    const int shadow = rule == TT_RULE_SHADOW;
    row_apply(wa, sa, k_in, ka, rule, rng, shadow ? sha : 0);
    row_apply(wb, sb, k_in, kb, rule, rng, shadow ? shb : 0);
}
#undef WG_ROW_CVT4

void tt_conv2d_wgrad_update(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int8_t *wt,
                            int co, int kh, int kw, int ci, int k_in, const float *q, float neg_lr, int rule,
                            uint32_t *rng, float *shadow, int stride, int pad) {
    const int ho = (h + 2 * pad - kh) / stride + 1, wo = (w + 2 * pad - kw) / stride + 1;
    float *sh = rule == TT_RULE_SHADOW ? shadow : 0;
    if (co == 1 && kh == 1 && kw == 1 && stride == 1 && pad == 0) {
        wg1x1_row(g, x, h * w, x_c, x_zero, k_in, 0, wt, neg_lr * q[0], rule, rng, sh);
        return;
    }
    /* the stochastic rule with fewer than four outputs (the classifier) keeps the memory-order loops below */
    if (kh == 1 && kw == 1 && stride == 1 && pad == 0 && h * w <= TT_WG_MAX_POS &&
        (rule != TT_RULE_STOCHASTIC || co >= 4)) {
        if (rule != TT_RULE_STOCHASTIC || k_in <= 4) { /* k_in <= 4: block order = memory order, one cursor */
            const wg_sink sink = {0, wt, sh, rule, rng, 0};
            wg1x1_fast(g, x, h * w, x_c, x_zero, co, 0, co, ci, k_in, q, neg_lr, &sink);
        } else {
            wg1x1_stochastic(g, x, h * w, x_c, x_zero, wt, co, ci, k_in, q, neg_lr, rng);
        }
        return;
    }
    float s[4];
    for (int o = 0; o < co; o++) {
        const float k = neg_lr * q[o];
        for (int a = 0; a < kh; a++) {
            for (int b = 0; b < kw; b++) {
                int8_t *wrow = wt + (((size_t)o * kh + a) * kw + b) * ci;
                for (int i = 0; i < k_in; i += 4) {
                    const int n = k_in - i < 4 ? k_in - i : 4;
                    conv_sums(g, x, h, w, x_c, x_zero, co, ho, wo, o, a, b, i, n, stride, pad, s);
                    update_run(wrow + i, sh, s, n, k, rule, rng);
                    if (sh) sh += n;
                }
            }
        }
    }
}

void tt_dwconv2d_wgrad_update(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int8_t *wt,
                              int kh, int kw, int c, int k_in, const float *q, float neg_lr, int rule,
                              uint32_t *rng, float *shadow, int stride, int pad) {
    const int ho = (h + 2 * pad - kh) / stride + 1, wo = (w + 2 * pad - kw) / stride + 1;
    float *sh = rule == TT_RULE_SHADOW ? shadow : 0;
    if (h * w <= TT_WG_MAX_POS && ho > 0 && wo > 0) {
        if (rule != TT_RULE_STOCHASTIC || k_in <= 4) { /* k_in <= 4: block order = memory order, one cursor */
            const wg_sink sink = {0, wt, sh, rule, rng, 0};
            wgdw_fast(g, x, h, w, x_c, x_zero, c, kh, kw, k_in, stride, pad, q, neg_lr, &sink);
            return;
        }
        if (kh * kw <= TT_WG_MAX_TAPS) {
            wgdw_stochastic(g, x, h, w, x_c, x_zero, wt, c, kh, kw, k_in, stride, pad, q, neg_lr, rng);
            return;
        }
    }
    float s[4];
    for (int a = 0; a < kh; a++) {
        for (int b = 0; b < kw; b++) {
            int8_t *wrow = wt + ((size_t)a * kw + b) * c;
            for (int i = 0; i < k_in; i += 4) {
                const int n = k_in - i < 4 ? k_in - i : 4;
                dw_sums(g, x, h, w, x_c, x_zero, c, ho, wo, a, b, i, n, stride, pad, s);
                update_run_q(wrow + i, sh, s, n, neg_lr, q + i, rule, rng);
                if (sh) sh += n;
            }
        }
    }
}

/* ---- split (unfused) kernels: the same sums and updates in two steps (tinytrain/kernels/memory_ops.py) ---- */

void tt_conv2d_wgrad_f32(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int co,
                         int kernel, int k_in, int stride, int pad, float *s) {
    const int ho = (h + 2 * pad - kernel) / stride + 1, wo = (w + 2 * pad - kernel) / stride + 1;
    if (co == 1 && kernel == 1 && stride == 1 && pad == 0) {
        wg1x1_row(g, x, h * w, x_c, x_zero, k_in, s, 0, 0.0f, 0, 0, 0);
        return;
    }
    if (kernel == 1 && stride == 1 && pad == 0 && h * w <= TT_WG_MAX_POS) {
        const wg_sink sink = {s, 0, 0, 0, 0, 0};
        wg1x1_fast(g, x, h * w, x_c, x_zero, co, 0, co, k_in, k_in, 0, 0.0f, &sink);
        return;
    }
    float r[4];
    for (int o = 0; o < co; o++)
        for (int a = 0; a < kernel; a++)
            for (int b = 0; b < kernel; b++)
                for (int i = 0; i < k_in; i += 4) {
                    const int n = k_in - i < 4 ? k_in - i : 4;
                    conv_sums(g, x, h, w, x_c, x_zero, co, ho, wo, o, a, b, i, n, stride, pad, r);
                    for (int j = 0; j < n; j++) *s++ = r[j];
                }
}

void tt_dwconv2d_wgrad_f32(const float *g, const int8_t *x, int h, int w, int x_c, int32_t x_zero, int c,
                           int kernel, int k_in, int stride, int pad, float *s) {
    const int ho = (h + 2 * pad - kernel) / stride + 1, wo = (w + 2 * pad - kernel) / stride + 1;
    if (h * w <= TT_WG_MAX_POS && ho > 0 && wo > 0) {
        const wg_sink sink = {s, 0, 0, 0, 0, 0};
        wgdw_fast(g, x, h, w, x_c, x_zero, c, kernel, kernel, k_in, stride, pad, 0, 0.0f, &sink);
        return;
    }
    float r[4];
    for (int a = 0; a < kernel; a++)
        for (int b = 0; b < kernel; b++)
            for (int i = 0; i < k_in; i += 4) {
                const int n = k_in - i < 4 ? k_in - i : 4;
                dw_sums(g, x, h, w, x_c, x_zero, c, ho, wo, a, b, i, n, stride, pad, r);
                for (int j = 0; j < n; j++) *s++ = r[j];
            }
}

void tt_bias_grad_f32(const float *g, int p, int co, float *s) {
    for (int o = 0; o < co; o++) {
        float v = 0.0f;
        for (int j = 0; j < p; j++) v = v + g[(size_t)j * co + o];
        s[o] = v;
    }
}

void tt_conv2d_weight_update(const float *s, int8_t *wt, int co, int kh, int kw, int ci, int k_in, const float *q,
                             float neg_lr, int rule, uint32_t *rng, float *shadow) {
    float *sh = rule == TT_RULE_SHADOW ? shadow : 0;
    uint32_t x = rule == TT_RULE_STOCHASTIC ? *rng : 0;
    for (int o = 0; o < co; o++) {
        const float k = neg_lr * q[o];
        for (int ab = 0; ab < kh * kw; ab++) {
            int8_t *wrow = wt + ((size_t)o * kh * kw + ab) * ci;
            if (rule == TT_RULE_STOCHASTIC) {
                for (int i = 0; i < k_in; i++, s++) {
                    x = xs_next(x);
                    wrow[i] = stoch_one(wrow[i], *s * k, xs_uniform(x));
                }
                continue;
            }
            for (int i = 0; i < k_in; i++, s++) {
                wrow[i] = update_one(wrow[i], *s * k, rule, sh);
                if (sh) sh++;
            }
        }
    }
    if (rule == TT_RULE_STOCHASTIC) *rng = x;
}

void tt_dwconv2d_weight_update(const float *s, int8_t *wt, int kh, int kw, int c, int k_in, const float *q,
                               float neg_lr, int rule, uint32_t *rng, float *shadow) {
    float *sh = rule == TT_RULE_SHADOW ? shadow : 0;
    uint32_t x = rule == TT_RULE_STOCHASTIC ? *rng : 0;
    for (int ab = 0; ab < kh * kw; ab++) {
        int8_t *wrow = wt + (size_t)ab * c;
        if (rule == TT_RULE_STOCHASTIC) {
            for (int i = 0; i < k_in; i++, s++) {
                x = xs_next(x);
                wrow[i] = stoch_one(wrow[i], *s * (neg_lr * q[i]), xs_uniform(x));
            }
            continue;
        }
        for (int i = 0; i < k_in; i++, s++) {
            wrow[i] = update_one(wrow[i], *s * (neg_lr * q[i]), rule, sh);
            if (sh) sh++;
        }
    }
    if (rule == TT_RULE_STOCHASTIC) *rng = x;
}

/* rne(clamp(v, +-2^22)) as int32: an integer of magnitude <= 2^22, so the int32 conversion (one VCVT) is exact
 * and b + it saturated to int32 (tt_sat_add32: QADD) is the contract's 64-bit sum, saturated (an int64
 * conversion would call the soft-float __aeabi_f2lz on the device). */
static inline int32_t bias_step(float v) {
    return (int32_t)tt_rne(tt_clampf(v, 4194304.0f));
}

void tt_bias_update(const float *s, int co, int32_t *bias, const float *qb, float neg_lr) {
    for (int o = 0; o < co; o++) {
        bias[o] = tt_sat_add32(bias[o], bias_step(s[o] * (neg_lr * qb[o])));
    }
}

/* sum_{j asc} g[j * st], from +0.0f, sequential (unrolled by four: the same additions in the same order). */
static inline __attribute__((always_inline)) float sum_strided(const float *g, int n, size_t st) {
    float s = 0.0f;
    int j = 0;
    for (; j + 3 < n; j += 4, g += 4 * st) {
        s = s + g[0];
        s = s + g[st];
        s = s + g[2 * st];
        s = s + g[3 * st];
    }
    for (; j < n; j++, g += st) s = s + g[0];
    return s;
}

void tt_bias_grad_update(const float *g, int p, int co, int32_t *bias, const float *qb, float neg_lr) {
    for (int o = 0; o < co; o++) {
        /* co == 1 (the fused block backward, per channel): contiguous, constant offsets */
        const float s = co == 1 ? sum_strided(g, p, 1) : sum_strided(g + o, p, (size_t)co);
        const float k = neg_lr * qb[o];
        bias[o] = tt_sat_add32(bias[o], bias_step(s * k));
    }
}
