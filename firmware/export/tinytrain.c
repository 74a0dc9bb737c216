/* tinytrain.c: the public API (tinytrain.h) over the generated model (model.c) and the learned-state
 * persistence in two flash slots (A/B). Copied unchanged by `tinytrain export`; the configuration comes from
 * tinytrain.h and model.h. C99, no dynamic allocation.
 *
 * Slot layout (little-endian 32-bit words; docs/export.md):
 *   header, 32 bytes: magic "TTSL" | format version | fingerprint lo | fingerprint hi | sequence |
 *                     payload length | payload CRC-32 | header CRC-32 (of the 28 bytes before it)
 *   payload at offset 32: step counter (u32) | rng state (u32) | every trainable tensor, in tt_trainable order
 *                         (optimizer state included: momentum buffers, mini-batch gradient accumulators).
 * With mini-batches (TINYTRAIN_ACCUMULATE > 1) the position in the current batch is the step counter modulo
 * TINYTRAIN_ACCUMULATE: a state saved mid-batch resumes that batch after a load.
 * A save erases the target slot, programs the payload, then the header: until the header's last program
 * completes the slot does not validate, so a cut anywhere leaves the other slot (the last good one) in charge.
 * The target is always the slot that does not hold the newest valid state; the new sequence number is one
 * above it (compared with serial arithmetic, so the counter may wrap). */
#include "tinytrain.h"

#include "model.h"
#if TINYTRAIN_USES_RNG
#include "tt_kernels.h" /* tt_rng_state */
#endif

#define SLOT_MAGIC 0x4C535454u /* "TTSL" */
#define HEADER_WORDS 8u
#define META_BYTES 8u
#define CHUNK 64u /* bytes read or programmed at a time (a multiple of every allowed program size) */

#if TT_ARENA_BYTES != TINYTRAIN_ARENA_BYTES || TT_INPUT_BYTES != TINYTRAIN_INPUT_BYTES
#error "tinytrain.h and model.h disagree: regenerate both with tinytrain export"
#endif

static int tt_ready;
static float tt_lr = TINYTRAIN_LEARNING_RATE;
static uint32_t tt_meta[2]; /* step counter, rng state: the head of the payload */
static uint8_t tt_slot_verdict[2] = {TINYTRAIN_SLOT_EMPTY, TINYTRAIN_SLOT_EMPTY};
static uint32_t tt_slot_seq[2];

/* ---- CRC-32 ---------------------------------------------------------------------------------------- */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};

uint32_t tinytrain_crc32(uint32_t crc, const void *data, uint32_t n) {
  const uint8_t *p = (const uint8_t *)data;
  crc = ~crc;
  while (n--) {
    crc ^= *p++;
    crc = (crc >> 4) ^ crc_nibble[crc & 15u];
    crc = (crc >> 4) ^ crc_nibble[crc & 15u];
  }
  return ~crc;
}

static void put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void copy_bytes(void *dst, const void *src, uint32_t n) {
  uint8_t *d = (uint8_t *)dst;
  const uint8_t *s = (const uint8_t *)src;
  while (n--) *d++ = *s++;
}

/* ---- the state: regions in save order --------------------------------------------------------------- */
int tinytrain_state_region(uint32_t i, const void **data, uint32_t *bytes) {
  if (!data || !bytes) return TINYTRAIN_ERR_ARG;
  if (i == 0) {
#if TINYTRAIN_USES_RNG
    tt_meta[1] = tt_rng_state;
#endif
    *data = tt_meta;
    *bytes = META_BYTES;
    return TINYTRAIN_OK;
  }
  if (i - 1 >= (uint32_t)TT_NUM_TRAINABLE) return TINYTRAIN_ERR_ARG;
  *data = tt_trainable[i - 1].data;
  *bytes = tt_trainable[i - 1].bytes;
  return TINYTRAIN_OK;
}

