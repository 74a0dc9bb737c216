/* tinytrain_flash on the STM32 HAL: a porting starting point. tinytrain's CI only compiles it against the HAL's
 * flash declarations; it has never run on a part (there is no STM32 hardware or HAL in CI). Written for the
 * STM32F7 (e.g. STM32F746: 1 MB in sectors of 32/128/256 KB) with its sector-erase and word-programming HAL
 * calls; the F4 is the same API. Check against your part:
 *
 *  1. Reserve two flash sectors for the slots (not used by your program: shorten FLASH in your linker
 *     script), each at least TINYTRAIN_SLOT_MIN_BYTES. Set SLOT_A/B_ADDR, SLOT_A/B_SECTOR and SLOT_BYTES below
 *     from your reference manual's sector table (below: the F746's sectors 6 and 7, 256 KB each).
 *  2. VOLTAGE_RANGE_3 (2.7-3.6 V) programs 32 bits at a time; lower supply ranges need byte programming
 *     (FLASH_TYPEPROGRAM_BYTE, program_bytes = 1).
 *  3. On parts with a data cache over flash (F7 AXI with the cache on), invalidate it after erase/program
 *     or read through the ITCM/AXI alias consistently; reads below use memcpy from the memory-mapped slot.
 *  4. Parts that program 64-bit or 256-bit words (L4, G4, H7) need FLASH_TYPEPROGRAM_DOUBLEWORD /
 *     FLASHWORD and program_bytes 8 / 32: tinytrain only programs whole multiples of program_bytes.
 *
 *   tinytrain_flash flash;
 *   stm32_flash_init(&flash);
 *   tinytrain_load(&flash);  ...  tinytrain_save(&flash);
 */
#include <string.h>

#include "stm32f7xx_hal.h" /* your part's HAL header */
#include "tinytrain.h"

#define SLOT_A_ADDR 0x08080000u /* F746: sector 6 */
#define SLOT_B_ADDR 0x080C0000u /* F746: sector 7 */
#define SLOT_A_SECTOR FLASH_SECTOR_6
#define SLOT_B_SECTOR FLASH_SECTOR_7
#define SLOT_BYTES (256u * 1024u)

#if TINYTRAIN_SLOT_MIN_BYTES > SLOT_BYTES
#error "the learned state does not fit one slot: choose larger sectors"
#endif

static uint32_t slot_addr(int slot) { return slot ? SLOT_B_ADDR : SLOT_A_ADDR; }

static int stm32_read(void *ctx, int slot, uint32_t offset, void *dst, uint32_t n) {
  (void)ctx;
  memcpy(dst, (const void *)(uintptr_t)(slot_addr(slot) + offset), n);
  return 0;
}

static int stm32_erase(void *ctx, int slot) {
  (void)ctx;
  FLASH_EraseInitTypeDef e = {0};
  uint32_t bad = 0;
  e.TypeErase = FLASH_TYPEERASE_SECTORS;
  e.Sector = slot ? SLOT_B_SECTOR : SLOT_A_SECTOR;
  e.NbSectors = 1;
  e.VoltageRange = FLASH_VOLTAGE_RANGE_3;
  HAL_FLASH_Unlock();
  HAL_StatusTypeDef st = HAL_FLASHEx_Erase(&e, &bad);
  HAL_FLASH_Lock();
  return st == HAL_OK ? 0 : -1;
}

static int stm32_program(void *ctx, int slot, uint32_t offset, const void *src, uint32_t n) {
  (void)ctx;
  const uint8_t *s = (const uint8_t *)src;
  HAL_StatusTypeDef st = HAL_OK;
  HAL_FLASH_Unlock();
  for (uint32_t k = 0; k < n && st == HAL_OK; k += 4) {
    uint32_t word;
    memcpy(&word, s + k, 4);
    st = HAL_FLASH_Program(FLASH_TYPEPROGRAM_WORD, slot_addr(slot) + offset + k, word);
  }
  HAL_FLASH_Lock();
  return st == HAL_OK ? 0 : -1;
}

void stm32_flash_init(tinytrain_flash *f) {
  f->slot_bytes = SLOT_BYTES;
  f->program_bytes = 4;
  f->read = stm32_read;
  f->erase = stm32_erase;
  f->program = stm32_program;
  f->ctx = 0;
}
