/* Self-test firmware: checks the board layer and measures the two int8 dot products the training
 * kernels build on (plain C vs SMLAD/SXTB16) and a few fp32 operations, all through the TT protocol.
 *
 * TT_SELFTEST_MODE selects a behaviour for the acceptance tests (robot_tests/):
 *   0 normal; 1 fault (undefined instruction); 2 hang (endless loop); 3 too big (a .bss larger than any
 *   board's SRAM: a link error); 4 exit with status 7; 5 bus fault (load from an unmapped address);
 *   6 semihosting file I/O round trip (reads selftest_in.bin, writes selftest_out.bin);
 *   7 phases: exact phase counts (loops of known instruction count, one with MMIO reads, nested phases). */
#include <arm_acle.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tt_board.h"

#ifndef TT_SELFTEST_MODE
#define TT_SELFTEST_MODE 0
#endif
#define N 1024

static int8_t xa[N], xb[N];
static float fa[N], fb[N];

#if TT_SELFTEST_MODE == 3
static volatile uint8_t too_big[400u * 1024u]; /* more than any board's SRAM */
#endif

__attribute__((noipa)) int32_t dot_s8_scalar(const int8_t *a, const int8_t *b, int n) {
  int32_t acc = 0;
  for (int i = 0; i < n; i++) acc += (int32_t)a[i] * (int32_t)b[i];
  return acc;
}

