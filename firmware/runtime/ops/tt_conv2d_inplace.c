/* In-place depthwise conv2d: forward and input gradient written over their input (CompileOptions.inplace_dw_*;
 * tinytrain/ops/conv2d). Compiled through tt_memory_ops.c. */
#include "tt_memory_ops.h"

#include <stddef.h>
#include <string.h>

#include "tt_dot2x2.h"
#include "tt_dsp.h"
#include "tt_dw_plane.h"
#include "tt_kernels.h"
#include "tt_math.h"

void tt_dwconv2d_bwd_input_inplace_f32(float *g, int ho, int wo, int c, const int8_t *wt, int kh, int kw,
                                       const float *s_w, int pad, float *scratch) {
    const int h = ho, w = wo; /* stride 1: dx has g's shape */
    for (int ch = 0; ch < c; ch++) {
        const float s = s_w[ch];
        for (int j = 0; j < ho * wo; j++) scratch[j] = g[(size_t)j * c + ch];
        /* the zero-padded plane path (tt_dw_plane.h) from the copy, written over channel ch of g */
        if (tt_dwf_channel(scratch, 1, ho, wo, s, wt + ch, (size_t)c, kh, kw, 1, pad, h, w, g + ch, (size_t)c, 0, ch,
                           1))
            continue;
        for (int ih = 0; ih < h; ih++) {
            for (int iw = 0; iw < w; iw++) {
                float acc = 0.0f;
                for (int a = 0; a < kh; a++) {
                    const int oh = ih + pad - a;
                    if (oh < 0) break;
                    if (oh >= ho) continue;
                    for (int b = 0; b < kw; b++) {
                        const int ow = iw + pad - b;
                        if (ow < 0) break;
                        if (ow >= wo) continue;
                        acc = TT_MAC(acc, (scratch[(size_t)oh * wo + ow] * s), (float)wt[((size_t)a * kw + b) * c + ch]);
                    }
                }
                g[((size_t)ih * w + iw) * c + ch] = acc;
            }
        }
    }
}

#ifdef TT_USE_DSP
/* ---- in-place depthwise fast path: the plane path of tt_dwconv2d_s8 (tt_dw_plane.h), stride 1, k in {3,5,7} ----
 * Per channel, strips of output rows: the input rows a strip reads go into the int16 plane, then the plane function
 * of k (QADD bias + VCVTR requantization) writes channel ch of x. The plane is filled straight from x: a strip's
 * outputs only overwrite rows < r1, and the next strip's halo rows [r1 - pad, r1 + pad) were read into the plane
 * before that, so they move to its top (memmove) and only rows >= r1 + pad come from x (`scratch` unused on this
 * path). Stack: the plane, at most TT_DW_BUF_HALFWORDS int16 (2 KB; 8x8 map, 3x3: 10 x 12 halfwords), plus 28
 * words of packed weights. */
TT_DW_PLANE_FN(ip_plane_3, 3, 1)
TT_DW_PLANE_FN(ip_plane_5, 5, 1)
TT_DW_PLANE_FN(ip_plane_7, 7, 1)
TT_DW_FILL_FN(ip_fill)
TT_DW3_PLANE_FN(ip3_plane)
TT_DW_FILL4_FN(ip_fill4)

/* 3x3 (pad 1), channels ch0 .. c - 1 (what dw3_ip4_fast below leaves: wo not a multiple of 4, the c % 4 tail,
 * maps too wide for its four planes): the planes of four channels at a time (tt_dw_fill4; one for a channel tail,
 * or when four would hold fewer than 2 output rows; stack: tt_dw3_layout), strips of output rows per channel
 * group, the halo rows carried over as above; rows outside the image are zero rows of the plane (zeroed again per
 * strip when there are several); tt_dw3s1_plane (a bias near +-2^31 in the group: sums from 0 and QADD). */
