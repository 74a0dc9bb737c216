"""Memory scheduling: buffer lifetimes, arena placement, the memory plan and its report, and the
estimates of the memory levers (in-place depthwise, patch-based first stage). See docs/memory.md."""

from tinytrain.schedule.arena import STRATEGIES, Placement, check_placement, place  # noqa: F401
from tinytrain.schedule.levers import LeverEstimate, estimate_levers, forward_peak  # noqa: F401
from tinytrain.schedule.lifetimes import ALIGN, Lifetime, compute_lifetimes  # noqa: F401
from tinytrain.schedule.plan import (  # noqa: F401
    DEFAULT_STACK_BYTES,
    RUNTIME_STATE_BYTES,
    MemoryPlan,
    board_sram_bytes,
    check_fits,
    plan_memory,
)