static uint8_t *region_ptr(uint32_t i, uint32_t *bytes) {
  if (i == 0) {
    *bytes = META_BYTES;
    return (uint8_t *)tt_meta;
  }
  *bytes = tt_trainable[i - 1].bytes;
  return (uint8_t *)tt_trainable[i - 1].data;
}

/* ---- API ------------------------------------------------------------------------------------------- */
static void reset_state(void) { /* the built-in weights, step 0, the initial rng state */
  tt_model_init();
  tt_model_seed(TINYTRAIN_RNG_SEED);
  tt_meta[0] = 0;
  tt_meta[1] = TINYTRAIN_RNG_SEED;
}

int tinytrain_init(void *arena, size_t arena_bytes) {
  tt_ready = 0;
  if (!arena) return TINYTRAIN_ERR_ARENA_NULL;
  if (arena_bytes < TINYTRAIN_ARENA_BYTES) return TINYTRAIN_ERR_ARENA_SMALL;
  if ((uintptr_t)arena % TINYTRAIN_ARENA_ALIGN) return TINYTRAIN_ERR_ARENA_ALIGN;
  tt_model_bind_arena((uint8_t *)arena);
  reset_state();
  tt_ready = 1;
  return TINYTRAIN_OK;
}

int tinytrain_set_learning_rate(float lr) {
  if (!(lr > 0.0f)) return TINYTRAIN_ERR_ARG;
  tt_lr = lr;
  return TINYTRAIN_OK;
}

uint32_t tinytrain_steps(void) { return tt_meta[0]; }

int tinytrain_train_step(const int8_t *input, int label, float *loss) {
  if (!tt_ready) return TINYTRAIN_ERR_NOT_INIT;
  if (!input || !loss || label < 0 || label >= TINYTRAIN_NUM_CLASSES) return TINYTRAIN_ERR_ARG;
  *loss = tt_train_step(input, label, tt_lr);
  tt_meta[0]++;
  return TINYTRAIN_OK;
}

int tinytrain_infer(const int8_t *input, int *cls, int8_t *logits) {
  int8_t z[TINYTRAIN_NUM_CLASSES];
  if (!tt_ready) return TINYTRAIN_ERR_NOT_INIT;
  if (!input || !cls) return TINYTRAIN_ERR_ARG;
  tt_infer(input, z);
  int best = 0;
  for (int k = 1; k < TINYTRAIN_NUM_CLASSES; k++)
    if (z[k] > z[best]) best = k;
  *cls = best;
  if (logits) copy_bytes(logits, z, TINYTRAIN_NUM_CLASSES);
  return TINYTRAIN_OK;
}

int tinytrain_slot_status(int slot, uint32_t *sequence) {
  if (slot < 0 || slot > 1) return TINYTRAIN_ERR_ARG;
  if (sequence) *sequence = tt_slot_verdict[slot] == TINYTRAIN_SLOT_VALID ? tt_slot_seq[slot] : 0u;
  return tt_slot_verdict[slot];
}

/* ---- slots ----------------------------------------------------------------------------------------- */
static int flash_ok(const tinytrain_flash *f) {
  if (!f || !f->read || !f->erase || !f->program) return 0;
  uint32_t p = f->program_bytes;
  if (p == 0 || p > 32u || (p & (p - 1u))) return 0;
  return f->slot_bytes >= TINYTRAIN_SLOT_MIN_BYTES;
}

/* Checks slot `s` completely (header and payload CRC); returns its TINYTRAIN_SLOT_* verdict, or
 * TINYTRAIN_ERR_FLASH when a read fails. */