static __attribute__((noinline)) int dw3_inplace_fast(int8_t *x, int h, int w, int c, const int8_t *wt,
                                                      const int32_t *bias, const float *m, int32_t x_zero,
                                                      int32_t y_zero, int ch0) {
    if (h <= 0 || w <= 0) return 0;
    const int bw = ((w + 1) & ~1) + 2;
    int g, psz;
    const int rs = tt_dw3_layout(h, bw, c, &g, &psz);
    if (rs == 0) return 0; /* too wide: plain loops */
    int16_t buf[g * psz] __attribute__((aligned(4)));
    __builtin_memset(buf, 0, sizeof buf);
    uint32_t prm[4][TT_DW3_PRM_WORDS] __attribute__((aligned(8)));
    for (int ch = ch0; ch < c;) {
        const int gg = g == 4 && ch + 4 <= c ? 4 : 1;
        if (gg == 4) tt_dw3_prm4(wt, c, ch, y_zero, bias, m, prm);
        else tt_dw3_prm(wt, c, ch, y_zero, bias[ch], m[ch], prm[0]);
        for (int r0 = 0; r0 < h; r0 += rs) {
            const int r1 = r0 + rs < h ? r0 + rs : h;
            const int ih_s = r0 - 1, ih_e = r1 + 1; /* rows [ih_s, ih_e) */
            int t0 = ih_s < 0 ? 0 : ih_s;
            const int t1 = ih_e > h ? h : ih_e;
            if (r0 > 0) { /* the halo rows r0 - 1, r0, read before rows < r0 were overwritten */
                for (int i = 0; i < gg; i++)
                    __builtin_memmove(buf + (size_t)i * psz, buf + (size_t)i * psz + (size_t)rs * bw,
                                      (size_t)2 * bw * sizeof(int16_t));
                t0 = r0 + 1;
            }
            if (rs < h) { /* several strips: the rows outside the image may hold another strip's rows */
                if (r0 == 0) tt_dw_zero_rows(buf, gg, psz, bw, 0, 1);
                tt_dw_zero_rows(buf, gg, psz, bw, t1 - ih_s, ih_e - ih_s);
            }
            if (gg == 4) ip_fill4(buf, psz, bw, 1, ih_s, t0, t1, x + ch, w, c, w, x_zero);
            else ip_fill(buf, bw, 1, ih_s, t0, t1, x + ch, w, c, w, x_zero);
            ip3_plane(buf, psz, gg, bw, ih_s, r0, r1, w, c, 1, prm, x + ch);
        }
        ch += gg;
    }
    return 1;
}

/* ---- 3x3 (pad 1), wo = 4 n4, groups of four channels: every bias kind at the folded bias's speed ----
 * Four planes and strips of output rows as dw3_inplace_fast, with their own row layout, parameter blocks and asm
 * loop. Plane row (bw = wo + 2 halfwords): a zero word, then the pairs Y[i] = (x[2i], x[2i + 1]) - x_zero; one
 * more zero word after the last row. The zero words are the padding columns (x[-1] of a row: the high half of the
 * word before Y[0]; x[wo]: the low half of the word after Y[wo/2 - 1]); written by the memset only, so the fill
 * stores pixel pairs only (no edge words). Outputs j = 2k .. 2k + 3 of a kernel row with A = (w0, w1),
 * B = (w1, w2), from the aligned words Y[k - 1] .. Y[k + 2] (two LDRDs):
 *   out 2k     += SMLATB(Y[k-1], A) + SMLAD(Y[k], B)     out 2k + 1 += SMLAD(Y[k], A) + SMLABT(Y[k+1], B)
 *   out 2k + 2 += SMLATB(Y[k], A) + SMLAD(Y[k+1], B)     out 2k + 3 += SMLAD(Y[k+1], A) + SMLABT(Y[k+2], B)
 * (the sums are exact, |acc| < 2^19, so their order does not matter). The bias, per channel kind:
 *  - S: the bias cannot saturate a sum (tt_dw3_fold): it starts the sums, VCVT.F32.S32 as before.
 *  - U: a bias at or near +-2^31 also starts the sums, the sum read as unsigned: for b > 0 the exact sum
 *    T = b + acc lies in [0, 2^32), so the wrapped 32-bit sum is T and VCVT.F32.U32 gives f32(T) exactly; for
 *    b < 0 the taps and m are negated and the sums start at -b (as unsigned): the sum is -T, f32(-T) = -f32(T),
 *    f32(-T) * (-m) = f32(T) * m bit for bit. QADD(acc, b) differs from T only when T passes the int32 limit L
 *    (+-2^31, which is also f32(INT32_MAX / INT32_MIN)); then f32(T) lies between L and L +- 2^19, and the
 *    requantization q(v) = SSAT8(QADD(VCVTR(v * m), y_zero)) is monotone in v (for any m; constant for NaN),
 *    so q(f32(T)) = q(L) whenever q(L) = q(L +- 2^19), checked once per channel.
 *  - Q: that check failed: sums from 0 and QADD of the bias, as tt_dw3s1_run without the fold.
 * Block (IP3_PRM words, VLDM s16-s24): the taps A, B per kernel row; the sums' start twice (Q: the bias); m
 * (bits). The kinds of a group: one word, 2 bits per channel (0 S, 1 U, 2 Q) above a stop bit. Stack: the planes
 * and four blocks within tt_dw3_layout's budget (at least TT_DW3_MIN_HALFWORDS, 1 KB); the blocks are smaller
 * (9 words, not 13), so a 16-wide map has 4 output rows per strip instead of 3. */
