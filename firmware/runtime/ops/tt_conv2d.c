/* conv2d forward: regular k x k, pointwise 1x1 (and the classifier), depthwise; portable C + DSP fast paths
 * (tinytrain/ops/conv2d; docs/numerics.md, "Integer forward"). Compiled through tt_forward.c. */
#include "tt_dot2x2.h"
#include "tt_dsp.h"
#include "tt_dw_plane.h"
#include "tt_kernels.h"
#include "tt_math.h"

static inline int out_size(int n, int k, int stride, int pad) {
    return (n + 2 * pad - k) / stride + 1;
}

#ifdef TT_USE_DSP
/* ---- 1x1 fast path: two pixels x two outputs per pass over an int16 copy of the two pixels ----
 * The two input pixels are widened once into xb (x - x_zero as SXTB16 halfword pairs, interleaved
 * [p0 (0,2), p0 (1,3), p1 (0,2), p1 (1,3)] per 4 channels; a ci % 4 tail also as a zero-padded last block) and
 * reused for every output pair: tt_pw2x2 (assembly, below) runs the output pairs (dot from zero over 8 channels per
 * iteration, then the four outputs' requantization: QADD bias, VCVT, VMUL, VCVTR, QADD y_zero, SSAT, as
 * tt_requant_dsp); conv1x1_pixels the rest in C (an odd last output, a last row pair whose padded read would leave
 * the weights, a last odd pixel: one pixel x two outputs). Stack: 4 * ceil(ci / 4) words (xb), at most
 * 4 * TT_1X1_MAX_CI = 2 KB; wider layers use the path below. */
#define TT_1X1_MAX_CI 512

#ifdef TT_DOT2X2_ASM
/* The 2 pixels x 2 outputs dot in assembly (GCC's allocation spills on the M4): r0 = px, r1 = xend, r2 = row a,
 * r3 = row b (advanced by the loop; at the end r2 = row a + n, r3 = row b + n), r4..r7 = a00, a01, a10, a11;
 * clobbers r8..r12, lr. 8 channels per iteration, after one 4-channel block when their count is odd: per 8
 * channels 4 LDR (weights), 8 SXTB16, 16 SMLAD, CMP, BNE and the 8 input words. The four accumulators are
 * interleaved (a SMLAD result is 2 cycles away on the Cortex-M7), each SXTB16 is followed by a SMLAD, the second
 * block's weights are loaded under the first block's SMLADs.
 * TT_DUAL_ISSUE (board cflags of a dual-issue core, the Cortex-M7): the inputs as one LDRD (at the loop head,
 * where no SMLAD is ready anyway) and 6 LDR, each LDR issued beside a SMLAD (an LDRD issues alone): 37
 * instructions, about 20.5 cycles per 32 MAC in the M7 model (docs/emulation.md). Otherwise (Cortex-M4: one
 * instruction per cycle, LDRD 3 cycles for 2 words, LDR 2 unless after a load): 4 LDRD, 34 instructions. */
#ifdef TT_DUAL_ISSUE
#define TT_DOT4_ACC \
    "  ldr r9, [r2], #4\n" \
    "  ldr r11, [r3], #4\n" \
    "  ldrd r12, lr, [r0], #16\n" \
    "  sxtb16 r8, r9\n" \
    "  sxtb16 r10, r11\n" \
    "  smlad r4, r12, r8, r4\n" \
    "  sxtb16 r9, r9, ror #8\n" \
    "  smlad r5, r12, r10, r5\n" \
    "  sxtb16 r11, r11, ror #8\n" \
    "  smlad r4, lr, r9, r4\n" \
    "  ldr r12, [r0, #-8]\n" \
    "  smlad r5, lr, r11, r5\n" \
    "  ldr lr, [r0, #-4]\n" \
    "  smlad r6, r12, r8, r6\n" \
    "  smlad r7, r12, r10, r7\n" \
    "  smlad r6, lr, r9, r6\n" \
    "  smlad r7, lr, r11, r7\n"
#else
#define TT_DOT4_ACC \
    "  ldr r9, [r2], #4\n" \
    "  ldr r11, [r3], #4\n" \
    "  ldrd r12, lr, [r0], #16\n" \
    "  sxtb16 r8, r9\n" \
    "  sxtb16 r10, r11\n" \
    "  smlad r4, r12, r8, r4\n" \
    "  sxtb16 r9, r9, ror #8\n" \
    "  smlad r5, r12, r10, r5\n" \
    "  sxtb16 r11, r11, ror #8\n" \
    "  smlad r4, lr, r9, r4\n" \
    "  smlad r5, lr, r11, r5\n" \
    "  ldrd r12, lr, [r0, #-8]\n" \
    "  smlad r6, r12, r8, r6\n" \
    "  smlad r7, r12, r10, r7\n" \
    "  smlad r6, lr, r9, r6\n" \
    "  smlad r7, lr, r11, r7\n"
#endif

/* tt_pw2x2's dot, accumulators from zero: the first 8-channel iteration (or the odd 4-channel block) with SMUAD
 * for each accumulator's first product, then TT_DOT8_LOOP over the rest (also TT_DOT2X2_LOOP's loop). */
