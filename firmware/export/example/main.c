/* Example for the emulated boards (m4: QEMU mps2-an386, m7: mps2-an500): `make qemu` builds and runs it.
 *
 * 1. boot: tinytrain_init with our arena, tinytrain_load from the emulated flash (flash.bin on the host, kept
 *    between runs) -> prints what it found (a saved state and its step counter, or why none was used);
 * 2. self-check from the built-in weights: EX_STEPS training steps on the embedded samples; each loss must
 *    equal, bit for bit, the host reference's (computed by tinytrain export); then inference on a test sample,
 *    whose int8 logits must equal the host reference's after those steps;
 * 3. persistence: save, re-init (built-in weights), load: the logits must be those after training again; one
 *    more training step must then give the host reference's loss and logits (training resumes exactly);
 * 4. an arena one byte too small must be refused with TINYTRAIN_ERR_ARENA_SMALL.
 * Exit status 0 when every check passed, 1 otherwise (QEMU exits with it: semihosting). */
#include <stdint.h>

#include "example_data.h"
#include "flash_emulated.h"
#include "tinytrain.h"
#include "tt_board.h"

static uint8_t arena[TINYTRAIN_ARENA_BYTES] __attribute__((aligned(8)));
static int failures;

static uint32_t bits_of(float f) {
  union {
    float f;
    uint32_t u;
  } b = {f};
  return b.u;
}

static void check(int ok, const char *what) {
  if (!ok) {
    failures++;
    tt_printf("CHECK FAILED: %s\n", what);
  }
}

static const char *err_name(int rc) {
  switch (rc) {
    case TINYTRAIN_OK: return "ok";
    case TINYTRAIN_ERR_NO_STATE: return "no saved state (both slots empty)";
    case TINYTRAIN_ERR_FINGERPRINT: return "saved state is another model's (fingerprint)";
    case TINYTRAIN_ERR_VERSION: return "saved state has another format version";
    case TINYTRAIN_ERR_CORRUPT: return "no slot passed its CRC checks";
    case TINYTRAIN_ERR_FLASH: return "flash driver error";
    default: return "error";
  }
}

