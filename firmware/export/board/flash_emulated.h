/* The emulated boards' flash driver for tinytrain_flash (flash_emulated.c): two slots in a host file. */
#ifndef FLASH_EMULATED_H
#define FLASH_EMULATED_H

#include <stdint.h>

#include "tinytrain.h"

#define EMU_PROGRAM_BYTES 8u /* flash word: a double word, as on STM32L4/G4/F7 (64-bit programming) */
#define EMU_SECTOR_BYTES 4096u /* erase unit of the emulated part */
/* One slot: the header + state rounded up to whole sectors. */
#define EMU_SLOT_BYTES \
  ((TINYTRAIN_SLOT_MIN_BYTES + EMU_SECTOR_BYTES - 1u) / EMU_SECTOR_BYTES * EMU_SECTOR_BYTES)

typedef struct {
  int fd;              /* semihosting handle of the backing file */
  uint32_t slot_bytes;
  int created;         /* 1: the file did not exist (or had another size) and was created erased */
  uint32_t erases;     /* slot erases since open */
  uint32_t programmed; /* bytes programmed since open */
} emu_flash;

/* Opens (or creates, erased) the backing file and fills in `f`; 0 on success. */
int emu_flash_open(emu_flash *e, tinytrain_flash *f, uint32_t slot_bytes);
void emu_flash_close(emu_flash *e);

#endif
