/* tt_source.h: where the training app gets its samples.
 *
 * A source delivers (1) the training stream, in the order the host decided (so the host reference sees
 * the same samples), each with its label and learning rate, and (2) a held-out test split, by index.
 * Two implementations share one packed format (tt_dataset.h): source_semihost.c reads the file the host
 * wrote into the run directory through semihosting; source_flash.c reads the same bytes from a
 * flash-embedded blob (small sets). On a real board a camera or a UART would implement this interface.
 */
#ifndef TT_SOURCE_H
#define TT_SOURCE_H

#include <stdint.h>

#include "tt_dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Errors (negative): a source never reads or writes out of bounds on a corrupt file or flash image. */
#define TT_SRC_EOPEN (-1)   /* cannot open the file */
#define TT_SRC_ESEEK (-2)   /* seek failed */
#define TT_SRC_ESHORT (-3)  /* short read: the file is truncated */
#define TT_SRC_EMAGIC (-4)  /* not a dataset (magic/version) */
#define TT_SRC_EINDEX (-5)  /* a sample index out of range */
#define TT_SRC_ELABEL (-6)  /* a label >= num_classes */
#define TT_SRC_ELAYOUT (-7) /* header regions overlap, overflow or exceed the image */

/* A readable name of a source error. */
const char *tt_source_error(int rc);

/* Opens the source and fills in its header; 0 on success, a negative error otherwise. */
int tt_source_open(tt_dataset_header *info);

/* The next training sample of the host-decided order: copies header.sample_bytes bytes into sample and
 * sets *label and *lr. Returns 1, or 0 when the stream is exhausted, or a negative error. */
int tt_source_next(int8_t *sample, int *label, float *lr);

/* Test sample i (0 <= i < n_test) and its label. Returns 1, or a negative error. */
int tt_source_test(uint32_t i, int8_t *sample, int *label);

/* Streamed samples (a model with TT_INPUT_STREAMED: its first stage reads the sample tile by tile): with sample ==
 * NULL, tt_source_next and tt_source_test select the sample without copying it anywhere; tt_source_read then
 * reads bytes [offset, offset + n) of the selected sample into dst. Returns 0, or a negative error (also for a
 * range outside the sample or no sample selected). */
int tt_source_read(uint32_t offset, int8_t *dst, uint32_t n);

void tt_source_close(void);

#ifdef __cplusplus
}
#endif
#endif /* TT_SOURCE_H */
