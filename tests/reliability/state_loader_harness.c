/* Host harness of the exported library's learned-state slots (firmware/export/tinytrain.c), built with the
 * library's own sources under AddressSanitizer + UndefinedBehaviorSanitizer by
 * tests/reliability/test_state_loader_asan.py.
 *
 *   harness save OUT          init, a training step, save, another step, save: both slots valid -> OUT
 *   harness load IMG...       per image: init (built-in weights), load, then one line
 *                             "<rc> <slot 0 verdict> <slot 1 verdict> <crc32 of the live state>"
 *
 * The flash is two slots of SLOT_BYTES in memory (read / erase / program as a driver does them); an image
 * is both slots, 2 x SLOT_BYTES bytes. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tinytrain.h"

#ifndef SLOT_BYTES
#error "define SLOT_BYTES"
#endif

static uint8_t flash[2][SLOT_BYTES];
static uint8_t arena[TINYTRAIN_ARENA_BYTES] __attribute__((aligned(TINYTRAIN_ARENA_ALIGN)));
static int8_t input[TINYTRAIN_INPUT_BYTES];

static int f_read(void *ctx, int slot, uint32_t off, void *dst, uint32_t n) {
  (void)ctx;
  if (slot < 0 || slot > 1 || off > SLOT_BYTES || n > SLOT_BYTES - off) return 1;
  memcpy(dst, &flash[slot][off], n);
  return 0;
}

static int f_erase(void *ctx, int slot) {
  (void)ctx;
  if (slot < 0 || slot > 1) return 1;
  memset(flash[slot], 0xFF, SLOT_BYTES);
  return 0;
}

static int f_program(void *ctx, int slot, uint32_t off, const void *src, uint32_t n) {
  (void)ctx;
  if (slot < 0 || slot > 1 || off > SLOT_BYTES || n > SLOT_BYTES - off) return 1;
  const uint8_t *s = src;
  for (uint32_t i = 0; i < n; i++) flash[slot][off + i] &= s[i]; /* NOR flash: program clears bits */
  return 0;
}

static const tinytrain_flash drv = {SLOT_BYTES, 8u, f_read, f_erase, f_program, 0};

static uint32_t state_crc(void) {
  uint32_t crc = 0, n;
  const void *p;
  for (uint32_t i = 0; tinytrain_state_region(i, &p, &n) == 0; i++) crc = tinytrain_crc32(crc, p, n);
  return crc;
}

static int step(int label) {
  float loss;
  for (uint32_t i = 0; i < TINYTRAIN_INPUT_BYTES; i++) input[i] = (int8_t)((i * 37u + (uint32_t)label) & 0x7F);
  return tinytrain_train_step(input, label, &loss);
}

int main(int argc, char **argv) {
  if (argc >= 3 && strcmp(argv[1], "save") == 0) {
    memset(flash, 0xFF, sizeof flash);
    if (tinytrain_init(arena, sizeof arena) || step(0) || tinytrain_save(&drv) || step(1) ||
        tinytrain_save(&drv))
      return 3;
    FILE *f = fopen(argv[2], "wb");
    if (!f || fwrite(flash, 1, sizeof flash, f) != sizeof flash || fclose(f)) return 3;
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "load") == 0) {
    for (int a = 2; a < argc; a++) {
      FILE *f = fopen(argv[a], "rb");
      if (!f || fread(flash, 1, sizeof flash, f) != sizeof flash) return 3;
      fclose(f);
      if (tinytrain_init(arena, sizeof arena)) return 3;
      int rc = tinytrain_load(&drv);
      uint32_t seq;
      printf("%d %d %d %08lx\n", rc, tinytrain_slot_status(0, &seq), tinytrain_slot_status(1, &seq),
             (unsigned long)state_crc());
    }
    return 0;
  }
  fprintf(stderr, "usage: harness save OUT | harness load IMG...\n");
  return 2;
}
