/* The flash driver of the emulated boards (QEMU mps2): the two slots live in a file on the host, read and
 * written through semihosting, so the learned state survives an emulator restart like flash survives a
 * power cycle.
 *
 * What is emulated and what is not (docs/export.md, "How the emulation backs the flash"):
 * - NOR semantics: erase sets the slot to 0xFF; program refuses (error) any byte that is not erased, like the
 *   STM32 PGSERR / PGPERR checks.
 * - Write granularity: programming goes to the file EMU_PROGRAM_BYTES (8) bytes at a time and erasing
 *   EMU_ERASE_CHUNK (256) bytes at a time, one semihosting call each; each call is one guest instruction
 *   (bkpt), so a power cut (the emulator stopped at an instruction count) lands between two of them. A cut
 *   leaves the slot partly erased or partly programmed at that granularity; real flash can also tear inside a
 *   word, which the CRC-32 catches the same way (bit flips are tested separately).
 * - Timing: no erase/program latency is modelled.
 * The file is `flash.bin` in QEMU's working directory (EMU_FLASH_FILE to change it), 2 x slot_bytes long,
 * created erased on first use. */
#include "flash_emulated.h"

#include "tt_board.h"

#ifndef EMU_FLASH_FILE
#define EMU_FLASH_FILE "flash.bin"
#endif
#define SH_RPLUSB 3 /* semihosting open mode "r+b" */
#define SH_WPLUSB 7 /* "w+b": create or truncate */
#define EMU_ERASE_CHUNK 256u

static int emu_seek(emu_flash *e, int slot, uint32_t offset) {
  return tt_sh_seek(e->fd, (long)((uint32_t)slot * e->slot_bytes + offset)) == 0 ? 0 : -1;
}

static int emu_read(void *ctx, int slot, uint32_t offset, void *dst, uint32_t n) {
  emu_flash *e = (emu_flash *)ctx;
  if (slot < 0 || slot > 1 || offset > e->slot_bytes || n > e->slot_bytes - offset) return -1;
  if (emu_seek(e, slot, offset)) return -1;
  return tt_sh_read(e->fd, dst, n) == (int)n ? 0 : -1;
}

static int fill_erased(emu_flash *e, int slot) {
  static const uint8_t ff[EMU_ERASE_CHUNK] = {[0 ... EMU_ERASE_CHUNK - 1] = 0xFFu};
  if (emu_seek(e, slot, 0)) return -1;
  for (uint32_t off = 0; off < e->slot_bytes; off += EMU_ERASE_CHUNK) {
    uint32_t n = e->slot_bytes - off < EMU_ERASE_CHUNK ? e->slot_bytes - off : EMU_ERASE_CHUNK;
    if (tt_sh_write(e->fd, ff, n) != (int)n) return -1;
  }
  return 0;
}

/* Only tinytrain_save erases (`tinytrain powercut` starts its cut window at this function's first call). */
static int emu_erase(void *ctx, int slot) {
  emu_flash *e = (emu_flash *)ctx;
  if (slot < 0 || slot > 1) return -1;
  e->erases++;
  return fill_erased(e, slot);
}

static int emu_program(void *ctx, int slot, uint32_t offset, const void *src, uint32_t n) {
  emu_flash *e = (emu_flash *)ctx;
  uint8_t cur[64];
  const uint8_t *s = (const uint8_t *)src;
  if (slot < 0 || slot > 1 || offset % EMU_PROGRAM_BYTES || n % EMU_PROGRAM_BYTES) return -1;
  if (offset > e->slot_bytes || n > e->slot_bytes - offset) return -1;
  while (n) {
    uint32_t m = n < sizeof cur ? n : (uint32_t)sizeof cur;
    if (emu_read(ctx, slot, offset, cur, m)) return -1;
    for (uint32_t k = 0; k < m; k++)
      if (cur[k] != 0xFFu) return -2; /* programming a byte that is not erased */
    if (emu_seek(e, slot, offset)) return -1;
    for (uint32_t k = 0; k < m; k += EMU_PROGRAM_BYTES) { /* one flash word at a time */
      if (tt_sh_write(e->fd, s + k, EMU_PROGRAM_BYTES) != (int)EMU_PROGRAM_BYTES) return -1;
      e->programmed += EMU_PROGRAM_BYTES;
    }
    s += m, offset += m, n -= m;
  }
  return 0;
}

int emu_flash_open(emu_flash *e, tinytrain_flash *f, uint32_t slot_bytes) {
  e->slot_bytes = slot_bytes;
  e->created = 0;
  e->erases = 0;
  e->programmed = 0;
  e->fd = tt_sh_open(EMU_FLASH_FILE, SH_RPLUSB);
  if (e->fd >= 0 && tt_sh_flen(e->fd) != (long)(2u * slot_bytes)) {
    tt_sh_close(e->fd); /* another geometry: start from an erased part */
    e->fd = -1;
  }
  if (e->fd < 0) {
    e->fd = tt_sh_open(EMU_FLASH_FILE, SH_WPLUSB);
    if (e->fd < 0) return -1;
    e->created = 1;
    if (fill_erased(e, 0) || fill_erased(e, 1)) return -1;
  }
  f->slot_bytes = slot_bytes;
  f->program_bytes = EMU_PROGRAM_BYTES;
  f->read = emu_read;
  f->erase = emu_erase;
  f->program = emu_program;
  f->ctx = e;
  return 0;
}

void emu_flash_close(emu_flash *e) {
  if (e->fd >= 0) tt_sh_close(e->fd);
  e->fd = -1;
}
