/* Integer forward kernels (docs/numerics.md, "Integer forward"). */
#include "tt_dsp.h"
#include "tt_kernels.h"
#include "tt_math.h"

static inline int8_t requant(int32_t acc, int32_t bias, float m, int32_t y_zero) {
    int32_t s = (int32_t)((uint32_t)acc + (uint32_t)bias); /* int32 wrap, as the reference */
    return tt_requant_out((float)s * m, y_zero);
}

static inline int out_size(int n, int k, int stride, int pad) {
    return (n + 2 * pad - k) / stride + 1;
}

/* 1x1, stride 1: y[p][o] over p = h*w pixels. */
static void conv1x1_s8(const int8_t *x, int np, int ci, const int8_t *wt, int co, const int32_t *bias,
                       const float *m, int32_t x_zero, int32_t y_zero, int8_t *y) {
    int p = 0;
#ifdef TT_USE_DSP
    /* 2 outputs x 2 pixels per pass, 4 channels per step: 4 LDR, 8 SXTB16, 8 SMLAD per 16 MAC. The zero
     * point is folded out: sum (x - z) w = sum x w - z sum w (exact in int32). */
    if (np >= 2) {
        const int np2 = np & ~1;
        int o = 0;
        for (; o + 1 < co; o += 2) {
            const int8_t *wa = wt + (size_t)o * ci, *wb = wa + ci;
            int32_t sa = 0, sb = 0;
            for (int i = 0; i < ci; i++) {
                sa += wa[i];
                sb += wb[i];
            }
            sa *= x_zero;
            sb *= x_zero;
            for (int q = 0; q < np2; q += 2) {
                const int8_t *xa = x + (size_t)q * ci, *xb = xa + ci;
                int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
                const int8_t *px = xa, *pw = wa, *const end = xa + (ci & ~3);
                const size_t st = (size_t)ci; /* second pixel / second output: [p + st] addressing */
                while (px < end) {
                    const uint32_t u = tt_load32(pw), v = tt_load32(pw + st);
                    const uint32_t wa02 = __sxtb16(u), wa13 = tt_sxtb16_ror8(u);
                    const uint32_t wb02 = __sxtb16(v), wb13 = tt_sxtb16_ror8(v);
                    uint32_t t = tt_load32(px);
                    uint32_t x02 = __sxtb16(t), x13 = tt_sxtb16_ror8(t);
                    a00 = __smlad(x02, wa02, a00);
                    a00 = __smlad(x13, wa13, a00);
                    a01 = __smlad(x02, wb02, a01);
                    a01 = __smlad(x13, wb13, a01);
                    t = tt_load32(px + st);
                    x02 = __sxtb16(t);
                    x13 = tt_sxtb16_ror8(t);
                    a10 = __smlad(x02, wa02, a10);
                    a10 = __smlad(x13, wa13, a10);
                    a11 = __smlad(x02, wb02, a11);
                    a11 = __smlad(x13, wb13, a11);
                    px += 4;
                    pw += 4;
                }
                int i = ci & ~3;
                for (; i < ci; i++) {
                    a00 += xa[i] * wa[i];
                    a01 += xa[i] * wb[i];
                    a10 += xb[i] * wa[i];
                    a11 += xb[i] * wb[i];
                }
                y[(size_t)q * co + o] = requant(a00 - sa, bias[o], m[o], y_zero);
                y[(size_t)q * co + o + 1] = requant(a01 - sb, bias[o + 1], m[o + 1], y_zero);
                y[(size_t)(q + 1) * co + o] = requant(a10 - sa, bias[o], m[o], y_zero);
                y[(size_t)(q + 1) * co + o + 1] = requant(a11 - sb, bias[o + 1], m[o + 1], y_zero);
            }
        }
        for (; o < co; o++) { /* odd last output */
            const int8_t *wa = wt + (size_t)o * ci;
            for (int q = 0; q < np2; q++) {
                const int8_t *xp = x + (size_t)q * ci;
                int32_t acc = 0;
                for (int i = 0; i < ci; i++) acc += (xp[i] - x_zero) * wa[i];
                y[(size_t)q * co + o] = requant(acc, bias[o], m[o], y_zero);
            }
        }
        p = np2;
    }
#endif
    for (; p < np; p++) {
        const int8_t *xp = x + (size_t)p * ci;
        for (int o = 0; o < co; o++) {
            const int8_t *wo = wt + (size_t)o * ci;
            int32_t acc = 0;
            for (int i = 0; i < ci; i++) acc += (xp[i] - x_zero) * wo[i];
            y[(size_t)p * co + o] = requant(acc, bias[o], m[o], y_zero);
        }
    }
}

void tt_conv2d_s8(const int8_t *x, int h, int w, int ci, const int8_t *wt, int co, int kh, int kw,
                  const int32_t *bias, const float *m, int32_t x_zero, int32_t y_zero, int stride, int pad,
                  int8_t *y) {
    if (kh == 1 && kw == 1 && stride == 1 && pad == 0) {
        conv1x1_s8(x, h * w, ci, wt, co, bias, m, x_zero, y_zero, y);
        return;
    }
    const int ho = out_size(h, kh, stride, pad), wo = out_size(w, kw, stride, pad);
    for (int oh = 0; oh < ho; oh++) {
        for (int ow = 0; ow < wo; ow++) {
            const int ih0 = oh * stride - pad, iw0 = ow * stride - pad;
            for (int o = 0; o < co; o++) {
                int32_t acc = 0;
                for (int a = 0; a < kh; a++) {
                    const int ih = ih0 + a;
                    if (ih < 0 || ih >= h) continue;
                    for (int b = 0; b < kw; b++) {
                        const int iw = iw0 + b;
                        if (iw < 0 || iw >= w) continue;
                        const int8_t *xp = x + ((size_t)ih * w + iw) * ci;
                        const int8_t *wp = wt + (((size_t)o * kh + a) * kw + b) * ci;
                        for (int i = 0; i < ci; i++) acc += (xp[i] - x_zero) * wp[i];
                    }
                }
                y[((size_t)oh * wo + ow) * co + o] = requant(acc, bias[o], m[o], y_zero);
            }
        }
    }
}

