/* tt_source over a flash-embedded copy of the packed dataset file (small sets): the generated
 * dataset_blob.c defines tt_dataset_blob[] (const, .rodata) with exactly the bytes of dataset.bin, and
 * tt_dataset_blob_size, its length: every read below stays inside it, whatever the header says. */
#include "tt_source.h"

extern const uint8_t tt_dataset_blob[];
extern const uint32_t tt_dataset_blob_size;

static const tt_dataset_header *ds;
static uint32_t ds_step;
static const uint8_t *ds_selected; /* the sample selected for streaming */

static void copy(void *dst, const uint8_t *src, uint32_t n) {
  uint8_t *d = (uint8_t *)dst;
  while (n--) *d++ = *src++;
}

int tt_source_open(tt_dataset_header *info) {
  ds = 0;
  if (tt_dataset_blob_size < sizeof(tt_dataset_header)) return TT_SRC_ESHORT;
  ds = (const tt_dataset_header *)(const void *)tt_dataset_blob;
  if (ds->magic != TT_DATASET_MAGIC || ds->version != TT_DATASET_VERSION) {
    ds = 0;
    return TT_SRC_EMAGIC;
  }
  /* a corrupt image must not make the reads below leave the blob: every region in order, no overflow,
   * and the last one ends inside the blob's bytes */
  if (!tt_dataset_layout_ok(ds, tt_dataset_blob_size)) {
    ds = 0;
    return TT_SRC_ELAYOUT;
  }
  ds_step = 0;
  *info = *ds;
  return 0;
}

int tt_source_next(int8_t *sample, int *label, float *lr) {
  if (!ds) return TT_SRC_EOPEN;
  if (ds_step >= ds->n_steps) return 0;
  uint32_t idx;
  copy(&idx, tt_dataset_blob + ds->off_order + 4u * ds_step, 4);
  copy(lr, tt_dataset_blob + ds->off_lr + 4u * ds_step, 4);
  if (idx >= ds->n_train) return TT_SRC_EINDEX;
  if (tt_dataset_blob[ds->off_train_labels + idx] >= ds->num_classes) return TT_SRC_ELABEL;
  *label = tt_dataset_blob[ds->off_train_labels + idx];
  if (sample)
    copy(sample, tt_dataset_blob + ds->off_train + idx * ds->sample_bytes, ds->sample_bytes);
  else
    ds_selected = tt_dataset_blob + ds->off_train + idx * ds->sample_bytes;
  ds_step++;
  return 1;
}

int tt_source_test(uint32_t i, int8_t *sample, int *label) {
  if (!ds) return TT_SRC_EOPEN;
  if (i >= ds->n_test) return TT_SRC_EINDEX;
  if (tt_dataset_blob[ds->off_test_labels + i] >= ds->num_classes) return TT_SRC_ELABEL;
  *label = tt_dataset_blob[ds->off_test_labels + i];
  if (sample)
    copy(sample, tt_dataset_blob + ds->off_test + i * ds->sample_bytes, ds->sample_bytes);
  else
    ds_selected = tt_dataset_blob + ds->off_test + i * ds->sample_bytes;
  return 1;
}

int tt_source_read(uint32_t offset, int8_t *dst, uint32_t n) {
  if (!ds || !ds_selected || offset > ds->sample_bytes || n > ds->sample_bytes - offset) return TT_SRC_EINDEX;
  copy(dst, ds_selected + offset, n);
  return 0;
}

void tt_source_close(void) {
  ds = 0;
  ds_selected = 0;
}