static int check_slot(const tinytrain_flash *f, int s, uint32_t *seq) {
  uint8_t h[TINYTRAIN_SLOT_HEADER_BYTES];
  if (f->read(f->ctx, s, 0, h, sizeof h)) return TINYTRAIN_ERR_FLASH;
  uint32_t w[HEADER_WORDS];
  int erased = 1;
  for (uint32_t i = 0; i < HEADER_WORDS; i++) {
    w[i] = get_le32(h + 4 * i);
    if (w[i] != 0xFFFFFFFFu) erased = 0;
  }
  if (erased) return TINYTRAIN_SLOT_EMPTY;
  if (w[0] != SLOT_MAGIC || tinytrain_crc32(0, h, 28) != w[7]) return TINYTRAIN_SLOT_BAD_HEADER;
  if (w[1] != TINYTRAIN_STATE_FORMAT_VERSION) return TINYTRAIN_SLOT_BAD_VERSION;
  if (w[2] != TINYTRAIN_FINGERPRINT_LO || w[3] != TINYTRAIN_FINGERPRINT_HI) return TINYTRAIN_SLOT_BAD_FINGERPRINT;
  if (w[5] != TINYTRAIN_STATE_BYTES) return TINYTRAIN_SLOT_BAD_LENGTH;
  uint8_t buf[CHUNK];
  uint32_t crc = 0;
  for (uint32_t off = 0; off < TINYTRAIN_STATE_BYTES; off += CHUNK) {
    uint32_t n = TINYTRAIN_STATE_BYTES - off < CHUNK ? TINYTRAIN_STATE_BYTES - off : CHUNK;
    if (f->read(f->ctx, s, TINYTRAIN_SLOT_HEADER_BYTES + off, buf, n)) return TINYTRAIN_ERR_FLASH;
    crc = tinytrain_crc32(crc, buf, n);
  }
  if (crc != w[6]) return TINYTRAIN_SLOT_BAD_CRC;
  *seq = w[4];
  return TINYTRAIN_SLOT_VALID;
}

/* Scans both slots; returns the newest valid one (0/1), -1 if none, or TINYTRAIN_ERR_FLASH. */
static int scan(const tinytrain_flash *f) {
  for (int s = 0; s < 2; s++) {
    uint32_t seq = 0;
    int v = check_slot(f, s, &seq);
    if (v < 0) return v;
    tt_slot_verdict[s] = (uint8_t)v;
    tt_slot_seq[s] = seq;
  }
  int a = tt_slot_verdict[0] == TINYTRAIN_SLOT_VALID, b = tt_slot_verdict[1] == TINYTRAIN_SLOT_VALID;
  if (a && b) return (int32_t)(tt_slot_seq[1] - tt_slot_seq[0]) > 0 ? 1 : 0;
  return a ? 0 : b ? 1 : -1;
}

int tinytrain_load(const tinytrain_flash *flash) {
  if (!tt_ready) return TINYTRAIN_ERR_NOT_INIT;
  if (!flash_ok(flash)) return TINYTRAIN_ERR_FLASH;
  int s = scan(flash);
  if (s == TINYTRAIN_ERR_FLASH) return s;
  if (s < 0) {
    int v0 = tt_slot_verdict[0], v1 = tt_slot_verdict[1];
    if (v0 == TINYTRAIN_SLOT_EMPTY && v1 == TINYTRAIN_SLOT_EMPTY) return TINYTRAIN_ERR_NO_STATE;
    if (v0 == TINYTRAIN_SLOT_BAD_FINGERPRINT || v1 == TINYTRAIN_SLOT_BAD_FINGERPRINT) return TINYTRAIN_ERR_FINGERPRINT;
    if (v0 == TINYTRAIN_SLOT_BAD_VERSION || v1 == TINYTRAIN_SLOT_BAD_VERSION) return TINYTRAIN_ERR_VERSION;
    return TINYTRAIN_ERR_CORRUPT;
  }
  /* Validated: copy the payload into the live state, region by region. */
  uint32_t off = TINYTRAIN_SLOT_HEADER_BYTES;
  for (uint32_t i = 0; i <= (uint32_t)TT_NUM_TRAINABLE; i++) {
    uint32_t n;
    uint8_t *p = region_ptr(i, &n);
    if (flash->read(flash->ctx, s, off, p, n)) {
      reset_state(); /* never leave a half-loaded state */
      return TINYTRAIN_ERR_FLASH;
    }
    off += n;
  }
#if TINYTRAIN_USES_RNG
  tt_rng_state = tt_meta[1];
#endif
#if TINYTRAIN_ACCUMULATE > 1
  /* the mini-batch resumes where the save left it: the accumulated gradients came with the tensors, the
   * position in the batch is the step counter's remainder */
  tt_model_set_batch_count(tt_meta[0]);
#endif
  return TINYTRAIN_OK;
}