int main(void) {
  tt_board_init();
  emu_flash emu;
  tinytrain_flash flash;
  if (emu_flash_open(&emu, &flash, EMU_SLOT_BYTES) != 0) {
    tt_printf("cannot open the emulated flash (flash.bin)\n");
    return 1;
  }
  tt_printf("tinytrain %s, scheme %s, %d classes, %dx%dx%d input on %s; arena %lu B, state %lu B\n",
            TINYTRAIN_MODEL, TINYTRAIN_SCHEME, TINYTRAIN_NUM_CLASSES, TINYTRAIN_INPUT_H, TINYTRAIN_INPUT_W,
            TINYTRAIN_INPUT_C, tt_board_name(), (unsigned long)TINYTRAIN_ARENA_BYTES,
            (unsigned long)TINYTRAIN_STATE_BYTES);

  /* 1. boot */
  int rc = tinytrain_init(arena, sizeof arena);
  check(rc == TINYTRAIN_OK, "tinytrain_init");
  rc = tinytrain_load(&flash);
  if (rc == TINYTRAIN_OK)
    tt_printf("boot: loaded the learned state from flash (step %lu)\n", (unsigned long)tinytrain_steps());
  else
    tt_printf("boot: %s (%d); using the built-in weights\n", err_name(rc), rc);

  /* 2. self-check from the built-in weights */
  rc = tinytrain_init(arena, sizeof arena);
  check(rc == TINYTRAIN_OK, "tinytrain_init (reset)");
  int matched = 0;
  for (int i = 0; i < EX_STEPS; i++) {
    float loss = 0.0f;
    uint64_t t0 = tt_instret();
    rc = tinytrain_train_step(ex_samples[i], ex_labels[i], &loss);
    uint64_t instr = tt_instret() - t0;
    check(rc == TINYTRAIN_OK, "tinytrain_train_step");
    int ok = bits_of(loss) == ex_loss_bits[i];
    matched += ok;
    tt_printf("step %d/%d: label %d loss %.9e (0x%08lx) host reference 0x%08lx %s, %llu instructions\n", i + 1,
              EX_STEPS, ex_labels[i], (double)loss, (unsigned long)bits_of(loss), (unsigned long)ex_loss_bits[i],
              ok ? "ok" : "MISMATCH", (unsigned long long)instr);
  }
  check(matched == EX_STEPS, "per-step losses equal the host reference");
  int cls = -1;
  int8_t logits[TINYTRAIN_NUM_CLASSES];
  rc = tinytrain_infer(ex_test_sample, &cls, logits);
  check(rc == TINYTRAIN_OK, "tinytrain_infer");
  int same = 1;
  for (int k = 0; k < TINYTRAIN_NUM_CLASSES; k++) same &= logits[k] == ex_test_logits[k];
  tt_printf("infer: class %d, logits", cls);
  for (int k = 0; k < TINYTRAIN_NUM_CLASSES; k++) tt_printf(" %d", logits[k]);
  tt_printf(" (host reference: %s)\n", same ? "equal" : "DIFFERENT");
  check(same, "logits after training equal the host reference");

  /* 3. persistence round trip */
  rc = tinytrain_save(&flash);
  uint32_t s0 = 0, s1 = 0;
  int v0 = tinytrain_slot_status(0, &s0), v1 = tinytrain_slot_status(1, &s1);
  tt_printf("save: %s; slots A %s seq %lu, B %s seq %lu; %lu bytes programmed, %lu sector erase(s)\n",
            err_name(rc), v0 == TINYTRAIN_SLOT_VALID ? "valid" : "not valid", (unsigned long)s0,
            v1 == TINYTRAIN_SLOT_VALID ? "valid" : "not valid", (unsigned long)s1, (unsigned long)emu.programmed,
            (unsigned long)emu.erases);
  check(rc == TINYTRAIN_OK, "tinytrain_save");
  tinytrain_init(arena, sizeof arena);
  rc = tinytrain_load(&flash);
  check(rc == TINYTRAIN_OK, "tinytrain_load after save");
  int8_t again[TINYTRAIN_NUM_CLASSES];
  tinytrain_infer(ex_test_sample, &cls, again);
  same = tinytrain_steps() == (uint32_t)EX_STEPS;
  for (int k = 0; k < TINYTRAIN_NUM_CLASSES; k++) same &= again[k] == logits[k];
  tt_printf("reload: step %lu, logits %s\n", (unsigned long)tinytrain_steps(), same ? "as after training" : "DIFFERENT");
  check(same, "the reloaded state gives the trained logits");
  /* training goes on from the loaded state exactly as without the save (optimizer state, step counter and a
   * mini-batch under way included): one more step, its loss and the logits after it as the host's */
  float loss = 0.0f;
  rc = tinytrain_train_step(ex_resume_sample, ex_resume_label, &loss);
  check(rc == TINYTRAIN_OK, "tinytrain_train_step after load");
  tinytrain_infer(ex_test_sample, &cls, again);
  same = bits_of(loss) == ex_resume_loss_bits;
  for (int k = 0; k < TINYTRAIN_NUM_CLASSES; k++) same &= again[k] == ex_resume_logits[k];
  tt_printf("resume: step %lu of a mini-batch of %d, loss 0x%08lx, logits %s\n", (unsigned long)tinytrain_steps(),
            TINYTRAIN_ACCUMULATE, (unsigned long)bits_of(loss), same ? "as the host reference's" : "DIFFERENT");
  check(same, "a step after the load equals the host reference's");

  /* 4. bad input */
  check(tinytrain_init(arena, TINYTRAIN_ARENA_BYTES - 1u) == TINYTRAIN_ERR_ARENA_SMALL, "small arena refused");
  check(tinytrain_init(arena + 1, TINYTRAIN_ARENA_BYTES) == TINYTRAIN_ERR_ARENA_ALIGN, "misaligned arena refused");
  check(tinytrain_init(0, TINYTRAIN_ARENA_BYTES) == TINYTRAIN_ERR_ARENA_NULL, "NULL arena refused");
  check(tinytrain_train_step(ex_samples[0], 0, &(float){0}) == TINYTRAIN_ERR_NOT_INIT, "step before init refused");

  emu_flash_close(&emu);
  tt_printf("self-check: %s (%d/%d losses bit-exact)\n", failures ? "FAIL" : "PASS", matched, EX_STEPS);
  return failures ? 1 : 0;
}
