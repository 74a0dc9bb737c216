"""The benchmark CSV: one row per run (MLonMCU style), plus labelled anchor rows. Column order and meaning;
docs/benchmarks.md is written from the same table."""

from __future__ import annotations

#: (column, meaning). Bytes are bytes, instructions and MACs are per training step (mean over the steps).
COLUMNS: list[tuple[str, str]] = [
    (
        "kind",
        "`device` (a measurement in emulation), `pytorch` (host anchor, measured), "
        "`paper` (published, not measured)",
    ),
    ("model", "zoo model"),
    ("scheme", "update scheme (`full`, `last`, `bias`, `paper:<budget>`)"),
    ("board", "board profile (`m7`, `m4`, ...); for anchors: where the figure comes from"),
    ("resolution", "input resolution (square)"),
    ("dataset", "dataset the training steps draw from"),
    ("classes", "classes of the (new) classifier head"),
    ("steps", "training steps run (per-step figures are their mean)"),
    (
        "options",
        "compiler options that differ from the defaults (`split_weights=false`, comma-separated; "
        "empty = every lever at its default)",
    ),
    (
        "status",
        "`ok`, `does-not-fit` (planned, too big for the board: not built), `failed`, `fault`, `timeout`, "
        "`mismatch`, `reference`",
    ),
    ("error", "the error of a run that is not ok (e.g. `does not fit: 412.3 KB ...`)"),
    ("sram_budget", "the board's SRAM (bytes)"),
    ("pred_total", "predicted SRAM (planner, before anything is built), bytes"),
    ("pred_arena", "predicted: the one arena (activations, saved activations, gradients, scratch)"),
    ("pred_trainable_weights", "predicted: updated weights kept in SRAM"),
    ("pred_trainable_biases", "predicted: updated biases kept in SRAM"),
    ("pred_input", "predicted: separate input buffer (0 when the input lives in the arena)"),
    ("pred_other", "predicted: shadow copies, optimizer state, SRAM tables, other SRAM, runtime state"),
    ("pred_stack", "predicted stack (the planner's estimate)"),
    ("sram_total", "MEASURED SRAM: .data + .bss (ELF) + stack high-water mark (painted stack), bytes"),
    ("sram_static", "measured .data + .bss"),
    ("sram_arena", "measured: `tt_arena`"),
    ("sram_trainable", "measured: every SRAM copy of a trainable tensor (`tt_p_*`)"),
    ("sram_input", "measured: separate input buffer (`tt_sample`)"),
    ("sram_other_static", "measured: the rest of .data + .bss (app, board layer)"),
    ("sram_stack_hw", "measured: stack high-water mark"),
    ("flash_bytes", "flash image (.text + .rodata + .data init)"),
    ("instr_forward", "instructions per training step in the forward phase (firmware phase counters)"),
    ("instr_loss", "... in the loss"),
    ("instr_backward", "... in the backward phase (input gradients, masks)"),
    ("instr_update", "... in the update phase (fused weight gradient + update, bias updates)"),
    ("instr_total", "instructions per training step (whole `tt_train_step`)"),
    (
        "est_cycles",
        "ESTIMATED cycles per step: instr_total x cycles/instruction of the kernels' class mix (cycle model)",
    ),
    (
        "est_cycles_low",
        "low end of est_cycles' range: est_cycles x the run's low/point ratio, where low is the lower of the "
        "cycle model's documented best case (branch refill, IT folding, M7 mispredictions) and its CoreMark "
        "band (point x (1 + the model's CoreMark error: -14 % m4, -4 % m7)); docs/emulation.md",
    ),
    ("est_cycles_high", "high end of the range: the model's documented worst case (same ratio)"),
    ("est_cpi", "the estimate's cycles per instruction"),
    ("clock_mhz", "the board's nominal clock"),
    ("est_ms", "ESTIMATED ms per step at the nominal clock"),
    (
        "macs_forward",
        "MACs per step of the forward convolutions (from the program; patched-stage halos included)",
    ),
    ("macs_backward", "MACs per step of the input gradients"),
    ("macs_wgrad", "MACs per step of the weight gradients"),
    ("macs_total", "MACs per step (forward + backward + weight gradient)"),
    ("macs_per_cycle", "macs_total / est_cycles"),
    ("instr_per_mac", "instr_total / macs_total"),
    (
        "top_kernels",
        "largest kernels by instructions per step, helpers folded in (`kernel=instructions;...`)",
    ),
    ("matched_reference", "device losses and parameters bit-equal to the host reference (True/False/empty)"),
    ("host_rss_peak", "PyTorch anchor: peak resident set size of the training process, bytes"),
    ("host_rss_model", "PyTorch anchor: RSS after importing torch and building the model, before training"),
    ("host_step_ms", "PyTorch anchor: median wall time of one training step (batch 1), ms"),
    ("wall_s", "wall time of the run (compile, build, emulate, reference), seconds"),
    ("note", "what the row is (e.g. the source of a published figure)"),
]

NAMES = [c for c, _ in COLUMNS]

#: Columns read back as integers / floats (the rest are text).
INT_COLUMNS = {
    "resolution", "classes", "steps", "sram_budget", "pred_total", "pred_arena", "pred_trainable_weights",
    "pred_trainable_biases", "pred_input", "pred_other", "pred_stack", "sram_total", "sram_static",
    "sram_arena", "sram_trainable", "sram_input", "sram_other_static", "sram_stack_hw", "flash_bytes",
    "instr_forward", "instr_loss", "instr_backward", "instr_update", "instr_total", "est_cycles",
    "est_cycles_low", "est_cycles_high",
    "macs_forward", "macs_backward", "macs_wgrad", "macs_total", "host_rss_peak", "host_rss_model",
}  # fmt: skip
FLOAT_COLUMNS = {
    "est_cpi",
    "clock_mhz",
    "est_ms",
    "macs_per_cycle",
    "instr_per_mac",
    "host_step_ms",
    "wall_s",
}
