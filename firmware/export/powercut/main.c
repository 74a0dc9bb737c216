/* The power-cut firmware of `tinytrain powercut` (tinytrain/export/powercut.py): one boot of a device that
 * learns and keeps what it learned.
 *
 *   boot -> tinytrain_load (newest valid slot) -> dump the loaded state to loaded.bin
 *        -> one training step (sample EX[steps % EX_STEPS]) -> dump the state to save to pending.bin
 *        -> tt_powercut_save_begin() -> tinytrain_save -> tt_powercut_save_end() -> exit
 *
 * The host stops QEMU at a chosen instruction count after the save's first erase (the flash driver's
 * emu_erase; the ttcut plugin), i.e. somewhere inside the save, then boots again: that boot's loaded.bin must equal the previous boot's
 * loaded.bin (the save was lost, the old state kept) or its pending.bin (the save completed), bit for bit.
 * Events (metrics protocol, tt_board.h):
 *   {"ev":"load","rc":R,"steps":N,"slots":[[verdict,seq],[verdict,seq]]}
 *   {"ev":"saved","rc":R,"seq":S,"programmed":B,"erases":E}                   (only when not cut)
 * The state dumps go through semihosting, outside the flash driver, so they cannot hide a flash fault. */
#include <stdint.h>

#include "example_data.h"
#include "flash_emulated.h"
#include "tinytrain.h"
#include "tt_board.h"

static uint8_t arena[TINYTRAIN_ARENA_BYTES] __attribute__((aligned(8)));

/* Markers around the save (the end of the plugin's window is tt_powercut_save_end): real, separate functions. */
__attribute__((noinline, used)) void tt_powercut_save_begin(void) { __asm volatile("" ::: "memory"); }
__attribute__((noinline, used)) void tt_powercut_save_end(void) { __asm volatile("" ::: "memory"); }

static int dump_state(const char *path) {
  int fd = tt_sh_open(path, TT_SH_WB);
  if (fd < 0) return -1;
  const void *p;
  uint32_t n;
  for (uint32_t i = 0; tinytrain_state_region(i, &p, &n) == TINYTRAIN_OK; i++) {
    if (tt_sh_write(fd, p, n) != (int)n) {
      tt_sh_close(fd);
      return -1;
    }
  }
  return tt_sh_close(fd) == 0 ? 0 : -1;
}

int main(void) {
  tt_board_init();
  emu_flash emu;
  tinytrain_flash flash;
  if (emu_flash_open(&emu, &flash, EMU_SLOT_BYTES) != 0) {
    tt_emit("{\"ev\":\"error\",\"msg\":\"cannot open flash.bin\"}");
    return 1;
  }
  if (tinytrain_init(arena, sizeof arena) != TINYTRAIN_OK) return 1;
  int rc = tinytrain_load(&flash);
  uint32_t s0 = 0, s1 = 0;
  int v0 = tinytrain_slot_status(0, &s0), v1 = tinytrain_slot_status(1, &s1);
  tt_emit("{\"ev\":\"load\",\"rc\":%d,\"steps\":%lu,\"slots\":[[%d,%lu],[%d,%lu]]}", rc,
          (unsigned long)tinytrain_steps(), v0, (unsigned long)s0, v1, (unsigned long)s1);
  if (dump_state("loaded.bin") != 0) return 1;

  uint32_t i = tinytrain_steps() % EX_STEPS;
  float loss;
  if (tinytrain_train_step(ex_samples[i], ex_labels[i], &loss) != TINYTRAIN_OK) return 1;
  if (dump_state("pending.bin") != 0) return 1;

  tt_powercut_save_begin();
  rc = tinytrain_save(&flash);
  tt_powercut_save_end();
  uint32_t seq = 0;
  tinytrain_slot_status(0, &s0);
  tinytrain_slot_status(1, &s1);
  seq = s0 > s1 ? s0 : s1;
  tt_emit("{\"ev\":\"saved\",\"rc\":%d,\"seq\":%lu,\"programmed\":%lu,\"erases\":%lu}", rc, (unsigned long)seq,
          (unsigned long)emu.programmed, (unsigned long)emu.erases);
  emu_flash_close(&emu);
  return rc == TINYTRAIN_OK ? 0 : 1;
}