#ifdef TT_DUAL_ISSUE
#define TT_DOT8_FIRST \
    "  ldr r9, [r2], #8\n" \
    "  ldr r11, [r3], #8\n" \
    "  ldrd r12, lr, [r0], #32\n" \
    "  sxtb16 r8, r9\n" \
    "  sxtb16 r10, r11\n" \
    "  smuad r4, r12, r8\n" \
    "  sxtb16 r9, r9, ror #8\n" \
    "  smuad r5, r12, r10\n" \
    "  sxtb16 r11, r11, ror #8\n" \
    "  smlad r4, lr, r9, r4\n" \
    "  ldr r12, [r0, #-24]\n" \
    "  smlad r5, lr, r11, r5\n" \
    "  ldr lr, [r0, #-20]\n" \
    "  smuad r6, r12, r8\n" \
    "  ldr r8, [r2, #-4]\n" \
    "  smuad r7, r12, r10\n" \
    "  ldr r10, [r3, #-4]\n" \
    "  smlad r6, lr, r9, r6\n" \
    "  ldr r12, [r0, #-16]\n" \
    "  smlad r7, lr, r11, r7\n" \
    "  sxtb16 r9, r8\n" \
    "  ldr lr, [r0, #-12]\n" \
    "  sxtb16 r11, r10\n" \
    "  smlad r4, r12, r9, r4\n" \
    "  sxtb16 r8, r8, ror #8\n" \
    "  smlad r5, r12, r11, r5\n" \
    "  sxtb16 r10, r10, ror #8\n" \
    "  smlad r4, lr, r8, r4\n" \
    "  ldr r12, [r0, #-8]\n" \
    "  smlad r5, lr, r10, r5\n" \
    "  ldr lr, [r0, #-4]\n" \
    "  smlad r6, r12, r9, r6\n" \
    "  smlad r7, r12, r11, r7\n" \
    "  smlad r6, lr, r8, r6\n" \
    "  smlad r7, lr, r10, r7\n"
#define TT_DOT4_FIRST \
    "  ldr r9, [r2], #4\n" \
    "  ldr r11, [r3], #4\n" \
    "  ldrd r12, lr, [r0], #16\n" \
    "  sxtb16 r8, r9\n" \
    "  sxtb16 r10, r11\n" \
    "  smuad r4, r12, r8\n" \
    "  sxtb16 r9, r9, ror #8\n" \
    "  smuad r5, r12, r10\n" \
    "  sxtb16 r11, r11, ror #8\n" \
    "  smlad r4, lr, r9, r4\n" \
    "  ldr r12, [r0, #-8]\n" \
    "  smlad r5, lr, r11, r5\n" \
    "  ldr lr, [r0, #-4]\n" \
    "  smuad r6, r12, r8\n" \
    "  smuad r7, r12, r10\n" \
    "  smlad r6, lr, r9, r6\n" \
    "  smlad r7, lr, r11, r7\n"
#define TT_DOT8_LOOP \
    "  cmp r0, r1\n" \
    "  beq 2f\n" \
    "1:\n" \
    "  ldr r9, [r2], #8\n" \
    "  ldr r11, [r3], #8\n" \
    "  ldrd r12, lr, [r0], #32\n" \
    "  sxtb16 r8, r9\n" \
    "  sxtb16 r10, r11\n" \
    "  smlad r4, r12, r8, r4\n" \
    "  sxtb16 r9, r9, ror #8\n" \
    "  smlad r5, r12, r10, r5\n" \
    "  sxtb16 r11, r11, ror #8\n" \
    "  smlad r4, lr, r9, r4\n" \
    "  ldr r12, [r0, #-24]\n" \
    "  smlad r5, lr, r11, r5\n" \
    "  ldr lr, [r0, #-20]\n" \
    "  smlad r6, r12, r8, r6\n" \
    "  ldr r8, [r2, #-4]\n" \
    "  smlad r7, r12, r10, r7\n" \
    "  ldr r10, [r3, #-4]\n" \
    "  smlad r6, lr, r9, r6\n" \
    "  ldr r12, [r0, #-16]\n" \
    "  smlad r7, lr, r11, r7\n" \
    "  sxtb16 r9, r8\n" \
    "  ldr lr, [r0, #-12]\n" \
    "  sxtb16 r11, r10\n" \
    "  smlad r4, r12, r9, r4\n" \
    "  sxtb16 r8, r8, ror #8\n" \
    "  smlad r5, r12, r11, r5\n" \
    "  sxtb16 r10, r10, ror #8\n" \
    "  smlad r4, lr, r8, r4\n" \
    "  ldr r12, [r0, #-8]\n" \
    "  smlad r5, lr, r10, r5\n" \
    "  ldr lr, [r0, #-4]\n" \
    "  smlad r6, r12, r9, r6\n" \
    "  smlad r7, r12, r11, r7\n" \
    "  smlad r6, lr, r8, r6\n" \
    "  cmp r0, r1\n" \
    "  smlad r7, lr, r10, r7\n" \
    "  bne 1b\n" \
    "2:\n"