void tt_dwconv2d_s8(const int8_t *x, int h, int w, int c, const int8_t *wt, int kh, int kw, const int32_t *bias,
                    const float *m, int32_t x_zero, int32_t y_zero, int stride, int pad, int8_t *y) {
    const int ho = out_size(h, kh, stride, pad), wo = out_size(w, kw, stride, pad);
    for (int oh = 0; oh < ho; oh++) {
        const int ih0 = oh * stride - pad;
        const int a0 = ih0 < 0 ? -ih0 : 0, a1 = ih0 + kh > h ? h - ih0 : kh;
        for (int ow = 0; ow < wo; ow++) {
            const int iw0 = ow * stride - pad;
            const int b0 = iw0 < 0 ? -iw0 : 0, b1 = iw0 + kw > w ? w - iw0 : kw;
            int8_t *yp = y + ((size_t)oh * wo + ow) * c;
            int ch = 0;
#ifdef TT_USE_DSP
            /* 4 channels at once; taps paired into halfwords so one SMLAD does 2 taps of one channel. */
            const uint32_t zz = ((uint32_t)(uint16_t)(int16_t)x_zero) * 0x00010001u;
            for (; ch + 3 < c; ch += 4) {
                int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                for (int a = a0; a < a1; a++) {
                    const int8_t *xr = x + ((size_t)(ih0 + a) * w + iw0) * c + ch;
                    const int8_t *wr = wt + ((size_t)a * kw) * c + ch;
                    int b = b0;
                    for (; b + 1 < b1; b += 2) {
                        uint32_t u = tt_load32(xr + (size_t)b * c), v = tt_load32(xr + (size_t)(b + 1) * c);
                        uint32_t u02 = __ssub16(__sxtb16(u), zz), u13 = __ssub16(tt_sxtb16_ror8(u), zz);
                        uint32_t v02 = __ssub16(__sxtb16(v), zz), v13 = __ssub16(tt_sxtb16_ror8(v), zz);
                        uint32_t p = tt_load32(wr + (size_t)b * c), q = tt_load32(wr + (size_t)(b + 1) * c);
                        uint32_t p02 = __sxtb16(p), p13 = tt_sxtb16_ror8(p);
                        uint32_t q02 = __sxtb16(q), q13 = tt_sxtb16_ror8(q);
                        s0 = __smlad(tt_pack_lo(u02, v02), tt_pack_lo(p02, q02), s0);
                        s2 = __smlad(tt_pack_hi(u02, v02), tt_pack_hi(p02, q02), s2);
                        s1 = __smlad(tt_pack_lo(u13, v13), tt_pack_lo(p13, q13), s1);
                        s3 = __smlad(tt_pack_hi(u13, v13), tt_pack_hi(p13, q13), s3);
                    }
                    for (; b < b1; b++) {
                        const int8_t *xp = xr + (size_t)b * c, *wp = wr + (size_t)b * c;
                        s0 += (xp[0] - x_zero) * wp[0];
                        s1 += (xp[1] - x_zero) * wp[1];
                        s2 += (xp[2] - x_zero) * wp[2];
                        s3 += (xp[3] - x_zero) * wp[3];
                    }
                }
                yp[ch] = requant(s0, bias[ch], m[ch], y_zero);
                yp[ch + 1] = requant(s1, bias[ch + 1], m[ch + 1], y_zero);
                yp[ch + 2] = requant(s2, bias[ch + 2], m[ch + 2], y_zero);
                yp[ch + 3] = requant(s3, bias[ch + 3], m[ch + 3], y_zero);
            }
#endif
            for (; ch < c; ch++) {
                int32_t acc = 0;
                for (int a = a0; a < a1; a++) {
                    const int8_t *xr = x + ((size_t)(ih0 + a) * w + iw0) * c + ch;
                    const int8_t *wr = wt + ((size_t)a * kw) * c + ch;
                    for (int b = b0; b < b1; b++) acc += (xr[(size_t)b * c] - x_zero) * wr[(size_t)b * c];
                }
                yp[ch] = requant(acc, bias[ch], m[ch], y_zero);
            }
        }
    }
}

void tt_add_s8(const int8_t *a, const int8_t *b, int n, float fa, float fb, int32_t a_zero, int32_t b_zero,
               int32_t y_zero, int8_t *y) {
    for (int j = 0; j < n; j++) {
        float ta = (float)(a[j] - a_zero) * fa;
        float tb = (float)(b[j] - b_zero) * fb;
        y[j] = tt_requant_out(ta + tb, y_zero);
    }
}

void tt_avgpool_s8(const int8_t *x, int h, int w, int c, int8_t *y) {
    const int32_t n = h * w;
    for (int ch = 0; ch < c; ch++) {
        int32_t s = 0;
        for (int j = 0; j < n; j++) s += x[(size_t)j * c + ch];
        int32_t q = s / n, r = s - q * n;
        if (r < 0) { /* floor division */
            q -= 1;
            r += n;
        }
        if (2 * r > n || (2 * r == n && (q & 1))) q += 1;
        y[ch] = (int8_t)q;
    }
}

void tt_slice_channels_s8(const int8_t *x, int h, int w, int c, int k, int8_t *y) {
    const int n = h * w;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < k; i++) y[(size_t)j * k + i] = x[(size_t)j * c + i];
}
