/* tt_dataset.h: the packed dataset/job file the host writes (tinytrain.codegen.datafile) and the
 * training app reads through a tt_source. Little-endian; every offset is in bytes from the file start.
 *
 *   header        tt_dataset_header (64 bytes)
 *   train         n_train * sample_bytes   int8, HWC, in dataset order
 *   train_labels  n_train                  uint8
 *   test          n_test * sample_bytes    int8, HWC
 *   test_labels   n_test                   uint8
 *   order         n_steps                  uint32: the train index used at each step (epochs, shuffled on the host)
 *   lr            n_steps                  float32: the learning rate of each step
 */
#ifndef TT_DATASET_H
#define TT_DATASET_H

#include <stdint.h>

#define TT_DATASET_MAGIC 0x53445454u /* "TTDS" */
#define TT_DATASET_VERSION 1u

/* flags */
#define TT_DS_EVAL_BEFORE 0x1u /* evaluate test accuracy before training */
#define TT_DS_EVAL_AFTER 0x2u  /* ... and after */
#define TT_DS_DUMP_PARAMS 0x4u /* write the trained parameters to params.bin */
#define TT_DS_TEST_PREDS 0x8u  /* report every test prediction (for comparing with the host) */
#define TT_DS_PROFILE_CALLS 0x10u /* run the first step as tt_train_step_calls (a phase per kernel call) */

typedef struct {
  uint32_t magic, version;
  uint32_t sample_bytes, num_classes;
  uint32_t n_train, n_test, n_steps;
  uint32_t rng_seed; /* the update kernels' xorshift32 state at the start (stochastic rounding) */
  uint32_t flags;
  uint32_t off_train, off_train_labels, off_test, off_test_labels, off_order, off_lr;
  uint32_t reserved;
} tt_dataset_header;

/* The header's regions in their documented order, each inside [64, size) with no 32-bit overflow: 1 if
 * consistent (size: the image's bytes, or 0 when unknown: then only the order and overflow are checked). */
static inline int tt_dataset_layout_ok(const tt_dataset_header *h, uint64_t size) {
  uint64_t s = h->sample_bytes;
  uint64_t end_train = (uint64_t)h->off_train + (uint64_t)h->n_train * s;
  uint64_t end_train_labels = (uint64_t)h->off_train_labels + h->n_train;
  uint64_t end_test = (uint64_t)h->off_test + (uint64_t)h->n_test * s;
  uint64_t end_test_labels = (uint64_t)h->off_test_labels + h->n_test;
  uint64_t end_order = (uint64_t)h->off_order + 4u * (uint64_t)h->n_steps;
  uint64_t end_lr = (uint64_t)h->off_lr + 4u * (uint64_t)h->n_steps;
  if (h->sample_bytes == 0 || h->num_classes == 0 || h->off_train < sizeof(tt_dataset_header)) return 0;
  if (end_train > h->off_train_labels || end_train_labels > h->off_test || end_test > h->off_test_labels ||
      end_test_labels > h->off_order || end_order > h->off_lr || end_lr > 0xffffffffu)
    return 0;
  return size == 0 || end_lr <= size;
}

#endif /* TT_DATASET_H */