#define IP3_PRM 9

/* q(v) above: the requantization of a float sum v (tt_requant_dsp after its bias QADD). */
static inline int32_t ip3_q(float v, float m, int32_t y_zero) {
    return __ssat(__qadd(tt_cvtr_s32(v * m), y_zero), 8);
}

/* The blocks of channels ch .. ch + 3 (wt: HWC, c channels): taps as tt_dw3_prm4, then each channel's kind;
 * returns the kinds word. */
static uint32_t ip3_prm4(const int8_t *wt, int c, int ch, const int32_t *bias, const float *m, int32_t y_zero,
                     uint32_t (*p)[IP3_PRM]) {
    for (int a = 0; a < 3; a++) {
        const int8_t *wr = wt + (size_t)a * 3 * c + ch;
        const uint32_t t0 = tt_load32(wr), t1 = tt_load32(wr + c), t2 = tt_load32(wr + 2 * c);
        const uint32_t e0 = __sxtb16(t0), e1 = __sxtb16(t1), e2 = __sxtb16(t2); /* channels 0, 2 */
        const uint32_t o0 = tt_sxtb16_ror8(t0), o1 = tt_sxtb16_ror8(t1), o2 = tt_sxtb16_ror8(t2); /* 1, 3 */
        p[0][2 * a] = tt_pkhbt16(e0, e1), p[0][2 * a + 1] = tt_pkhbt16(e1, e2);
        p[1][2 * a] = tt_pkhbt16(o0, o1), p[1][2 * a + 1] = tt_pkhbt16(o1, o2);
        p[2][2 * a] = tt_pkhtb16(e0, e1), p[2][2 * a + 1] = tt_pkhtb16(e1, e2);
        p[3][2 * a] = tt_pkhtb16(o0, o1), p[3][2 * a + 1] = tt_pkhtb16(o1, o2);
    }
    uint32_t kinds = 1u << 8;
    for (int i = 0; i < 4; i++) {
        const int32_t b = bias[ch + i];
        float mm = m[ch + i];
        uint32_t start = (uint32_t)b, kind = 0;
        if (!tt_dw3_fold(b)) {
            const float lim = b > 0 ? 2147483648.0f : -2147483648.0f, far = b > 0 ? 2148007936.0f : -2148007936.0f;
            if (ip3_q(lim, mm, y_zero) == ip3_q(far, mm, y_zero)) { /* kind U (far = lim +- 2^19) */
                kind = 1;
                if (b < 0) {
                    start = 0u - (uint32_t)b, mm = -mm;
                    for (int t = 0; t < 6; t++) p[i][t] = __ssub16(0u, p[i][t]); /* -(-128) = 128: a halfword */
                }
            } else {
                kind = 2; /* kind Q: start = the bias, for the QADD */
            }
        }
        p[i][6] = p[i][7] = start, p[i][8] = tt_f32_bits(mm), kinds |= kind << (2 * i);
    }
    return kinds;
}

#if defined(__ARM_FEATURE_DSP) && !defined(TT_NO_DSP) && defined(__ARM_FP)
/* Device. Registers as tt_dw3s1_run (3 plane row pointers, output pointer, c, end, 2 taps, 2 plane words, 4
 * sums); a channel's block in s16-s24; the call's constants in s0-s7: s0 y_zero, s1 the channel's row limit
 * (p0 after its last row), s2 8 n4 (bytes of one row's passes), s3 rows x row bytes, s4 the next block, s5
 * the kinds word of the channels left (stop bit alone: done), s6 / s7 the plane and output steps to the next channel. Per pass (4 outputs, 36 MACs), kinds S
 * and U: VMOV x2 (the sums' start), 3 x (VMOV taps, LDRD x2, 8 multiplies), VMOV x2, VCVT x4 (.S32 or .U32),
 * VMUL x4, VCVTR x4, VMOV y_zero, VMOV x2, QADD x4 (y_zero), SSAT x4, STRB x4, ADD x2, CMP, BNE: 68; kind Q:
 * 71. Per output row 7 (the three pointers step over the zero word), per channel 22. */
