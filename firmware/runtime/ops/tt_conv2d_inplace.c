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

/* 3x3 (pad 1): the planes of four channels at a time (tt_dw_fill4; one for a channel tail, or when four would
 * hold fewer than 2 output rows; stack: tt_dw3_layout), strips of output rows per channel group, the halo rows carried over as
 * above; rows outside the image are zero rows of the plane (zeroed again per strip when there are several). */
static __attribute__((noinline)) int dw3_inplace_fast(int8_t *x, int h, int w, int c, const int8_t *wt,
                                                      const int32_t *bias, const float *m, int32_t x_zero,
                                                      int32_t y_zero) {
    if (h <= 0 || w <= 0) return 0;
    const int bw = ((w + 1) & ~1) + 2;
    int g, psz;
    const int rs = tt_dw3_layout(h, bw, c, &g, &psz);
    if (rs == 0) return 0; /* too wide: plain loops */
    int16_t buf[g * psz] __attribute__((aligned(4)));
    __builtin_memset(buf, 0, sizeof buf);
    uint32_t prm[4][TT_DW3_PRM_WORDS] __attribute__((aligned(8)));
    for (int ch = 0; ch < c;) {
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
#ifdef TT_USE_DSP
    if (kh == 3 && kw == 3 && pad == 1 && dw3_inplace_fast(x, h, w, c, wt, bias, m, x_zero, y_zero)) return;
    if (kh == kw && dw_inplace_fast(x, h, w, c, wt, kh, bias, m, x_zero, y_zero, pad, scratch)) return;
#endif
    int16_t tap[49]; /* one channel's taps (kh, kw <= 7) */
    const int n = h * w;
    for (int ch = 0; ch < c; ch++) {
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