#else
#define TT_DOT8_FIRST \
    "  ldr r9, [r2], #8\n" \
    "  ldr r11, [r3], #8\n" \
    "  ldrd r12, lr, [r0], #32\n" \
    "  sxtb16 r8, r9\n" \
    "  sxtb16 r10, r11\n" \
    "  smuad r4, r12, r8\n" \
    "  sxtb16 r9, r9, ror #8\n" \
    "  smuad r5, r12, r10\n" \
    "  sxtb16 r11, r11, ror #8\n" \
    "  smlad r4, lr, r9, r4\n" \
    "  smlad r5, lr, r11, r5\n" \
    "  ldrd r12, lr, [r0, #-24]\n" \
    "  smuad r6, r12, r8\n" \
    "  smuad r7, r12, r10\n" \
    "  ldr r8, [r2, #-4]\n" \
    "  smlad r6, lr, r9, r6\n" \
    "  ldr r10, [r3, #-4]\n" \
    "  smlad r7, lr, r11, r7\n" \
    "  ldrd r12, lr, [r0, #-16]\n" \
    "  sxtb16 r9, r8\n" \
    "  sxtb16 r11, r10\n" \
    "  smlad r4, r12, r9, r4\n" \
    "  sxtb16 r8, r8, ror #8\n" \
    "  smlad r5, r12, r11, r5\n" \
    "  sxtb16 r10, r10, ror #8\n" \
    "  smlad r4, lr, r8, r4\n" \
    "  smlad r5, lr, r10, r5\n" \
    "  ldrd r12, lr, [r0, #-8]\n" \
    "  smlad r6, r12, r9, r6\n" \
    "  smlad r7, r12, r11, r7\n" \
    "  smlad r6, lr, r8, r6\n" \
    "  smlad r7, lr, r10, r7\n"
#define TT_DOT4_FIRST \
    "  ldr r9, [r2], #4\n" \
    "  ldr r11, [r3], #4\n" \
    "  ldrd r12, lr, [r0], #16\n" \
    "  sxtb16 r8, r9\n" \
    "  sxtb16 r10, r11\n" \
    "  smuad r4, r12, r8\n" \
    "  sxtb16 r9, r9, ror #8\n" \
    "  smuad r5, r12, r10\n" \
    "  sxtb16 r11, r11, ror #8\n" \
    "  smlad r4, lr, r9, r4\n" \
    "  smlad r5, lr, r11, r5\n" \
    "  ldrd r12, lr, [r0, #-8]\n" \
    "  smuad r6, r12, r8\n" \
    "  smuad r7, r12, r10\n" \
    "  smlad r6, lr, r9, r6\n" \
    "  smlad r7, lr, r11, r7\n"
#define TT_DOT8_LOOP \
    "  cmp r0, r1\n" \
    "  beq 2f\n" \
    "1:\n" \
    "  ldr r9, [r2], #8\n" \
    "  ldr r11, [r3], #8\n" \
    "  ldrd r12, lr, [r0], #32\n" \
    "  sxtb16 r8, r9\n" \
    "  sxtb16 r10, r11\n" \
    "  smlad r4, r12, r8, r4\n" \
    "  sxtb16 r9, r9, ror #8\n" \
    "  smlad r5, r12, r10, r5\n" \
    "  sxtb16 r11, r11, ror #8\n" \
    "  smlad r4, lr, r9, r4\n" \
    "  smlad r5, lr, r11, r5\n" \
    "  ldrd r12, lr, [r0, #-24]\n" \
    "  smlad r6, r12, r8, r6\n" \
    "  smlad r7, r12, r10, r7\n" \
    "  ldr r8, [r2, #-4]\n" \
    "  smlad r6, lr, r9, r6\n" \
    "  ldr r10, [r3, #-4]\n" \
    "  smlad r7, lr, r11, r7\n" \
    "  ldrd r12, lr, [r0, #-16]\n" \
    "  sxtb16 r9, r8\n" \
    "  sxtb16 r11, r10\n" \
    "  smlad r4, r12, r9, r4\n" \
    "  sxtb16 r8, r8, ror #8\n" \
    "  smlad r5, r12, r11, r5\n" \
    "  sxtb16 r10, r10, ror #8\n" \
    "  smlad r4, lr, r8, r4\n" \
    "  smlad r5, lr, r10, r5\n" \
    "  ldrd r12, lr, [r0, #-8]\n" \
    "  smlad r6, r12, r9, r6\n" \
    "  smlad r7, r12, r11, r7\n" \
    "  smlad r6, lr, r8, r6\n" \
    "  cmp r0, r1\n" \
    "  smlad r7, lr, r10, r7\n" \
    "  bne 1b\n" \
    "2:\n"
#endif

/* The accumulating dot of tt_dot2x2: the odd 4-channel block (TT_DOT4_ACC) when the channel count is not a
 * multiple of 8, then TT_DOT8_LOOP (the loop tt_pw2x2 runs after its first block too). */
#define TT_DOT2X2_LOOP \
    "  sub r12, r1, r0\n" \
    "  tst r12, #16\n" \
    "  beq 3f\n" \
    TT_DOT4_ACC \
    "3:\n" \
    TT_DOT8_LOOP