/* One kernel row (taps SA, SB; plane pointer P at Y[k - 1], advanced by 8); FIRST: the first products of a0, a1
 * and a2 (after the first LDRD), FIRST3: that of a3 (after the second). */
#define IP3_ROW(SA, SB, P, FIRST, FIRST3)                                                                     \
    "vmov %[A], %[B], " SA ", " SB "\n\t"                                                                     \
    "ldrd %[u], %[v], [%[" P "]], #8\n\t" /* Y[k - 1], Y[k] */                                                \
    FIRST                                                                                                     \
    "smlad %[a0], %[v], %[B], %[a0]\n\t"                                                                      \
    "ldrd %[u], %[v], [%[" P "]]\n\t" /* Y[k + 1], Y[k + 2] */                                                \
    "smlabt %[a1], %[u], %[B], %[a1]\n\t"                                                                     \
    "smlad %[a2], %[u], %[B], %[a2]\n\t"                                                                      \
    FIRST3                                                                                                    \
    "smlabt %[a3], %[v], %[B], %[a3]\n\t"
#define IP3_ACC                                                                                               \
    "smlatb %[a0], %[u], %[A], %[a0]\n\t"                                                                     \
    "smlad %[a1], %[v], %[A], %[a1]\n\t"                                                                      \
    "smlatb %[a2], %[v], %[A], %[a2]\n\t"
#define IP3_ACC3 "smlad %[a3], %[u], %[A], %[a3]\n\t"
#define IP3_MUL                                                                                               \
    "smultb %[a0], %[u], %[A]\n\t"                                                                            \
    "smuad %[a1], %[v], %[A]\n\t"                                                                             \
    "smultb %[a2], %[v], %[A]\n\t"
#define IP3_MUL3 "smuad %[a3], %[u], %[A]\n\t"
#define IP3_PASS(INIT, FIRST, FIRST3, BIAS, CVT)                                                              \
    INIT                                                                                                      \
    IP3_ROW("s16", "s17", "p0", FIRST, FIRST3)                                                                \
    IP3_ROW("s18", "s19", "p1", IP3_ACC, IP3_ACC3)                                                            \
    IP3_ROW("s20", "s21", "p2", IP3_ACC, IP3_ACC3)                                                            \
    BIAS                                                                                                      \
    TT_DW_REQ4_STORE(CVT, "s24", "s0")
/* All output rows of one channel: passes to `end`, then the next row (its plane rows start one word after the
 * last pass's pointer) until p0 reaches the limit in s1. */
#define IP3_ROWS(L, INIT, FIRST, FIRST3, BIAS, CVT)                                                           \
    L ":\n\t" IP3_PASS(INIT, FIRST, FIRST3, BIAS, CVT) "cmp %[p0], %[end]\n\t"                                \
    "bne " L "b\n\t"                                                                                          \
    "vmov %[A], %[B], s1, s2\n\t"                                                                             \
    "adds %[p0], %[p0], #4\n\t"                                                                               \
    "adds %[p1], %[p1], #4\n\t"                                                                               \
    "adds %[p2], %[p2], #4\n\t"                                                                               \
    "add %[end], %[p0], %[B]\n\t"                                                                             \
    "cmp %[p0], %[A]\n\t"                                                                                     \
    "bne " L "b\n\t"
#define IP3_START "vmov %[a0], %[a1], s22, s23\n\tvmov %[a2], %[a3], s22, s23\n\t" /* the sums start at b / -b */
#define IP3_QADD                                                                                              \
    "vmov %[B], s22\n\t"                                                                                      \
    "qadd %[a0], %[a0], %[B]\n\t"                                                                             \
    "qadd %[a1], %[a1], %[B]\n\t"                                                                             \
    "qadd %[a2], %[a2], %[B]\n\t"                                                                             \
    "qadd %[a3], %[a3], %[B]\n\t"

/* The channels of `kinds` (ip3_prm4): rows output rows of 4 n4 outputs each from plane rows p0, p1, p2 (kernel rows 0..2 of the first
 * output row; row bytes 8 n4 + 4), outputs from o (HWC, c channels; the output rows follow each other); then the
 * next channel: plane pointers k1 bytes and the output pointer k2 bytes on from where its last row ended. */
