/* tt_source over semihosting: reads the packed dataset file the host placed in the run directory. */
#include "tt_board.h"
#include "tt_source.h"

#ifndef TT_DATASET_PATH
#define TT_DATASET_PATH "dataset.bin"
#endif

static int ds_fd = -1;
static tt_dataset_header ds;
static uint32_t ds_step;
static uint32_t ds_selected = 0xFFFFFFFFu; /* file offset of the sample selected for streaming */

static int read_at(uint32_t off, void *buf, uint32_t n) {
  if (tt_sh_seek(ds_fd, (long)off) != 0) return TT_SRC_ESEEK;
  return tt_sh_read(ds_fd, buf, n) == (int)n ? 0 : TT_SRC_ESHORT;
}

int tt_source_open(tt_dataset_header *info) {
  ds_fd = tt_sh_open(TT_DATASET_PATH, TT_SH_RB);
  if (ds_fd < 0) return TT_SRC_EOPEN;
  if (tt_sh_read(ds_fd, &ds, sizeof ds) != (int)sizeof ds) return TT_SRC_ESHORT;
  if (ds.magic != TT_DATASET_MAGIC || ds.version != TT_DATASET_VERSION) return TT_SRC_EMAGIC;
  if (!tt_dataset_layout_ok(&ds, 0)) return TT_SRC_ELAYOUT; /* reads past the end are short reads */
  ds_step = 0;
  *info = ds;
  return 0;
}

int tt_source_next(int8_t *sample, int *label, float *lr) {
  if (ds_step >= ds.n_steps) return 0;
  uint32_t idx;
  uint8_t lab;
  int rc = read_at(ds.off_order + 4u * ds_step, &idx, 4);
  if (rc == 0) rc = read_at(ds.off_lr + 4u * ds_step, lr, 4);
  if (rc == 0 && idx >= ds.n_train) rc = TT_SRC_EINDEX;
  if (rc == 0) rc = read_at(ds.off_train_labels + idx, &lab, 1);
  if (rc == 0 && sample) rc = read_at(ds.off_train + idx * ds.sample_bytes, sample, ds.sample_bytes);
  if (rc == 0 && !sample) ds_selected = ds.off_train + idx * ds.sample_bytes;
  if (rc) return rc;
  if (lab >= ds.num_classes) return TT_SRC_ELABEL;
  *label = lab;
  ds_step++;
  return 1;
}

int tt_source_test(uint32_t i, int8_t *sample, int *label) {
  uint8_t lab;
  if (i >= ds.n_test) return TT_SRC_EINDEX;
  int rc = read_at(ds.off_test_labels + i, &lab, 1);
  if (rc == 0 && sample) rc = read_at(ds.off_test + i * ds.sample_bytes, sample, ds.sample_bytes);
  if (rc == 0 && !sample) ds_selected = ds.off_test + i * ds.sample_bytes;
  if (rc) return rc;
  if (lab >= ds.num_classes) return TT_SRC_ELABEL;
  *label = lab;
  return 1;
}

int tt_source_read(uint32_t offset, int8_t *dst, uint32_t n) {
  if (ds_selected == 0xFFFFFFFFu || offset > ds.sample_bytes || n > ds.sample_bytes - offset) return TT_SRC_EINDEX;
  return read_at(ds_selected + offset, dst, n);
}

void tt_source_close(void) {
  if (ds_fd >= 0) tt_sh_close(ds_fd);
  ds_fd = -1;
}