/* tt_dot2x2 (tt_dot2x2.h). */
__asm__(
    "  .text\n"
    "  .syntax unified\n"
    "  .thumb\n"
    "  .align 2\n"
    "  .global tt_dot2x2\n"
    "  .type tt_dot2x2, %function\n"
    "  .thumb_func\n"
    "tt_dot2x2:\n"
    "  push {r4-r11, lr}\n"
    "  ldr lr, [sp, #36]\n"
    "  ldm lr, {r4, r5, r6, r7}\n"
    "  add r3, r2, r3\n"
    TT_DOT2X2_LOOP
    "  ldr lr, [sp, #36]\n"
    "  stm lr, {r4, r5, r6, r7}\n"
    "  pop {r4-r11, pc}\n"
    "  .size tt_dot2x2, .-tt_dot2x2\n");

#ifdef TT_PW2X2_ASM
/* The requantization and stores of one output pair (tt_pw2x2, tt_pw2x2_split), in two halves around one
 * instruction of the caller (the next pair's row a into r2): frame at sp as in tt_pw2x2 (bias, m, y0, co, y_zero,
 * skip, y0 end); a00, a01, a10, a11 in r4..r7; clobbers r0, r2, r4..r12, lr (= skip after), s0..s5; leaves r10 =
 * y0 + 2 (stored back with bias + 2, m + 2) and the flags of y0 + 2 == y0 end. Ordered for the Cortex-M7: the
 * four conversion chains interleaved on the FP unit (3-cycle results), the integer work around them. */
#define TT_PW2X2_REQUANT_A \
    "  ldm sp, {r8, r9, r10, r11, r12, lr}\n" \
    "  ldrd r0, r2, [r8], #8\n" \
    "  vldmia r9!, {s0, s1}\n" \
    "  qadd r4, r4, r0\n" \
    "  qadd r5, r5, r2\n" \
    "  qadd r6, r6, r0\n" \
    "  qadd r7, r7, r2\n" \
    "  vmov s2, s3, r4, r5\n" \
    "  add r11, r10, r11\n" \
    "  vmov s4, s5, r6, r7\n"
#define TT_PW2X2_REQUANT_B \
    "  vcvt.f32.s32 s2, s2\n" \
    "  ldr r0, [sp, #24]\n" \
    "  vcvt.f32.s32 s3, s3\n" \
    "  vcvt.f32.s32 s4, s4\n" \
    "  vcvt.f32.s32 s5, s5\n" \
    "  vmul.f32 s2, s2, s0\n" \
    "  vmul.f32 s3, s3, s1\n" \
    "  vmul.f32 s4, s4, s0\n" \
    "  vmul.f32 s5, s5, s1\n" \
    "  vcvtr.s32.f32 s2, s2\n" \
    "  vcvtr.s32.f32 s3, s3\n" \
    "  vcvtr.s32.f32 s4, s4\n" \
    "  vcvtr.s32.f32 s5, s5\n" \
    "  vmov r4, r5, s2, s3\n" \
    "  vmov r6, r7, s4, s5\n" \
    "  qadd r4, r4, r12\n" \
    "  qadd r5, r5, r12\n" \
    "  ssat r4, #8, r4\n" \
    "  ssat r5, #8, r5\n" \
    "  strb r5, [r10, #1]\n" \
    "  qadd r6, r6, r12\n" \
    "  strb r4, [r10], #2\n" \
    "  qadd r7, r7, r12\n" \
    "  ssat r6, #8, r6\n" \
    "  ssat r7, #8, r7\n" \
    "  strb r6, [r11]\n" \
    "  cmp r10, r0\n" \
    "  strb r7, [r11, #1]\n" \
    "  stm sp, {r8, r9, r10}\n"

/* tt_pw2x2 (tt_dot2x2.h): every output pair of a pixel pair, dot and requantization. Frame (sp): bias, m, y0,
 * co, y_zero, skip, y0 end (copied from *st), xb, stride. Two pair loops, chosen once by the parity of the count of
 * 4-channel blocks (even: the first 8 channels peeled, odd: the 4-channel block first), each output pair: the dot
 * from zero (SMUAD first, then TT_DOT8_LOOP), then the 4 outputs requantized together (tt_requant_dsp: QADD bias,
 * VCVT, VMUL, VCVTR, QADD y_zero, SSAT #8, the S-register moves two at a time) and stored (y0[o], y0[o + 1],
 * y1[o], y1[o + 1]; y1 = y0 + co); row a of the next pair is row b's end (r3) + skip (lr). */
__asm__(
    "  .text\n"
    "  .syntax unified\n"
    "  .thumb\n"
    "  .align 2\n"
    "  .global tt_pw2x2\n"
    "  .type tt_pw2x2, %function\n"
    "  .thumb_func\n"
    "tt_pw2x2:\n"
    "  push {r4-r11, lr}\n"
    "  ldr lr, [sp, #36]\n"
    "  sub sp, sp, #36\n"
    "  ldm lr, {r4, r5, r6, r7, r8, r9, r10}\n"
    "  stm sp, {r4, r5, r6, r7, r8, r9, r10}\n"
    "  strd r0, r3, [sp, #28]\n"
    "  sub r12, r1, r0\n"
    "  tst r12, #16\n"
    "  bne 6f\n"
    "5:\n"
    "  add r3, r2, r3\n"
    TT_DOT8_FIRST
    TT_DOT8_LOOP
    TT_PW2X2_REQUANT_A
    "  add r2, r3, lr\n"
    TT_PW2X2_REQUANT_B
    "  ldrd r0, r3, [sp, #28]\n"
    "  bne 5b\n"
    "  b 9f\n"
    "6:\n"
    "  add r3, r2, r3\n"
    TT_DOT4_FIRST
    TT_DOT8_LOOP
    TT_PW2X2_REQUANT_A
    "  add r2, r3, lr\n"
    TT_PW2X2_REQUANT_B
    "  ldrd r0, r3, [sp, #28]\n"
    "  bne 6b\n"
    "9:\n"
    "  add sp, sp, #36\n"
    "  pop {r4-r11, pc}\n"
    "  .size tt_pw2x2, .-tt_pw2x2\n");