static __attribute__((noinline)) void ip3_run(const int16_t *p0, const int16_t *p1, const int16_t *p2,
                                              uint32_t kinds, int32_t k1, int32_t k2, int8_t *o, int c, uint32_t (*prm)[IP3_PRM],
                                              int32_t y_zero, int n4, int rows) {
    const int16_t *end;
    uint32_t A = (uint32_t)prm, B = kinds, u = (uint32_t)k1, v = (uint32_t)k2;
    int32_t a0 = y_zero, a1 = 8 * n4, a2 = rows * (8 * n4 + 4), a3;
    __asm volatile(
        "vmov s4, s5, %[A], %[B]\n\t" /* blocks, kinds */
        "vmov s6, s7, %[u], %[v]\n\t" /* k1, k2 */
        "vmov s0, %[a0]\n\t"          /* y_zero */
        "vmov s2, s3, %[a1], %[a2]\n" /* 8 n4, rows x row bytes */
        "4:\n\t"
        "vmov %[A], s4\n\t"
        "vldm %[A]!, {s16-s24}\n\t"
        "vmov s4, %[A]\n\t"
        "vmov %[A], %[B], s2, s3\n\t"
        "add %[end], %[p0], %[A]\n\t"
        "add %[B], %[p0], %[B]\n\t"
        "vmov s1, %[B]\n\t"  /* the row limit */
        "vmov %[B], s5\n\t"
        "lsls %[A], %[B], #31\n\t" /* the channel's kind: N = U, C = Q */
        "lsr %[B], %[B], #2\n\t"
        "vmov s5, %[B]\n\t"
        "bcs 30f\n\t"
        "bmi 20f\n\t"
        IP3_ROWS("10", IP3_START, IP3_ACC, IP3_ACC3, "", "vcvt.f32.s32")
        "b 9f\n"
        "20:\n\t"
        IP3_ROWS("21", IP3_START, IP3_ACC, IP3_ACC3, "", "vcvt.f32.u32")
        "b 9f\n"
        "30:\n\t"
        IP3_ROWS("31", "", IP3_MUL, IP3_MUL3, IP3_QADD, "vcvt.f32.s32")
        "9:\n\t" /* next channel */
        "vmov %[A], %[B], s6, s7\n\t"
        "add %[p0], %[p0], %[A]\n\t"
        "add %[p1], %[p1], %[A]\n\t"
        "add %[p2], %[p2], %[A]\n\t"
        "add %[o], %[o], %[B]\n\t"
        "vmov %[A], s5\n\t"
        "cmp %[A], #1\n\t" /* the stop bit alone */
        "bne 4b"
        : [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), [o] "+r"(o), [end] "=&r"(end), [A] "+r"(A), [B] "+r"(B),
          [u] "+r"(u), [v] "+r"(v), [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "=&r"(a3)
        : [c] "r"(c)
        : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19",
          "s20", "s21", "s22", "s23", "s24", "cc", "memory");
}
#else
/* Host (and a device without an FPU): the same integers in C. */
static __attribute__((noinline)) void ip3_run(const int16_t *p0, const int16_t *p1, const int16_t *p2,
                                              uint32_t kinds, int32_t k1, int32_t k2, int8_t *o, int c, uint32_t (*prm)[IP3_PRM],
                                              int32_t y_zero, int n4, int rows) {
    for (int ch = 0; kinds != 1; ch++, kinds >>= 2) {
        const uint32_t *q = prm[ch], kind = kinds & 3;
        const int32_t s = (int32_t)q[6];
        const float mm = tt_bits_f32(q[8]);
        for (int r = 0; r < rows; r++, p0 += 2, p1 += 2, p2 += 2) {
            for (int n = 0; n < n4; n++, p0 += 4, p1 += 4, p2 += 4, o += 4 * (size_t)c) {
                int32_t a[4] = {s, s, s, s};
                const int16_t *pr[3] = {p0, p1, p2};
                for (int k = 0; k < 3; k++) {
                    const uint32_t A = q[2 * k], B = q[2 * k + 1];
                    const uint32_t y0 = tt_load32h(pr[k]), y1 = tt_load32h(pr[k] + 2), y2 = tt_load32h(pr[k] + 4),
                                   y3 = tt_load32h(pr[k] + 6);
                    a[0] = __smlad(y1, B, __smlatb(y0, A, a[0]));
                    a[1] = __smlabt(y2, B, __smlad(y1, A, a[1]));
                    a[2] = __smlad(y2, B, __smlatb(y1, A, a[2]));
                    a[3] = __smlabt(y3, B, __smlad(y2, A, a[3]));
                }
                for (int i = 0; i < 4; i++) {
                    float f;
                    if (kind == 0) f = (float)a[i];
                    else if (kind == 1) f = (float)(uint32_t)a[i]; /* the exact sum, unsigned */
                    else f = (float)__qadd((int32_t)((uint32_t)a[i] - (uint32_t)s), s); /* the sum from 0 (mod 2^32: exact, |sum| < 2^19), then the bias */
                    o[(size_t)i * c] = (int8_t)ip3_q(f, mm, y_zero);
                }
            }
        }
        p0 = (const int16_t *)((const char *)p0 + k1), p1 = (const int16_t *)((const char *)p1 + k1);
        p2 = (const int16_t *)((const char *)p2 + k1), o += k2;
    }
}
#endif

/* Rows [t0, t1) of channels ch .. ch + 3 into the four planes (psz halfwords apart; input row ih at plane row
 * ih - ih_s, bw halfwords per row): the pixel pairs of each row after its zero word (x: channel ch of an HWC
 * map, w = 4 n4 columns, c >= 4 channels). Device: TT_DW_FILL4_PAIR (tt_dw_plane.h: two word loads, four
 * SXTAB16 minus x_zero, four PKHBT/PKHTB, four stores), two pairs per step, the rows in one loop. */
static __attribute__((noinline)) void ip3_fill(int16_t *buf, int psz, int bw, int ih_s, int t0, int t1,
                                               const int8_t *x, int w, int c, int32_t x_zero) {
    int rows = t1 - t0;
    if (rows <= 0) return;
    const uint32_t nzz = ((uint32_t)(uint16_t)(int16_t)-x_zero) * 0x00010001u;
    int16_t *d = buf + (size_t)(t0 - ih_s) * bw + 2;
    const int8_t *src = x + (size_t)t0 * w * c;
#if defined(__ARM_FEATURE_DSP) && !defined(TT_NO_DSP)
    const int pb = 2 * psz, pb3 = 6 * psz, rb = 2 * w; /* rb: the bytes of a row's pairs */
    const int16_t *end;
    uint32_t u, v, a, b, t;
    __asm volatile("1:\n\t"
                   "add %[e], %[d], %[rb]\n"
                   "2:\n\t"
                   TT_DW_FILL4_PAIR
                   TT_DW_FILL4_PAIR
                   "cmp %[d], %[e]\n\t"
                   "bne 2b\n\t"
                   "adds %[d], %[d], #4\n\t" /* the next row's zero word */
                   "subs %[rows], %[rows], #1\n\t"
                   "bne 1b"
                   : [s] "+r"(src), [d] "+r"(d), [rows] "+r"(rows), [e] "=&r"(end), [u] "=&r"(u), [v] "=&r"(v),
                     [a] "=&r"(a), [b] "=&r"(b), [t] "=&r"(t)
                   : [c] "r"(c), [pb] "r"(pb), [pb3] "r"(pb3), [rb] "r"(rb), [z] "r"(nzz)
                   : "cc", "memory");
#else
    for (; rows > 0; rows--, d += bw, src += (size_t)w * c)
        tt_dw_fill4_pairs(src, c, d, w / 2, psz, nzz);
#endif
}

/* n (even, > 0) words from s to d (an LDRD / STRD pair when n = 2 mod 4, then LDM / STM of four; the four
 * registers named, so the lists ascend as LDM / STM need; not r7, the frame pointer of a function with a VLA). */
static inline void ip3_copy(uint32_t *d, const uint32_t *s, int n) {
#if defined(__ARM_FEATURE_DSP) && !defined(TT_NO_DSP)
    register uint32_t t0 __asm__("r4"), t1 __asm__("r5"), t2 __asm__("r6"), t3 __asm__("r8");
    __asm volatile("tst %[n], #2\n\t"
                   "beq 1f\n\t"
                   "ldrd %[t0], %[t1], [%[s]], #8\n\t"
                   "strd %[t0], %[t1], [%[d]], #8\n\t"
                   "subs %[n], %[n], #2\n\t"
                   "beq 2f\n"
                   "1:\n\t"
                   "ldmia %[s]!, {%[t0], %[t1], %[t2], %[t3]}\n\t"
                   "stmia %[d]!, {%[t0], %[t1], %[t2], %[t3]}\n\t"
                   "subs %[n], %[n], #4\n\t"
                   "bne 1b\n"
                   "2:"
                   : [d] "+r"(d), [s] "+r"(s), [n] "+r"(n), [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2),
                     [t3] "=&r"(t3)
                   :
                   : "cc", "memory");
#else
    for (int i = 0; i < n; i++) d[i] = s[i];
#endif
}

/* The pairs of plane row `row` of four planes psz halfwords apart: zero (its zero word is zero already). */
static inline void ip3_zero_row(int16_t *buf, int psz, int bw, int row) {
    for (int i = 0; i < 4; i++) {
        uint32_t *d = (uint32_t *)(void *)(buf + (size_t)i * psz + (size_t)row * bw + 2);
        for (int j = 0; j < bw / 2 - 1; j++) d[j] = 0;
    }
}

/* The channels in groups of four (c >= 4, wo = 4 n4); returns the channels done (a multiple of 4; 0: none, the
 * caller's paths do them all). */
static __attribute__((noinline)) int dw3_ip4_fast(int8_t *x, int h, int w, int c, const int8_t *wt,
                                                  const int32_t *bias, const float *m, int32_t x_zero,
                                                  int32_t y_zero) {
    if (h <= 0 || w <= 0 || (w & 3) != 0 || c < 4) return 0;
    const int bw = w + 2;
    /* tt_dw3_layout's budget with IP3_PRM-word blocks; four planes holding at least 2 output rows (or all) */
    const int one = TT_DW_BUF_HALFWORDS / bw < h + 2 ? TT_DW_BUF_HALFWORDS / bw : h + 2;
    const int budget = (one * bw < TT_DW3_MIN_HALFWORDS ? TT_DW3_MIN_HALFWORDS : one * bw) - 4 * IP3_PRM * 2;
    const int prow = (budget / 4 - 2) / bw; /* plane rows (+ the last zero word) */
    if (prow - 2 < 2 && prow - 2 < h) return 0;
    const int rs = prow - 2 < h ? prow - 2 : h, psz = (rs + 2) * bw + 2;
    int16_t buf[4 * psz] __attribute__((aligned(8)));
    __builtin_memset(buf, 0, sizeof buf); /* the zero words (and rows, with one strip) stay 0 */
    uint32_t prm[4][IP3_PRM] __attribute__((aligned(8)));
    const int c4 = c & ~3, n4 = w >> 2;
    for (int ch = 0; ch < c4; ch += 4) {
        const uint32_t kinds = ip3_prm4(wt, c, ch, bias, m, y_zero, prm);
        for (int r0 = 0; r0 < h; r0 += rs) {
            const int r1 = r0 + rs < h ? r0 + rs : h, rows = r1 - r0, t1 = r1 + 1 < h ? r1 + 1 : h;
            int t0 = 0;
            if (r0 > 0) { /* the halo rows r0 - 1, r0 (plane rows rs, rs + 1), read before row r0 - 1 was overwritten */
                for (int i = 0; i < 4; i++) {
                    int16_t *p = buf + (size_t)i * psz;
                    ip3_copy((uint32_t *)(void *)p, (const uint32_t *)(const void *)(p + (size_t)rs * bw), bw);
                }
                t0 = r0 + 1;
            } else if (rs < h) {
                ip3_zero_row(buf, psz, bw, 0); /* input row -1 (another strip's row before) */
            }
            if (rs < h && r1 == h) ip3_zero_row(buf, psz, bw, rows + 1); /* input row h */
            ip3_fill(buf, psz, bw, r0 - 1, t0, t1, x + ch, w, c, x_zero);
            ip3_run(buf, buf + bw, buf + 2 * bw, kinds, 2 * psz - rows * 2 * bw, 1 - rows * w * c,
                    x + (size_t)r0 * w * c + ch, c, prm, y_zero, n4, rows);
        }
    }
    return c4;
}

static __attribute__((noinline)) int dw_inplace_fast(int8_t *x, int h, int w, int c, const int8_t *wt, int k,
                                                     const int32_t *bias, const float *m, int32_t x_zero,
                                                     int32_t y_zero, int pad, int8_t *scratch) {
    if ((k != 3 && k != 5 && k != 7) || 2 * pad != k - 1 || h <= 0 || w <= 0) return 0;
    const int w2 = (w + 1) & ~1;
    const int bw = (w2 + k) & ~1; /* even (w2 + k - 1 rounded up): rows stay word aligned */
    if (TT_DW_BUF_HALFWORDS / bw < k) return 0; /* too wide: plain loops */
    int rs = TT_DW_BUF_HALFWORDS / bw - k + 1;  /* output rows per strip */
    if (rs > h) rs = h;
    const int nb = rs + k - 1;
    int16_t buf[nb * bw] __attribute__((aligned(4)));
    __builtin_memset(buf, 0, sizeof buf); /* the padding columns stay 0 */
    (void)scratch; /* the plane carries the halo rows between strips: no channel copy needed */
    uint32_t wp[TT_DW_PACKED_WORDS];
    const tt_dw_plane_fn plane = k == 3 ? ip_plane_3 : k == 5 ? ip_plane_5 : ip_plane_7;
    for (int ch = 0; ch < c; ch++) {
        tt_dw_pack_taps(wt, k, c, ch, wp);
        for (int r0 = 0; r0 < h; r0 += rs) {
            const int r1 = r0 + rs < h ? r0 + rs : h;
            const int ih_s = r0 - pad, ih_e = r1 + pad; /* rows [ih_s, ih_e) */
            int t0 = ih_s < 0 ? 0 : ih_s;
            const int t1 = ih_e > h ? h : ih_e;
            if (r0 > 0) { /* the halo rows [r0 - pad, r0 + pad), read before rows < r0 were overwritten */
                __builtin_memmove(buf, buf + (size_t)rs * bw, (size_t)(k - 1) * bw * sizeof(int16_t));
                t0 = r0 + pad;
            }
            ip_fill(buf, bw, pad, ih_s, t0, t1, x + ch, w, c, w, x_zero);
            plane(buf, bw, ih_s, r0, r1, h, w, ch, c, pad, wp, bias[ch], m[ch], y_zero, x);
        }
    }
    return 1;
}
#endif

void tt_dwconv2d_s8_inplace(int8_t *x, int h, int w, int c, const int8_t *wt, int kh, int kw, const int32_t *bias,
                            const float *m, int32_t x_zero, int32_t y_zero, int pad, int8_t *scratch) {
    int ch0 = 0; /* channels done by the fast paths */
#ifdef TT_USE_DSP
    if (kh == 3 && kw == 3 && pad == 1) {
        ch0 = dw3_ip4_fast(x, h, w, c, wt, bias, m, x_zero, y_zero); /* groups of four channels */
        if (ch0 == c || dw3_inplace_fast(x, h, w, c, wt, bias, m, x_zero, y_zero, ch0)) return;
    }
    if (kh == kw && ch0 == 0 && dw_inplace_fast(x, h, w, c, wt, kh, bias, m, x_zero, y_zero, pad, scratch)) return;
#endif
    int16_t tap[49]; /* one channel's taps (kh, kw <= 7) */
    const int n = h * w;
    for (int ch = ch0; ch < c; ch++) {
        const int8_t *xc = x + ch;
        for (int j = 0; j < n; j++) scratch[j] = xc[(size_t)j * c];
        for (int a = 0; a < kh * kw; a++) tap[a] = wt[(size_t)a * c + ch];
        const int32_t b = bias[ch];
        const float mc = m[ch];
        for (int oh = 0; oh < h; oh++) {
            const int ih0 = oh - pad;
            const int a0 = ih0 < 0 ? -ih0 : 0, a1 = ih0 + kh > h ? h - ih0 : kh;
            int8_t *yr = x + (size_t)oh * w * c + ch;
            for (int ow = 0; ow < w; ow++) {
                const int iw0 = ow - pad;
                const int b0 = iw0 < 0 ? -iw0 : 0, b1 = iw0 + kw > w ? w - iw0 : kw;
                int32_t acc = 0;
                for (int a = a0; a < a1; a++) {
                    const int8_t *sr = scratch + (size_t)(ih0 + a) * w + iw0;
                    const int16_t *tr = tap + a * kw;
                    for (int bb = b0; bb < b1; bb++) acc += (sr[bb] - x_zero) * tr[bb];
                }
                yr[(size_t)ow * c] = tt_requant_acc(acc, b, mc, y_zero);
            }
        }
    }
}