/* SXTB16 of the word rotated by 8: bytes 1 and 3 sign-extended to two halfwords (one instruction). */
static inline uint32_t sxtb16_ror8(uint32_t x) {
  uint32_t r;
  __asm("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}

/* Two MACs per SMLAD: bytes 0,2 and 1,3 sign-extended to halfword pairs with SXTB16. n % 8 == 0. */
__attribute__((noipa)) int32_t dot_s8_smlad(const int8_t *a, const int8_t *b, int n) {
  int32_t acc = 0;
  for (int i = 0; i < n; i += 8) {
    uint32_t wa0, wb0, wa1, wb1;
    memcpy(&wa0, a + i, 4);
    memcpy(&wb0, b + i, 4);
    memcpy(&wa1, a + i + 4, 4);
    memcpy(&wb1, b + i + 4, 4);
    acc = __smlad(__sxtb16(wa0), __sxtb16(wb0), acc);
    acc = __smlad(sxtb16_ror8(wa0), sxtb16_ror8(wb0), acc);
    acc = __smlad(__sxtb16(wa1), __sxtb16(wb1), acc);
    acc = __smlad(sxtb16_ror8(wa1), sxtb16_ror8(wb1), acc);
  }
  return acc;
}

__attribute__((noipa)) float dot_f32(const float *a, const float *b, int n) {
  float acc = 0.0f;
  for (int i = 0; i < n; i++) acc = fmaf(a[i], b[i], acc);
  return acc;
}

__attribute__((noipa)) float fp_mix(const float *a, int n) {
  float acc = 0.0f;
  for (int i = 0; i < n; i++) acc += sqrtf(a[i] * a[i] + 1.0f) / (1.0f + (float)i);
  return acc;
}

static uint32_t lcg = 12345u;
static uint32_t next_rand(void) {
  lcg = lcg * 1664525u + 1013904223u;
  return lcg >> 8;
}

#if TT_SELFTEST_MODE == 7
/* Phases of known instruction count, written in assembly so the count does not depend on the compiler.
 * Exact count of a phase = from the return of tt_phase_begin to the entry of tt_phase_end:
 *   known_loop: movw (1) + 1000 x (subs, bne) + ldr r0 (1) + bl tt_phase_end (1) = 2003
 *   mmio_loop:  movw, movw, movt (3) + 500 x (adds, ldr from SYST_CVR, subs, bne) + ldr r0, bl (2) = 2005
 * mmio_loop reads a device register in the middle of a block (checks the plugin's counting under -icount). */
__attribute__((used)) const char tt_st_known[] = "known_loop";
__attribute__((used)) const char tt_st_mmio[] = "mmio_loop";

__attribute__((naked, noinline)) void known_loop_phase(void) {
  __asm volatile(
      "push {r4, lr}\n"
      "ldr r0, =tt_st_known\n"
      "bl tt_phase_begin\n"
      "movw r4, #1000\n"
      "1: subs r4, r4, #1\n"
      "bne 1b\n"
      "ldr r0, =tt_st_known\n"
      "bl tt_phase_end\n"
      "pop {r4, pc}\n"
      ".ltorg\n");
}

__attribute__((naked, noinline)) void mmio_loop_phase(void) {
  __asm volatile(
      "push {r4, lr}\n"
      "ldr r0, =tt_st_mmio\n"
      "bl tt_phase_begin\n"
      "movw r4, #500\n"
      "movw r2, #0xE018\n"
      "movt r2, #0xE000\n"
      "1: adds r3, r3, r1\n"
      "ldr r1, [r2]\n"
      "subs r4, r4, #1\n"
      "bne 1b\n"
      "ldr r0, =tt_st_mmio\n"
      "bl tt_phase_end\n"
      "pop {r4, pc}\n"
      ".ltorg\n");
}

static int phases_selftest(void) {
  known_loop_phase();
  mmio_loop_phase();
  tt_phase_begin("outer");
  known_loop_phase();
  tt_puts("text inside a phase\n");
  int32_t r = dot_s8_scalar(xa, xb, N);
  tt_phase_begin("inner");
  float f = dot_f32(fa, fb, N);
  tt_phase_end("inner");
  known_loop_phase();
  tt_phase_end("outer");
  tt_metric_int("dot", r);
  tt_metric_float("dot_f32", f);
  return 0;
}
#endif

#if TT_SELFTEST_MODE == 6
static int file_roundtrip(void) {
  static uint8_t buf[256];
  int fd = tt_sh_open("selftest_in.bin", TT_SH_RB);
  if (fd < 0) return 1;
  long len = tt_sh_flen(fd);
  int got = tt_sh_read(fd, buf, sizeof buf);
  tt_sh_close(fd);
  uint32_t sum = 0;
  for (int i = 0; i < got; i++) {
    sum += buf[i];
    buf[i] = (uint8_t)(buf[i] + 1);
  }
  tt_metric_int("file_len", len);
  tt_metric_int("file_sum", sum);
  fd = tt_sh_open("selftest_out.bin", TT_SH_WB);
  if (fd < 0) return 1;
  int put = tt_sh_write(fd, buf, (size_t)got);
  tt_sh_close(fd);
  return put == got ? 0 : 1;
}
#endif

int main(void) {
  tt_board_init();
  tt_printf("selftest on %s (%lu Hz nominal)\n", tt_board_name(), (unsigned long)tt_board_clock_hz());

#if TT_SELFTEST_MODE == 1
  tt_puts("about to fault\n");
  __builtin_trap();
#elif TT_SELFTEST_MODE == 2
  tt_puts("about to hang\n");
  for (volatile uint32_t i = 0;; i++) {
  }
#elif TT_SELFTEST_MODE == 3
  too_big[next_rand() % sizeof too_big] = 1;
  tt_metric_int("too_big", too_big[0]);
#elif TT_SELFTEST_MODE == 4
  return 7;
#elif TT_SELFTEST_MODE == 5
  tt_puts("about to load from an unmapped address\n");
  tt_metric_int("never", *(volatile uint32_t *)0xE0100000u);
#elif TT_SELFTEST_MODE == 6
  return file_roundtrip();
#endif

  for (int i = 0; i < N; i++) {
    xa[i] = (int8_t)next_rand();
    xb[i] = (int8_t)next_rand();
    fa[i] = (float)((int32_t)(next_rand() & 0xFFFF) - 32768) / 4096.0f;
    fb[i] = (float)((int32_t)(next_rand() & 0xFFFF) - 32768) / 4096.0f;
  }

#if TT_SELFTEST_MODE == 7
  return phases_selftest();
#endif

  tt_phase_begin("dot_s8_scalar");
  int32_t r0 = dot_s8_scalar(xa, xb, N);
  uint64_t n_scalar = tt_phase_end("dot_s8_scalar");

  tt_phase_begin("dot_s8_smlad");
  int32_t r1 = dot_s8_smlad(xa, xb, N);
  uint64_t n_simd = tt_phase_end("dot_s8_smlad");

  tt_phase_begin("fp32");
  float f0 = dot_f32(fa, fb, N);
  float f1 = fp_mix(fa, N);
  tt_phase_end("fp32");

  tt_metric_int("dot_s8_scalar", r0);
  tt_metric_int("dot_s8_smlad", r1);
  tt_emit("{\"ev\":\"metric\",\"name\":\"instr_per_mac_scalar\",\"value\":%.3f}", (double)n_scalar / N);
  tt_emit("{\"ev\":\"metric\",\"name\":\"instr_per_mac_smlad\",\"value\":%.3f}", (double)n_simd / N);
  tt_metric_float("dot_f32", f0);
  tt_metric_float("fp_mix", f1);
  int ok = r0 == r1;
  tt_metric_int("dot_s8_agree", ok);
  return ok ? 0 : 1;
}