/* tt_pw2x2_split (tt_dot2x2.h): tt_pw2x2 over two parts (the split 1x1's SRAM rows over xa, then its flash rows
 * over xr) into the same accumulators. Frame (sp): bias, m, y0, co, y_zero, skip (0), y0 end, xa, k, xr, xr end,
 * flash row of the pair, kr, xa end, SRAM row of the next pair. */
__asm__(
    "  .text\n"
    "  .syntax unified\n"
    "  .thumb\n"
    "  .align 2\n"
    "  .global tt_pw2x2_split\n"
    "  .type tt_pw2x2_split, %function\n"
    "  .thumb_func\n"
    "tt_pw2x2_split:\n"
    "  push {r4-r11, lr}\n"
    "  ldr lr, [sp, #36]\n"
    "  sub sp, sp, #60\n"
    "  ldm lr!, {r4, r5, r6, r7, r8, r9, r10}\n"
    "  stm sp, {r4, r5, r6, r7, r8, r9, r10}\n"
    "  ldm lr, {r4, r5, r6, r7}\n"
    "  add r8, sp, #36\n"
    "  stm r8, {r4, r5, r6, r7}\n"
    "  strd r0, r3, [sp, #28]\n"
    "  str r1, [sp, #52]\n"
    "5:\n"
    "  add r3, r2, r3\n"
    "  movs r4, #0\n"
    "  movs r5, #0\n"
    "  movs r6, #0\n"
    "  movs r7, #0\n"
    TT_DOT2X2_LOOP
    "  str r3, [sp, #56]\n"
    "  ldrd r0, r1, [sp, #36]\n"
    "  ldrd r2, r3, [sp, #44]\n"
    "  add r3, r2, r3\n"
    TT_DOT2X2_LOOP
    "  str r3, [sp, #44]\n"
    TT_PW2X2_REQUANT_A
    "  ldr r2, [sp, #56]\n"
    TT_PW2X2_REQUANT_B
    "  ldrd r0, r3, [sp, #28]\n"
    "  ldr r1, [sp, #52]\n"
    "  bne 5b\n"
    "  add sp, sp, #60\n"
    "  pop {r4-r11, pc}\n"
    "  .size tt_pw2x2_split, .-tt_pw2x2_split\n");
#endif
#endif

/* A pixel pair's first na outputs through tt_pw2x2 (over the padded last block of xb; yp = the pair's outputs, o0 =
 * the first output left to conv1x1_pixels); without it, every output in C. */
#ifdef TT_PW2X2_ASM
#define PW2X2_SETUP(n)                                                                                           \
    const int na = tt_pw2x2_outputs(n, co), nb = ((n) + 3) >> 2;                                                \
    tt_pw2x2_out st = {bias, m, y, co, y_zero, (n) - 4 * nb, y};
#define PW2X2_PAIR(n)                                                                                            \
    if (two && na) {                                                                                             \
        st.y0 = yp;                                                                                              \
        st.y0_end = yp + na;                                                                                     \
        tt_pw2x2(xb, xb + 4 * nb, wt, n, &st);                                                                   \
        o0 = na;                                                                                                 \
    }
#else
#define PW2X2_SETUP(n)
#define PW2X2_PAIR(n)
#endif

/* Outputs o0.. (o0 even) of one pixel pair (two = 0: one pixel) from the widened inputs xb / tails t0, t1. */
static __attribute__((noinline)) void conv1x1_pixels(const uint32_t *xb, int nq, const int32_t *t0,
                                                     const int32_t *t1, int two, const int8_t *wt, int ci, int co,
                                                     const int32_t *bias, const float *m, int32_t y_zero,
                                                     int8_t *y0, int o0) {
    const int tl = ci & 3;
    const uint32_t *const xend = xb + 4 * nq;
    int8_t *y1 = y0 + co;
    for (int o = o0; o < co; o += 2) {
        const int8_t *pa = wt + (size_t)o * ci;
        const int wb = o + 1 < co ? ci : 0; /* odd co: the last output twice, stored once */
        const int32_t ba = bias[o], bb = bias[o + 1 < co ? o + 1 : o];
        int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
        const uint32_t *px = xb;
        if (two) {
            int32_t acc[4] = {a00, a01, a10, a11};
            tt_dot2x2(px, xend, pa, wb, acc);
            pa += 4 * nq;
            a00 = acc[0];
            a01 = acc[1];
            a10 = acc[2];
            a11 = acc[3];
        } else {
#pragma GCC unroll 2
            for (; px < xend; px += 4, pa += 4) {
                const uint32_t u = tt_load32(pa), v = tt_load32(pa + wb);
                a00 = __smlad(px[0], __sxtb16(u), a00);
                a00 = __smlad(px[1], tt_sxtb16_ror8(u), a00);
                a01 = __smlad(px[0], __sxtb16(v), a01);
                a01 = __smlad(px[1], tt_sxtb16_ror8(v), a01);
            }
        }
        for (int t = 0; t < tl; t++) {
            a00 += t0[t] * pa[t];
            a01 += t0[t] * pa[wb + t];
            a10 += t1[t] * pa[t];
            a11 += t1[t] * pa[wb + t];
        }
        const float ma = m[o];
        y0[o] = tt_requant_dsp(a00, ba, ma, y_zero);
        if (two) y1[o] = tt_requant_dsp(a10, ba, ma, y_zero);
        if (o + 1 < co) {
            const float mb = m[o + 1];
            y0[o + 1] = tt_requant_dsp(a01, bb, mb, y_zero);
            if (two) y1[o + 1] = tt_requant_dsp(a11, bb, mb, y_zero);
        }
    }
}

