/* matmult.c: the second hold-out workload of the cycle model (emulation/holdout, docs/emulation.md "Hold-out").
 *
 * Written for tinytrain: the computation of Embench IoT 1.0's `matmult-int` benchmark, whose run time on a
 * real Cortex-M4 Embench publishes: two 20x20 matrices of longs filled from the generator
 * seed = (seed * 133 + 81) % 8095 (seed 0; at start-up, outside the timed phase); per repetition, copy both
 * into working arrays with the C library's memcpy and multiply them into a third (8000 multiply-adds).
 * The product is checked against its first element in Embench's expected matrix (291018000) and against
 * the checksum of a host computation (PRODUCT_CHECKSUM; tests/emulation/test_holdout.py recomputes it).
 * REPS (-DREPS=N) repetitions run inside the phase "holdout". */
#include <stdint.h>
#include <string.h>

#include "tt_board.h"

#define N 20
#define PRODUCT_CHECKSUM 2728592564u /* sum = sum * 31 + element, row by row, modulo 2^32 */
typedef long matrix[N][N];

static int seed;
matrix a_ref, a, b_ref, b, res;

static int next_value(void) {
  seed = ((seed * 133) + 81) % 8095;
  return seed;
}

void multiply(matrix x, matrix y, matrix out) {
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) {
      out[i][j] = 0;
      for (int k = 0; k < N; k++) out[i][j] += x[i][k] * y[k][j];
    }
}

void __attribute__((noinline)) run_test(matrix x, matrix y, matrix out) { multiply(x, y, out); }

static int __attribute__((noinline)) body(int reps) {
  for (int r = 0; r < reps; r++) {
    memcpy(a, a_ref, sizeof a);
    memcpy(b, b_ref, sizeof b);
    run_test(a, b, res);
  }
  return 0;
}

int main(void) {
  tt_board_init();
  seed = 0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) a_ref[i][j] = next_value();
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) b_ref[i][j] = next_value();
  tt_phase_begin("holdout");
  body(REPS);
  tt_phase_end("holdout");
  uint32_t sum = 0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) sum = sum * 31u + (uint32_t)res[i][j];
  tt_printf("holdout matmult: reps %d first %ld checksum %lu\n", REPS, res[0][0], (unsigned long)sum);
  return res[0][0] == 291018000L && sum == PRODUCT_CHECKSUM ? 0 : 1;
}
