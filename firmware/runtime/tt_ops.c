/* The kernels of the imported models' op kinds live one per file in ops/ (tinytrain/ops/registry.py); this
 * file compiles them as one translation unit, so every build that takes the runtime C files has them. */
#include "ops/tt_mask_range.c"
#include "ops/tt_qadd.c"
#include "ops/tt_qconcat.c"
#include "ops/tt_qconv.c"
#include "ops/tt_qconv_bwd.c"
#include "ops/tt_qhardswish.c"
#include "ops/tt_qmean.c"
#include "ops/tt_qpad.c"
#include "ops/tt_qpad_bwd.c"
#include "ops/tt_qpool.c"
#include "ops/tt_qpool_bwd.c"
#include "ops/tt_qrequant.c"