static __attribute__((noinline)) void conv1x1_fast(const int8_t *x, int np, int ci, const int8_t *wt, int co,
                                                   const int32_t *bias, const float *m, int32_t x_zero,
                                                   int32_t y_zero, int8_t *y) {
    uint32_t xb[4 * ((ci + 3) >> 2) + 2] __attribute__((aligned(8)));
    int32_t t0[3], t1[3];
    PW2X2_SETUP(ci)
    for (int p = 0; p < np; p += 2) {
        const int two = p + 1 < np;
        const int8_t *x0 = x + (size_t)p * ci;
        int8_t *yp = y + (size_t)p * co;
        tt_widen_pair(x0, two ? x0 + ci : x0, ci, x_zero, xb, t0, t1);
        int o0 = 0;
        PW2X2_PAIR(ci)
        if (o0 < co) conv1x1_pixels(xb, ci >> 2, t0, t1, two, wt, ci, co, bias, m, y_zero, yp, o0);
    }
}

/* ---- regular k x k conv with a short receptive field (the stem: 3x3x3 = 27): im2col, then the 1x1 path ----
 * Per output pixel pair, the kh*kw*ci inputs of each pixel (OHWI order, x_zero for padded taps) are gathered
 * into col, widened like the 1x1 inputs and dotted with each output's weight row [kh][kw][ci] by
 * tt_pw2x2 / conv1x1_pixels. Stack: 2 * K bytes (col) + 4 * ceil(K / 4) words (xb), K = kh*kw*ci <=
 * TT_IM2COL_MAX_K = 256: 1.5 KB. */
#define TT_IM2COL_MAX_K 256

/* n bytes from s to d (no overlap): word copies (unaligned LDR / STR on the device), then the bytes left; short rows
 * (the stem's kw * ci = 9) cost less than a call to memcpy. */
static inline void copy_row(int8_t *d, const int8_t *s, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t v = tt_load32(s + i);
        __builtin_memcpy(d + i, &v, 4);
    }
    for (; i < n; i++) d[i] = s[i];
}

static inline void im2col_gather(const int8_t *x, int h, int w, int ci, int kh, int kw, int ih0, int iw0,
                                 int8_t x_zero, int8_t *col) {
    const int row = kw * ci;
    for (int a = 0; a < kh; a++, col += row) {
        const int ih = ih0 + a;
        if (ih < 0 || ih >= h) {
            __builtin_memset(col, x_zero, (size_t)row);
        } else if (iw0 >= 0 && iw0 + kw <= w) {
            copy_row(col, x + ((size_t)ih * w + iw0) * ci, row);
        } else {
            for (int b = 0; b < kw; b++) {
                const int iw = iw0 + b;
                if (iw < 0 || iw >= w) __builtin_memset(col + b * ci, x_zero, (size_t)ci);
                else copy_row(col + b * ci, x + ((size_t)ih * w + iw) * ci, ci);
            }
        }
    }
}

static __attribute__((noinline)) void conv_im2col(const int8_t *x, int h, int w, int ci, const int8_t *wt, int co,
                                                  int kh, int kw, const int32_t *bias, const float *m,
                                                  int32_t x_zero, int32_t y_zero, int stride, int pad, int ho,
                                                  int wo, int8_t *y) {
    const int K = kh * kw * ci;
    int8_t col[2 * K];
    uint32_t xb[4 * ((K + 3) >> 2) + 2] __attribute__((aligned(8)));
    int32_t t0[3], t1[3];
    const int np = ho * wo;
    PW2X2_SETUP(K)
    for (int p = 0; p < np; p += 2) {
        const int two = p + 1 < np;
        im2col_gather(x, h, w, ci, kh, kw, (p / wo) * stride - pad, (p % wo) * stride - pad, (int8_t)x_zero, col);
        if (two)
            im2col_gather(x, h, w, ci, kh, kw, ((p + 1) / wo) * stride - pad, ((p + 1) % wo) * stride - pad,
                          (int8_t)x_zero, col + K);
        int8_t *yp = y + (size_t)p * co;
        tt_widen_pair(col, two ? col + K : col, K, x_zero, xb, t0, t1);
        int o0 = 0;
        PW2X2_PAIR(K)
        if (o0 < co) conv1x1_pixels(xb, K >> 2, t0, t1, two, wt, K, co, bias, m, y_zero, yp, o0);
    }
}
#endif

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
                y[(size_t)q * co + o] = tt_requant_acc(a00 - sa, bias[o], m[o], y_zero);
                y[(size_t)q * co + o + 1] = tt_requant_acc(a01 - sb, bias[o + 1], m[o + 1], y_zero);
                y[(size_t)(q + 1) * co + o] = tt_requant_acc(a10 - sa, bias[o], m[o], y_zero);
                y[(size_t)(q + 1) * co + o + 1] = tt_requant_acc(a11 - sb, bias[o + 1], m[o + 1], y_zero);
            }
        }
        for (; o < co; o++) { /* odd last output */
            const int8_t *wa = wt + (size_t)o * ci;
            for (int q = 0; q < np2; q++) {
                const int8_t *xp = x + (size_t)q * ci;
                int32_t acc = 0;
                for (int i = 0; i < ci; i++) acc += (xp[i] - x_zero) * wa[i];
                y[(size_t)q * co + o] = tt_requant_acc(acc, bias[o], m[o], y_zero);
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
            y[(size_t)p * co + o] = tt_requant_acc(acc, bias[o], m[o], y_zero);
        }
    }
}

