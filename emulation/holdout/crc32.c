/* crc32.c: the hold-out workload of the cycle model (emulation/holdout, docs/emulation.md "Hold-out").
 *
 * Written for tinytrain: the computation of Embench IoT 1.0's `crc32` benchmark, whose run time on a real
 * Cortex-M4 (STM32F4-Discovery at 16 MHz, GCC 9.2 -O2) Embench publishes: per repetition, reset the generator
 * (seed 0) and compute the reflected CRC-32 (polynomial 0xEDB88320, table driven, one byte per step) of 1024
 * pseudo-random bytes. The 256-entry table is computed at start-up (outside the timed phase). The result of
 * the last repetition, modulo 32768, must be 11433 (Embench's own check), so the computation is the same.
 * REPS (-DREPS=N) repetitions run inside the firmware phase "holdout". */
#include <stdint.h>

#include "holdout.h"
#include "tt_board.h"

typedef unsigned char BYTE;
typedef unsigned long DWORD;

static DWORD table[256];

#define UPDATE(octet, crc) (table[((crc) ^ ((BYTE)(octet))) & 0xff] ^ ((crc) >> 8))

static void make_table(void) {
  for (DWORD n = 0; n < 256; n++) {
    DWORD c = n;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320UL ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
}

DWORD crc_of_random_bytes(void) {
  DWORD crc = 0xFFFFFFFFUL;
  for (int i = 0; i < 1024; ++i) crc = UPDATE(ho_rand(), crc);
  return ~crc;
}

static int __attribute__((noinline)) body(int reps) {
  DWORD r = 0;
  for (int i = 0; i < reps; i++) {
    ho_srand(0);
    r = crc_of_random_bytes();
  }
  return (int)(r % 32768);
}

int main(void) {
  tt_board_init();
  make_table();
  tt_phase_begin("holdout");
  int r = body(REPS);
  tt_phase_end("holdout");
  tt_printf("holdout crc32: reps %d result %d (expect 11433)\n", REPS, r);
  return r == 11433 ? 0 : 1;
}