int tinytrain_save(const tinytrain_flash *flash) {
  if (!tt_ready) return TINYTRAIN_ERR_NOT_INIT;
  if (!flash_ok(flash)) return TINYTRAIN_ERR_FLASH;
  int newest = scan(flash);
  if (newest == TINYTRAIN_ERR_FLASH) return newest;
  int target = newest < 0 ? 0 : 1 - newest;
  uint32_t seq = newest < 0 ? 1u : tt_slot_seq[newest] + 1u;
#if TINYTRAIN_USES_RNG
  tt_meta[1] = tt_rng_state;
#endif
  /* payload CRC first: the header carries it */
  uint32_t crc = 0;
  for (uint32_t i = 0; i <= (uint32_t)TT_NUM_TRAINABLE; i++) {
    uint32_t n;
    const uint8_t *p = region_ptr(i, &n);
    crc = tinytrain_crc32(crc, p, n);
  }
  tt_slot_verdict[target] = TINYTRAIN_SLOT_EMPTY;
  if (flash->erase(flash->ctx, target)) return TINYTRAIN_ERR_FLASH;
  /* the payload as a byte stream, programmed in CHUNK-byte pieces (the last one padded with 0xFF) */
  uint8_t buf[CHUNK];
  uint32_t fill = 0, off = TINYTRAIN_SLOT_HEADER_BYTES;
  for (uint32_t i = 0; i <= (uint32_t)TT_NUM_TRAINABLE; i++) {
    uint32_t n;
    const uint8_t *p = region_ptr(i, &n);
    while (n) {
      uint32_t take = CHUNK - fill < n ? CHUNK - fill : n;
      copy_bytes(buf + fill, p, take);
      fill += take, p += take, n -= take;
      if (fill == CHUNK) {
        if (flash->program(flash->ctx, target, off, buf, CHUNK)) return TINYTRAIN_ERR_FLASH;
        off += CHUNK, fill = 0;
      }
    }
  }
  if (fill) {
    uint32_t pb = flash->program_bytes, padded = (fill + pb - 1u) / pb * pb;
    for (uint32_t k = fill; k < padded; k++) buf[k] = 0xFFu;
    if (flash->program(flash->ctx, target, off, buf, padded)) return TINYTRAIN_ERR_FLASH;
  }
  /* the header last: the slot becomes valid with its final program */
  uint8_t h[TINYTRAIN_SLOT_HEADER_BYTES];
  put_le32(h + 0, SLOT_MAGIC);
  put_le32(h + 4, TINYTRAIN_STATE_FORMAT_VERSION);
  put_le32(h + 8, TINYTRAIN_FINGERPRINT_LO);
  put_le32(h + 12, TINYTRAIN_FINGERPRINT_HI);
  put_le32(h + 16, seq);
  put_le32(h + 20, TINYTRAIN_STATE_BYTES);
  put_le32(h + 24, crc);
  put_le32(h + 28, tinytrain_crc32(0, h, 28));
  if (flash->program(flash->ctx, target, 0, h, sizeof h)) return TINYTRAIN_ERR_FLASH;
  tt_slot_verdict[target] = TINYTRAIN_SLOT_VALID;
  tt_slot_seq[target] = seq;
  return TINYTRAIN_OK;
}