void tt_conv2d_s8(const int8_t *x, int h, int w, int ci, const int8_t *wt, int co, int kh, int kw,
                  const int32_t *bias, const float *m, int32_t x_zero, int32_t y_zero, int stride, int pad,
                  int8_t *y) {
    if (kh == 1 && kw == 1 && stride == 1 && pad == 0) {
#ifdef TT_USE_DSP
        if (ci <= TT_1X1_MAX_CI) {
            conv1x1_fast(x, h * w, ci, wt, co, bias, m, x_zero, y_zero, y);
            return;
        }
#endif
        conv1x1_s8(x, h * w, ci, wt, co, bias, m, x_zero, y_zero, y);
        return;
    }
    const int ho = out_size(h, kh, stride, pad), wo = out_size(w, kw, stride, pad);
#ifdef TT_USE_DSP
    if (kh * kw * ci <= TT_IM2COL_MAX_K && ho > 0 && wo > 0) {
        conv_im2col(x, h, w, ci, wt, co, kh, kw, bias, m, x_zero, y_zero, stride, pad, ho, wo, y);
        return;
    }
#endif
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
                y[((size_t)oh * wo + ow) * co + o] = tt_requant_acc(acc, bias[o], m[o], y_zero);
            }
        }
    }
}

#ifdef TT_USE_DSP
/* ---- depthwise fast path: one channel at a time through a small int16 plane (tt_dw_plane.h) ----
 * Per strip of output rows and channel: the rows the strip reads into the plane, then the plane function of
 * (k, stride). */
TT_DW_PLANE_FN(dw_plane_3_1, 3, 1)
TT_DW_PLANE_FN(dw_plane_5_1, 5, 1)
TT_DW_PLANE_FN(dw_plane_7_1, 7, 1)
TT_DW_PLANE_FN(dw_plane_3_2, 3, 2)
TT_DW_PLANE_FN(dw_plane_5_2, 5, 2)
TT_DW_PLANE_FN(dw_plane_7_2, 7, 2)
TT_DW_FILL_FN(dw_fill)
TT_DW3_PLANE_FN(dw3_plane)
TT_DW_FILL4_FN(dw_fill4)

/* 3x3 stride 1 (pad 0..2): strips of output rows; per strip, the rows it reads of four channels at once into four
 * planes (tt_dw_fill4; one plane for a channel tail, or when four would hold fewer than 2 output rows; stack:
 * tt_dw3_layout), then the 3x3 plane function of the group. Rows outside the image are zero rows of the plane: zeroed once, and
 * again per strip when there are several (another strip wrote image rows there). */
static __attribute__((noinline)) int dw3s1_fast(const int8_t *x, int h, int w, int c, const int8_t *wt,
                                                const int32_t *bias, const float *m, int32_t x_zero,
                                                int32_t y_zero, int pad, int8_t *y) {
    if (pad < 0 || pad > 2) return 0;
    const int ho = h + 2 * pad - 2, wo = w + 2 * pad - 2;
    if (ho <= 0 || wo <= 0) return 0;
    const int bw = ((wo + 1) & ~1) + 2; /* even: columns 0 .. wo + 2 (a 2-block past an odd wo) */
    int g, psz;
    const int rs = tt_dw3_layout(ho, bw, c, &g, &psz);
    if (rs == 0) return 0; /* too wide: generic path */
    int16_t buf[g * psz] __attribute__((aligned(4)));
    __builtin_memset(buf, 0, sizeof buf);
    uint32_t prm[4][TT_DW3_PRM_WORDS] __attribute__((aligned(8)));
    for (int r0 = 0; r0 < ho; r0 += rs) {
        const int r1 = r0 + rs < ho ? r0 + rs : ho;
        const int ih_s = r0 - pad, ih_e = r1 + 2 - pad; /* rows [ih_s, ih_e) */
        const int t0 = ih_s < 0 ? 0 : ih_s, t1 = ih_e > h ? h : ih_e;
        for (int ch = 0; ch < c;) {
            const int gg = g == 4 && ch + 4 <= c ? 4 : 1;
            if (rs < ho) { /* several strips: the rows outside the image may hold another strip's rows */
                tt_dw_zero_rows(buf, gg, psz, bw, 0, t0 - ih_s);
                tt_dw_zero_rows(buf, gg, psz, bw, t1 - ih_s, ih_e - ih_s);
            }
            if (gg == 4) dw_fill4(buf, psz, bw, pad, ih_s, t0, t1, x + ch, w, c, w, x_zero);
            else dw_fill(buf, bw, pad, ih_s, t0, t1, x + ch, w, c, w, x_zero);
            if (gg == 4) tt_dw3_prm4(wt, c, ch, y_zero, bias, m, prm);
            else tt_dw3_prm(wt, c, ch, y_zero, bias[ch], m[ch], prm[0]);
            dw3_plane(buf, psz, gg, bw, ih_s, r0, r1, wo, c, pad, prm, y + ch);
            ch += gg;
        }
    }
    return 1;
}

