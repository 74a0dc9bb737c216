"""How much SRAM each memory lever would save, in exact bytes from the IR shapes.

At 128×128 the arena peak of all three zoo models sits in the first, high-resolution stage of the
forward pass (e.g. MCUNet: blocks.1.pointwise1 reads 8×64×64 and writes 32×64×64 int8). Three
levers attack it (docs/memory.md has the kernel contracts):

- **input in arena**: the input sample lives in the arena instead of its own buffer, so it is dead
  (its bytes reusable) after the first conv (after the patched stage, with patching).
- **in-place depthwise**: a depthwise conv whose input has no other reader writes its output over
  the input, channel by channel, with one padded input-channel plane of scratch.
- **patch-based first stage** (MCUNetV2): the first n ops run tile by tile over a p×p grid of the
  stage output, each tile recomputing its receptive-field halo; only the stage output is ever
  whole. Peak = stage output + the per-patch tile buffers (+ input if in the arena).

All figures are forward-pass, int8 (1 byte per element), sizes aligned to 8, the input excluded
from the arena unless the input lever is on (it is then a separate SRAM buffer, counted by the plan).
With a training `Program`, the training arena under each lever is estimated as the larger of the
lever's early-stage peak and the live bytes of every training step outside that stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tinytrain.ir import Graph, Op
from tinytrain.program import Program
from tinytrain.schedule.lifetimes import align_up, compute_lifetimes, live_bytes

PATCH_GRIDS = (2, 3, 4, 5, 6, 8)


# --------------------------------------------------------------------------- forward peak of a Program
@dataclass
class ForwardPeak:
    peak: int  # bytes of arena live at the peak (aligned)
    step: int  # index into the forward steps
    kernel: str
    layer: str
    tensors: list[tuple[str, int]]  # (buffer, bytes) live at the peak, largest first


def forward_peak(program: Program) -> ForwardPeak:
    """Peak arena bytes of the forward pass alone (inference steps if present, else the training
    steps of phase "forward", where every activation then dies at its last forward reader)."""
    steps = list(program.infer_steps) or [s for s in program.steps if s.phase == "forward"]
    lts = list(compute_lifetimes(program, steps).values())
    live = live_bytes(lts, len(steps))
    t = int(live.argmax())
    tensors = sorted(((lt.name, lt.nbytes) for lt in lts if lt.live_at(t)), key=lambda x: -x[1])
    return ForwardPeak(
        int(live[t]), t, steps[t].kernel if steps else "", steps[t].layer if steps else "", tensors
    )


# --------------------------------------------------------------------------- graph-level model
def _nbytes(graph: Graph, t: str) -> int:
    c, h, w = graph.tensors[t].shape
    return align_up(c * h * w)


def _last_use(graph: Graph) -> dict[str, int]:
    last: dict[str, int] = {}
    for i, op in enumerate(graph.ops):
        for t in op.inputs:
            last[t] = i
    return last


def _inplace_ok(graph: Graph, i: int, last: dict[str, int], input_in_arena: bool) -> bool:
    op = graph.ops[i]
    if op.kind != "conv2d" or not op.depthwise:
        return False
    x = op.inputs[0]
    if x == graph.input and not input_in_arena:
        return False
    return last.get(x) == i and sum(x in o.inputs for o in graph.ops) == 1


def dw_inplace_scratch_bytes(graph: Graph, op: Op) -> int:
    """Scratch of the in-place depthwise kernel: one padded input-channel plane (int8)."""
    _, h, w = graph.tensors[op.inputs[0]].shape
    return align_up((h + 2 * op.padding) * (w + 2 * op.padding))


def _op_live(graph: Graph, lo: int, hi: int, inplace_dw: bool, input_in_arena: bool) -> list[int]:
    """Live bytes at each op lo..hi-1 (whole-tensor forward execution)."""
    last = _last_use(graph)
    prod = {op.output: i for i, op in enumerate(graph.ops)}
    prod[graph.input] = -1
    n = len(graph.ops)
    diff = [0] * (n + 1)
    for t, p in prod.items():
        if t == graph.input and not input_in_arena:
            continue
        diff[max(p, 0)] += _nbytes(graph, t)
        diff[max(last.get(t, p), p) + 1] -= _nbytes(graph, t)
    running, live = 0, []
    for i in range(n):
        running += diff[i]
        live.append(running)
    out: list[int] = []
    for i in range(lo, hi):
        op = graph.ops[i]
        total = live[i]
        if inplace_dw and _inplace_ok(graph, i, last, input_in_arena):
            x, y = op.inputs[0], op.output
            total -= min(_nbytes(graph, x), _nbytes(graph, y))
            total += dw_inplace_scratch_bytes(graph, op)
        out.append(total)
    return out


def _valid_cuts(graph: Graph) -> list[int]:
    """n such that ops[:n] form a stage whose only tensor read later is ops[n-1].output."""
    cuts = []
    for n in range(1, len(graph.ops)):
        inside = {op.output for op in graph.ops[:n]} | {graph.input}
        later = {t for op in graph.ops[n:] for t in op.inputs}
        if (later & inside) == {graph.ops[n - 1].output} and graph.ops[n - 1].kind != "avgpool":
            cuts.append(n)
    return cuts


def _split(n: int, p: int) -> list[tuple[int, int]]:
    b = [round(k * n / p) for k in range(p + 1)]
    return [(b[k], b[k + 1]) for k in range(p) if b[k + 1] > b[k]]


def _ranges_1d(graph: Graph, n: int, lo: int, hi: int) -> dict[str, tuple[int, int]]:
    """Rows (or columns: the ops are separable) of every stage tensor needed for output rows
    [lo, hi) of ops[n-1]: receptive fields back through the stage, unions where tensors fan out."""
    stage = graph.ops[:n]
    rng: dict[str, tuple[int, int]] = {stage[-1].output: (lo, hi)}
    for op in reversed(stage):
        if op.output not in rng:
            continue
        a, b = rng[op.output]
        if op.kind == "conv2d":
            k, st, pad = int(op.attrs["kernel"]), op.stride, op.padding
            size = graph.tensors[op.inputs[0]].shape[1]
            need = {op.inputs[0]: (max(0, a * st - pad), min(size, (b - 1) * st - pad + k))}
        else:  # add: both inputs over the same rows
            need = dict.fromkeys(op.inputs, (a, b))
        for x, (c, d) in need.items():
            old = rng.get(x)
            rng[x] = (c, d) if old is None else (min(old[0], c), max(old[1], d))
    return rng


@dataclass
class PatchResult:
    cut: int  # number of ops in the patched stage
    stage_output: str  # tensor at the end of the stage (the only whole tensor)
    last_layer: str
    grid: int  # p: a p×p grid of patches over the stage output
    stage_peak: int  # peak bytes during the patched stage
    extra_macs: int  # MACs recomputed in the halos
    network_overhead: float  # extra_macs / MACs of the whole network
    #: tensor -> its tile buffer (C, rows, cols)
    tiles: dict[str, tuple[int, int, int]] = field(default_factory=dict)


def _macs(graph: Graph, op: Op, rows: int, cols: int) -> int:
    w = op.weight.shape
    return rows * cols * graph.tensors[op.output].shape[0] * w[1] * w[2] * w[3]


def _patch_stage(graph: Graph, n: int, p: int, inplace_dw: bool, input_in_arena: bool) -> PatchResult:
    """Peak memory and recomputation of running ops[:n] patch by patch on a p×p grid."""
    stage = graph.ops[:n]
    out_t = stage[-1].output
    _, H, W = graph.tensors[out_t].shape
    row_tiles = [_ranges_1d(graph, n, a, b) for a, b in _split(H, p)]
    col_tiles = [_ranges_1d(graph, n, a, b) for a, b in _split(W, p)]
    rows = {t: max(r[t][1] - r[t][0] for r in row_tiles if t in r) for t in row_tiles[0]}
    cols = {t: max(c[t][1] - c[t][0] for c in col_tiles if t in c) for t in col_tiles[0]}
    macs_patched = 0
    for op in stage:
        if op.kind == "conv2d":
            sr = sum(r[op.output][1] - r[op.output][0] for r in row_tiles if op.output in r)
            sc = sum(c[op.output][1] - c[op.output][0] for c in col_tiles if op.output in c)
            macs_patched += _macs(graph, op, sr, sc)
    macs_full = sum(
        _macs(graph, op, *graph.tensors[op.output].shape[1:]) for op in stage if op.kind == "conv2d"
    )
    macs_net = sum(_macs(graph, op, *graph.tensors[op.output].shape[1:]) for op in graph.convs())
    # static tile buffers (sized for the largest patch) for every tensor inside the stage; the input
    # is read in place from its whole buffer, the stage output written in place into its whole buffer
    tiles = {t: (graph.tensors[t].shape[0], rows[t], cols[t]) for t in rows if t not in (out_t, graph.input)}
    tile_bytes = {t: align_up(c * r * w) for t, (c, r, w) in tiles.items()}
    last = _last_use(graph)
    prod = {op.output: i for i, op in enumerate(stage)}
    base = _nbytes(graph, out_t) + (_nbytes(graph, graph.input) if input_in_arena else 0)
    peak = 0
    for i, op in enumerate(stage):
        live = sum(tile_bytes.get(t, 0) for t, pi in prod.items() if pi <= i <= last.get(t, pi))
        x = op.inputs[0]
        if (
            inplace_dw
            and op.kind == "conv2d"
            and op.depthwise
            and op.output != out_t
            and x in tiles
            and last.get(x) == i
            and sum(x in o.inputs for o in graph.ops) == 1
        ):
            _, r, c = tiles[x]
            live -= min(tile_bytes[x], tile_bytes.get(op.output, 0))
            live += align_up((r + 2 * op.padding) * (c + 2 * op.padding))
        peak = max(peak, base + live)
    extra = macs_patched - macs_full
    return PatchResult(n, out_t, stage[-1].name, p, peak, extra, extra / max(macs_net, 1), tiles)


# --------------------------------------------------------------------------- the estimate
@dataclass
class LeverResult:
    name: str
    forward_peak: int  # arena bytes, forward pass
    peak_at: str  # layer (op) or "patched stage (...)" where the forward peak is
    input_separate: int  # bytes of the separate input buffer (0 when the input is in the arena)
    train_arena: int | None = None  # estimated training arena (with a Program)
    total: int | None = None  # estimated predicted SRAM (with a Program)
    patch: PatchResult | None = None
    note: str = ""  # e.g. why a lever does not apply to the given training program

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "forward_peak": self.forward_peak,
            "peak_at": self.peak_at,
            "input_separate": self.input_separate,
            "train_arena": self.train_arena,
            "total": self.total,
            "note": self.note,
        }
        if self.patch:
            pr = self.patch
            d["patch"] = {
                "cut": pr.cut,
                "last_layer": pr.last_layer,
                "grid": pr.grid,
                "stage_peak": pr.stage_peak,
                "extra_macs": pr.extra_macs,
                "network_overhead": round(pr.network_overhead, 4),
            }
        return d


@dataclass
class LeverEstimate:
    model: str
    resolution: int
    input_bytes: int
    results: dict[str, LeverResult]
    #: with a Program: SRAM saved if only the updated input channels of each partially trained weight
    #: live in SRAM (the rest stays in flash): layer -> bytes. Not included in `total`.
    partial_weight_savings: dict[str, int] = field(default_factory=dict)
    #: with a Program: peak live bytes of the non-forward steps (loss, backward, updates), and the same
    #: with the depthwise input gradient computed in place (stride 1, channel by channel)
    backward_peak: int | None = None
    backward_peak_inplace_dw: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "resolution": self.resolution,
            "input_bytes": self.input_bytes,
            "levers": {k: v.to_dict() for k, v in self.results.items()},
            "partial_weight_savings": dict(self.partial_weight_savings),
            "backward_peak": self.backward_peak,
            "backward_peak_inplace_dw": self.backward_peak_inplace_dw,
        }

    def report(self) -> str:
        lines = [
            f"memory levers: {self.model} at {self.resolution}x{self.resolution} "
            f"(input {self.input_bytes / 1024:.1f} KB)"
        ]
        head = f"{'fwd peak':>10}{'+input':>10}{'train arena':>13}{'total':>10}"
        lines.append(f"  {'lever':<34}{head}  peak at")
        for r in self.results.values():
            ta = f"{r.train_arena / 1024:.1f} KB" if r.train_arena is not None else "-"
            tot = f"{r.total / 1024:.1f} KB" if r.total is not None else "-"
            both = (r.forward_peak + r.input_separate) / 1024
            lines.append(
                f"  {r.name:<34}{r.forward_peak / 1024:>7.1f} KB{both:>7.1f} KB{ta:>13}{tot:>10}  "
                f"{r.peak_at}" + (f"  [{r.note}]" if r.note else "")
            )
        if self.backward_peak is not None:
            lines.append(
                f"  backward peak {self.backward_peak / 1024:.1f} KB; with in-place depthwise input "
                f"gradient {(self.backward_peak_inplace_dw or 0) / 1024:.1f} KB"
            )
        if self.partial_weight_savings:
            lines.append(
                f"  partial trainable weights (SRAM holds only updated input channels): saves "
                f"{sum(self.partial_weight_savings.values()) / 1024:.1f} KB more"
            )
        return "\n".join(lines)


#: Patch configurations recomputing more than this fraction of the network's MACs are not considered.
MAX_PATCH_OVERHEAD = 0.25


def best_patch(
    graph: Graph,
    inplace_dw: bool = False,
    input_in_arena: bool = False,
    grids: tuple[int, ...] = PATCH_GRIDS,
    max_overhead: float = MAX_PATCH_OVERHEAD,
    floor: int = 0,
) -> tuple[PatchResult, int, str]:
    """The patch configuration (cut, grid) with the smallest forward peak, not counting below
    `floor` (the peak of the rest of training: going lower buys nothing), then the fewest recomputed
    MACs. Returns it, the forward peak (max of stage and the ops after it) and where that peak is."""
    best: tuple[int, int, PatchResult, int, str] | None = None
    for n in _valid_cuts(graph):
        _, h, _ = graph.tensors[graph.ops[n - 1].output].shape
        if h < 8:  # patching beyond 1/16 of a 128 input: halos dominate, nothing left to save
            break
        rest = _op_live(graph, n, len(graph.ops), inplace_dw, False) or [0]
        rest_peak = max(rest)
        rest_at = graph.ops[n + rest.index(rest_peak)].name
        for p in grids:
            if p > h:
                continue
            pr = _patch_stage(graph, n, p, inplace_dw, input_in_arena)
            if pr.network_overhead > max_overhead:
                continue
            peak = max(pr.stage_peak, rest_peak)
            where = f"patched stage (to {pr.last_layer}, {p}x{p})" if pr.stage_peak >= rest_peak else rest_at
            key = (max(peak, floor), pr.extra_macs)
            if best is None or key < best[:2]:
                best = (key[0], key[1], pr, peak, where)
    if best is None:
        raise ValueError(f"{graph.name}: no patch configuration within {max_overhead:.0%} extra MACs")
    return best[2], best[3], best[4]


def _train_live(program: Program) -> tuple[list[int], list[str]]:
    steps = list(program.steps)
    lts = list(compute_lifetimes(program, steps).values())
    layers = [s.layer if s.phase == "forward" else "" for s in steps]
    return [int(v) for v in live_bytes(lts, len(steps))], layers


def estimate_levers(
    graph: Graph,
    program: Program | None = None,
    stack_estimate: int | None = None,
    grids: tuple[int, ...] = PATCH_GRIDS,
    max_overhead: float = MAX_PATCH_OVERHEAD,
) -> LeverEstimate:
    """Forward peak (and, with the training `program` of the same graph, training arena and total
    SRAM) under each combination of levers. Exact bytes from the IR shapes; see the module doc.

    Training estimate: the steps of the early stage are replaced by the lever's stage peak; every
    other training step keeps its live bytes from the program's lifetimes; the arena is the larger,
    scaled by the plan's placement overhead (arena / lower bound). Total = that + the plan's
    non-arena SRAM, with the input buffer dropped when the input lever puts it in the arena."""
    from tinytrain.schedule.plan import plan_memory

    inp = _nbytes(graph, graph.input)
    plan = plan_memory(program, stack_estimate=stack_estimate) if program is not None else None
    train_live, train_layers = _train_live(program) if program is not None else ([], [])
    results: dict[str, LeverResult] = {}
    for name, ipdw, iia in (
        ("baseline", False, False),
        ("input_in_arena", False, True),
        ("inplace_dw", True, False),
        ("inplace_dw+input_in_arena", True, True),
    ):
        live = _op_live(graph, 0, len(graph.ops), ipdw, iia)
        k = max(range(len(live)), key=lambda i: live[i])
        results[name] = LeverResult(name, live[k], graph.ops[k].name, 0 if iia else inp)
    stage_of: dict[str, set[str]] = {}
    # the rest of training (backward, updates): patching below its peak buys nothing
    floor = max((v for v, layer in zip(train_live, train_layers, strict=True) if not layer), default=0)
    for name, ipdw, iia in (
        ("patch", False, False),
        ("patch+input_in_arena", False, True),
        ("patch+inplace_dw", True, False),
        ("patch+inplace_dw+input_in_arena", True, True),
    ):
        pr, peak, where = best_patch(graph, ipdw, iia, grids, max_overhead, floor)
        results[name] = LeverResult(name, peak, where, 0 if iia else inp, patch=pr)
        stage_of[name] = {op.name for op in graph.ops[: pr.cut]}
    if program is not None and plan is not None:
        fixed = plan.total - plan.breakdown["arena"] - plan.breakdown["input"]
        scale = plan.arena / max(plan.lower_bound, 1)
        fwd = {op.name: i for i, op in enumerate(graph.ops)}
        base_live = _op_live(graph, 0, len(graph.ops), False, False)
        for r in results.values():
            stage = stage_of.get(r.name, set())  # empty for whole-tensor levers
            needed = sorted({s.layer for s in program.steps if s.phase != "forward" and s.layer in stage})
            if needed:
                r.note = f"not applicable: backward/update steps need the stage's layers {needed[:3]}"
                continue
            # forward steps: the stage peak inside a patched stage, else the step's live bytes moved by
            # the lever's difference at that op (training forward = inference forward + saved tensors)
            ipdw = "inplace_dw" in r.name
            lever_live = _op_live(graph, 0, len(graph.ops), ipdw, r.input_separate == 0 and r.patch is None)
            arena = 0
            for v, layer in zip(train_live, train_layers, strict=True):
                if layer and layer in stage:
                    v = r.patch.stage_peak if r.patch is not None else v
                elif layer and layer in fwd:
                    v = v - base_live[fwd[layer]] + lever_live[fwd[layer]]
                arena = max(arena, v)
            r.train_arena = align_up(int(arena * scale))
            r.total = r.train_arena + fixed + r.input_separate
    est = LeverEstimate(graph.name, graph.resolution, inp, results)
    if program is not None:
        est.partial_weight_savings = partial_weight_savings(program)
        est.backward_peak, est.backward_peak_inplace_dw = backward_peaks(program)
    return est


def backward_peaks(program: Program) -> tuple[int, int]:
    """Peak live bytes over the loss/backward/update steps, without and with an in-place depthwise
    input gradient (`dwconv2d_bwd_input_f32`, stride 1: `dx` overwrites `g` channel by channel with
    one f32 channel plane of scratch). Allowed when every later reader of `g` is a bias update (the
    compiler can run that first: it does not change the weights the input gradient uses)."""
    steps = list(program.steps)
    lts = compute_lifetimes(program, steps)
    live = live_bytes(list(lts.values()), len(steps))
    adjusted = [int(v) for v in live]
    for t, st in enumerate(steps):
        if st.kernel != "dwconv2d_bwd_input_f32" or int(st.attrs.get("stride", 1)) != 1:
            continue
        g, dx = lts.get(st.inputs.get("g", "")), lts.get(st.outputs.get("dx", ""))
        if g is None or dx is None:
            continue
        later = [u for u in steps[t + 1 : g.end + 1] if g.name in u.inputs.values()]
        if not all(u.kernel == "bias_grad_update" for u in later):
            continue
        gb = program.buffers[g.name]
        plane = align_up(4 * gb.shape[0] * gb.shape[1]) if len(gb.shape) == 3 else 0
        adjusted[t] += plane - min(g.size, dx.size)  # dx overwrites g
        for u in range(t + 1, g.end + 1):  # the bias update ran before: g is dead
            adjusted[u] -= g.size
    back = [t for t, st in enumerate(steps) if st.phase != "forward"]
    plain = max((int(live[t]) for t in back), default=0)
    improved = max((adjusted[t] for t in back), default=0)
    return plain, improved


def partial_weight_savings(program: Program) -> dict[str, int]:
    """Bytes of SRAM weight copies that only hold frozen input channels (ratio < 1): the saving if
    the compiler split such a weight into an SRAM part (first k input channels) and a flash part."""
    out: dict[str, int] = {}
    weights = program.scheme.get("weights", []) if isinstance(program.scheme, dict) else []
    for w in weights:
        buf = program.buffers.get(f"w:{w['layer']}")
        if buf is None or buf.storage.value != "sram" or w["channels"] >= w["in_channels"]:
            continue
        if f"wrest:{w['layer']}" in program.buffers or buf.shape[-1] != w["in_channels"]:
            continue  # already split (CompileOptions.split_weights): the SRAM copy holds only k channels
        out[w["layer"]] = buf.nbytes - buf.nbytes // w["in_channels"] * w["channels"]
    return out
