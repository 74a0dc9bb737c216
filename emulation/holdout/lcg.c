/* lcg.c: the pseudo-random byte source of the crc32 hold-out (emulation/holdout), in its own translation unit
 * so the benchmark calls it like a library function: a 31-bit linear congruential generator (the classic
 * ANSI C example constants 1103515245 and 12345), returning bits 16..30. Written for tinytrain. */
#include "holdout.h"

static long int state = 0;

int ho_rand(void) {
  state = (state * 1103515245L + 12345) & ((1UL << 31) - 1);
  return (int)(state >> 16);
}

void ho_srand(unsigned int seed) { state = (long int)seed; }
