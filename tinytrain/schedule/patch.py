"""Patch-based execution of the first stage (MCUNetV2): the exact tiling the compiler emits.

The first `cut` ops of the network (convs and residual adds: a chain, or inverted-residual blocks with their
skip connections; none of which the backward pass needs) run tile by tile over a `grid` x `grid` split of
the stage output. Only the stage output is ever whole (`tile_store_s8` writes each tile into it), so the
large high-channel tensors of the first blocks never exist in full. Integer kernels only: bit-identical to
the unpatched forward.

Windows are computed backwards from the output tile: a conv with kernel k, stride s, pad p needs input rows
[a·s − p, (b−1)·s − p + k) for output rows [a, b); a residual add needs its own window of both inputs; a
tensor read by several ops gets the bounding box of their windows. Every op computes only the part of its
window inside the image (`Tile.held`: nothing is computed twice within a tile, nothing outside the image),
with pad = 0 on its tile. A reader whose window differs from the tile it reads gets a copy made by
`tile_load_s8`: a crop of a skip connection's larger tile, or, at the image border, the tile with the
reading conv's padding (its `x_zero`) around it. The graph input's tile is loaded with its padding.
Halos (rows and columns shared by neighbouring tiles) are recomputed: `extra_macs`. The unclipped variant
(`clip=False`, the only one before stages reached through residual blocks) computes each op's whole window,
also outside the image (more recomputed MACs), and `tile_fill_s8` then writes the padding into the tile in
place: no padded copy, which can save memory at the border tiles; `choose_patch` weighs both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinytrain.ir import Graph, Op
from tinytrain.schedule.lifetimes import align_up

PATCH_GRIDS = (2, 3, 4, 5, 6, 8)
#: a configuration may recompute at most this fraction of the patched stage's MACs
MAX_STAGE_OVERHEAD = 0.35
#: all patched stages together may recompute at most this fraction of the network's forward MACs
MAX_NETWORK_OVERHEAD = 0.15

Window = tuple[int, int, int, int]  # row0, row1, col0, col1 (half-open, unclipped)


@dataclass
class Tile:
    index: int
    out: Window  # window of the stage output (inside the image)
    windows: dict[str, Window]  # stage tensor (incl. the graph input) -> the window its readers want (bbox)
    #: stage tensor -> the window its tile buffer holds: the graph input's whole window (tile_load_s8 fills
    #: what lies outside the image), an op output's window clipped to the image (computed, nothing wasted)
    held: dict[str, Window] = field(default_factory=dict)


@dataclass
class PatchPlan:
    cut: int  # the first `cut` ops are patched
    grid: int
    ops: list[str]  # their names
    stage_output: str
    tiles: list[Tile]
    stage_macs: int  # MACs of the stage run whole
    patched_macs: int  # MACs of the stage run tile by tile (halos and out-of-image positions included)
    stage_peak: int  # estimated arena bytes live during the patched stage (input in the arena included)
    tile_bytes: dict[str, int] = field(default_factory=dict)  # tensor -> largest tile buffer (aligned)
    clipped: bool = True  # ops compute only inside the image (else their whole window, see plan_patch)
    start: int = 0  # the stage is ops[start:cut] (0: the first stage, from the graph input)
    input: str = ""  # the tensor the stage reads (tile by tile) from outside: the graph input when start = 0

    @property
    def extra_macs(self) -> int:
        return self.patched_macs - self.stage_macs

    @property
    def overhead(self) -> float:
        return self.extra_macs / max(self.stage_macs, 1)

    def to_dict(self) -> dict[str, object]:
        return {
            "start": self.start,
            "cut": self.cut,
            "grid": self.grid,
            "last_layer": self.ops[-1],
            "stage_output": self.stage_output,
            "tiles": len(self.tiles),
            "stage_macs": self.stage_macs,
            "extra_macs": self.extra_macs,
            "overhead": round(self.overhead, 4),
            "stage_peak": self.stage_peak,
            "clipped": self.clipped,
        }


def _split(n: int, p: int) -> list[tuple[int, int]]:
    b = [round(k * n / p) for k in range(p + 1)]
    return [(b[k], b[k + 1]) for k in range(p) if b[k + 1] > b[k]]


def _stage_op_ok(graph: Graph, op: Op, inside: set[str]) -> bool:
    """A conv with a square kernel, or a residual add, reading only tensors of the stage so far."""
    if not op.inputs or not set(op.inputs) <= inside:
        return False
    if op.kind == "conv2d":
        return len(op.inputs) == 1 and op.kernel == op.weight.shape[2]
    return op.kind == "add" and len(op.inputs) == 2


def stage_input(graph: Graph, start: int) -> str:
    """The one tensor a stage starting at op `start` reads from outside: the graph input for the first stage,
    else the input of its first op."""
    return graph.input if start == 0 else graph.ops[start].inputs[0]


def chain_cuts(graph: Graph, start: int = 0) -> list[int]:
    """n such that ops[start:n] run from the stage input (the graph input, or the input of ops[start])
    through convs and residual adds only (each reading tensors of the stage: a chain, or inverted-residual
    blocks with their skip connections), no later op reads a stage tensor other than ops[n-1].output (a
    later stage's input may be read again), and the stage output has >= 8 rows."""
    if start >= len(graph.ops) or (start > 0 and len(graph.ops[start].inputs) != 1):
        return []
    cuts = []
    src = stage_input(graph, start)
    inside = {src}
    for n, op in enumerate(graph.ops[start:], start=start + 1):
        if not _stage_op_ok(graph, op, inside):
            break
        inside.add(op.output)
        if graph.tensors[op.output].shape[1] < 8:
            break
        later = {t for o in graph.ops[n:] for t in o.inputs}
        if later & (inside if start == 0 else inside - {src}) == {op.output}:
            cuts.append(n)
    return cuts


def _conv_in(op: Op, a: int, b: int) -> tuple[int, int]:
    k, s, p = int(op.kernel), int(op.stride), int(op.padding)
    return a * s - p, (b - 1) * s - p + k


def op_input_window(op: Op, out: Window) -> Window:
    """The window of each input `op` reads to compute the window `out` of its output (unpadded on the tile):
    a conv's receptive field, an add's own window."""
    if op.kind == "add":
        return out
    a, b, c, d = out
    return (*_conv_in(op, a, b), *_conv_in(op, c, d))


def _bbox(u: Window | None, v: Window) -> Window:
    if u is None:
        return v
    return (min(u[0], v[0]), max(u[1], v[1]), min(u[2], v[2]), max(u[3], v[3]))


def _macs(graph: Graph, op: Op, rows: int, cols: int) -> int:
    if op.kind != "conv2d":
        return 0
    w = op.weight.shape  # OIHW; depthwise: [C, 1, kh, kw]
    return rows * cols * graph.tensors[op.output].shape[0] * w[1] * w[2] * w[3]


def needs_crop(window: Window, wanted: Window) -> bool:
    """A reader wanting `wanted` of a tile buffer that holds `window` reads a copy (tile_load_s8): a crop of
    a skip connection's larger tile, or at the image border the tile with the reading conv's padding around
    it."""
    return window != wanted


def _clip(w: Window, h: int, wd: int) -> Window:
    return (max(w[0], 0), min(w[1], h), max(w[2], 0), min(w[3], wd))


def plan_patch(
    graph: Graph, cut: int, grid: int, input_in_arena: bool = True, clip: bool = True, start: int = 0
) -> PatchPlan:
    """The tiling of ops[:cut] over a grid x grid split of the stage output (see the module doc). `clip`
    False: every op computes its whole window, also outside the image (recomputed MACs, but no padded copies:
    `tile_fill_s8` puts the padding in place), which can take less memory at the border tiles. `start` > 0:
    a later stage ops[start:cut], whose input (an activation, whole in the arena) is loaded tile by tile."""
    if cut not in chain_cuts(graph, start):
        raise ValueError(
            f"{graph.name}: ops {start}..{cut - 1} are not a patchable stage of convs and residual adds "
            f"(valid cuts from op {start}: {chain_cuts(graph, start)})"
        )
    stage = graph.ops[start:cut]
    src = stage_input(graph, start)
    out_t = stage[-1].output
    _, H, W = graph.tensors[out_t].shape
    if grid > min(H, W):
        raise ValueError(f"grid {grid} is finer than the {H}x{W} stage output")
    tiles: list[Tile] = []
    for r0, r1 in _split(H, grid):
        for c0, c1 in _split(W, grid):
            win: dict[str, Window] = {out_t: (r0, r1, c0, c1)}
            held: dict[str, Window] = {}
            for op in reversed(stage):
                _, h, wd = graph.tensors[op.output].shape
                held[op.output] = _clip(win[op.output], h, wd) if clip else win[op.output]
                want = op_input_window(op, held[op.output])
                for t in op.inputs:
                    win[t] = _bbox(win.get(t), want)
            held[src] = win[src]
            tiles.append(Tile(len(tiles), (r0, r1, c0, c1), win, held))
    stage_macs = sum(_macs(graph, op, *graph.tensors[op.output].shape[1:]) for op in stage)
    patched = sum(
        _macs(graph, op, w[1] - w[0], w[3] - w[2]) for t in tiles for op in stage for w in [t.held[op.output]]
    )
    tensors = [src] + [op.output for op in stage]

    def nbytes(x: str, w: Window) -> int:
        return align_up(graph.tensors[x].shape[0] * (w[1] - w[0]) * (w[3] - w[2]))

    tile_bytes = {x: max(nbytes(x, t.held[x]) for t in tiles) for x in tensors}
    whole = align_up(_numel(graph, out_t)) + (align_up(_numel(graph, src)) if input_in_arena or start else 0)
    # a tile buffer lives from its producer (the input: the tile_load) to its last reader; during op j: the
    # live buffers, op j's output buffer and the copies op j reads (a crop or a padded border)
    produced = {src: -1} | {op.output: j for j, op in enumerate(stage)}
    last = {x: max((j for j, op in enumerate(stage) if x in op.inputs), default=len(stage)) for x in tensors}
    peak = 0
    for t in tiles:
        peak = max(peak, nbytes(src, t.held[src]))
        for j, op in enumerate(stage):
            live = sum(nbytes(x, t.held[x]) for x in tensors if produced[x] < j <= last[x])
            want = op_input_window(op, t.held[op.output])
            copies = sum(nbytes(x, want) for x in set(op.inputs) if needs_crop(t.held[x], want))
            peak = max(peak, live + nbytes(op.output, t.held[op.output]) + copies)
    return PatchPlan(
        cut,
        grid,
        [op.name for op in stage],
        out_t,
        tiles,
        stage_macs,
        patched,
        whole + peak,
        tile_bytes,
        clip,
        start,
        src,
    )


def _numel(graph: Graph, t: str) -> int:
    c, h, w = graph.tensors[t].shape
    return c * h * w


def choose_patch(
    graph: Graph,
    floors: dict[int, int] | None = None,
    input_in_arena: bool = True,
    grids: tuple[int, ...] = PATCH_GRIDS,
    max_overhead: float = MAX_STAGE_OVERHEAD,
    cuts: tuple[int, ...] | None = None,
) -> PatchPlan | None:
    """The configuration with the smallest arena peak, counting nothing below `floors[cut]` (the peak of
    the rest of the program for that cut: going lower buys nothing), then the fewest recomputed MACs, among
    those recomputing at most `max_overhead` of the stage's MACs. None if no cut is patchable."""
    best: tuple[tuple[int, int], PatchPlan] | None = None
    for cut in chain_cuts(graph) if cuts is None else cuts:
        _, h, w = graph.tensors[graph.ops[cut - 1].output].shape
        floor = (floors or {}).get(cut, 0)
        for p, clip in ((p, c) for p in grids for c in (True, False)):
            if p > min(h, w):
                continue
            pp = plan_patch(graph, cut, p, input_in_arena, clip)
            if pp.overhead > max_overhead:
                continue
            key = (max(pp.stage_peak, floor), pp.extra_macs)
            if best is None or key < best[0]:
                best = (key, pp)
    return best[1] if best else None