static __attribute__((noinline)) int dwconv_fast(const int8_t *x, int h, int w, int c, const int8_t *wt, int k, const int32_t *bias,
                       const float *m, int32_t x_zero, int32_t y_zero, int stride, int pad, int8_t *y) {
    if ((k != 3 && k != 5 && k != 7) || (stride != 1 && stride != 2) || pad < 0 || pad >= k) return 0;
    const int ho = out_size(h, k, stride, pad), wo = out_size(w, k, stride, pad);
    if (ho <= 0 || wo <= 0) return 0;
    const int wo2 = (wo + 1) & ~1;
    const int ncol = stride == 1 ? wo2 + k - 1 : 2 * wo2 + k - 1; /* buffer columns read, from iw = -pad */
    const int bw = (ncol + 1) & ~1;                               /* even: rows stay word aligned */
    if (TT_DW_BUF_HALFWORDS / bw < k) return 0;                   /* too wide: generic path */
    int rs = (TT_DW_BUF_HALFWORDS / bw - k) / stride + 1;         /* output rows per strip */
    if (rs > ho) rs = ho;
    const int nb = (rs - 1) * stride + k;
    int16_t buf[nb * bw] __attribute__((aligned(4)));
    __builtin_memset(buf, 0, sizeof buf);
    const int iw_hi = w < ncol - pad ? w : ncol - pad; /* image columns the outputs read */
    uint32_t wp[TT_DW_PACKED_WORDS];
    for (int r0 = 0; r0 < ho; r0 += rs) {
        const int r1 = r0 + rs < ho ? r0 + rs : ho;
        const int ih_s = r0 * stride - pad, ih_e = (r1 - 1) * stride - pad + k; /* rows [ih_s, ih_e) */
        const int t0 = ih_s < 0 ? 0 : ih_s, t1 = ih_e > h ? h : ih_e;
        for (int ch = 0; ch < c; ch++) {
            dw_fill(buf, bw, pad, ih_s, t0, t1, x + ch, w, c, iw_hi, x_zero);
            tt_dw_pack_taps(wt, k, c, ch, wp);
            const int32_t b = bias[ch];
            const float mm = m[ch];
            const tt_dw_plane_fn plane =
                stride == 1 ? (k == 3 ? dw_plane_3_1 : k == 5 ? dw_plane_5_1 : dw_plane_7_1)
                            : (k == 3 ? dw_plane_3_2 : k == 5 ? dw_plane_5_2 : dw_plane_7_2);
            plane(buf, bw, ih_s, r0, r1, h, wo, ch, c, pad, wp, b, mm, y_zero, y);
        }
    }
    return 1;
}
#endif

void tt_dwconv2d_s8(const int8_t *x, int h, int w, int c, const int8_t *wt, int kh, int kw, const int32_t *bias,
                    const float *m, int32_t x_zero, int32_t y_zero, int stride, int pad, int8_t *y) {
#ifdef TT_USE_DSP
    if (kh == 3 && kw == 3 && stride == 1 && dw3s1_fast(x, h, w, c, wt, bias, m, x_zero, y_zero, pad, y)) return;
    if (kh == kw && dwconv_fast(x, h, w, c, wt, kh, bias, m, x_zero, y_zero, stride, pad, y)) return;
#endif
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
                yp[ch] = tt_requant_acc(s0, bias[ch], m[ch], y_zero);
                yp[ch + 1] = tt_requant_acc(s1, bias[ch + 1], m[ch + 1], y_zero);
                yp[ch + 2] = tt_requant_acc(s2, bias[ch + 2], m[ch + 2], y_zero);
                yp[ch + 3] = tt_requant_acc(s3, bias[ch + 3], m[ch + 3], y_zero);
            }
#endif
            for (; ch < c; ch++) {
                int32_t acc = 0;
                for (int a = a0; a < a1; a++) {
                    const int8_t *xr = x + ((size_t)(ih0 + a) * w + iw0) * c + ch;
                    const int8_t *wr = wt + ((size_t)a * kw) * c + ch;
                    for (int b = b0; b < b1; b++) acc += (xr[(size_t)b * c] - x_zero) * wr[(size_t)b * c];
                }
                yp[ch] = tt_requant_acc(acc, bias[ch], m[ch], y_zero);
            }
        }
    }
}
