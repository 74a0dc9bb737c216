"""Patch-based execution of the first stage (MCUNetV2): the exact tiling the compiler emits.

The first `cut` ops of the network (a chain of convs, none of which the backward pass needs) run tile by
tile over a `grid` x `grid` split of the stage output. Each tile computes, for every stage tensor, a
*window* of rows x cols that may reach outside the image: a conv with padding p reading a window places
its padding inside the window, so the compiler runs it with pad = 0 on the tile; the window positions
outside the image must then hold the conv's `x_zero` (`tile_load_s8` fills them for the input,
`tile_fill_s8` refills them on an intermediate tile, whose producer computed don't-care values there).
Only the stage output is ever whole (`tile_store_s8` writes each tile into it), so the 64x64 high-channel
tensors never exist in full. Integer kernels only: bit-identical to the unpatched forward.

Windows are computed backwards from the output tile, without clipping: a conv with kernel k, stride s,
pad p needs input rows [a·s − p, (b−1)·s − p + k) for output rows [a, b). Positions computed outside the
image cost MACs (counted in `extra_macs`) but no correctness: they are overwritten by the fill before any
conv reads them as padding, and a 1x1 conv maps them to positions outside the image again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinytrain.ir import Graph, Op
from tinytrain.schedule.lifetimes import align_up

PATCH_GRIDS = (2, 3, 4, 5, 6, 8)
#: a configuration may recompute at most this fraction of the patched stage's MACs
MAX_STAGE_OVERHEAD = 0.35

Window = tuple[int, int, int, int]  # row0, row1, col0, col1 (half-open, unclipped)


@dataclass
class Tile:
    index: int
    out: Window  # window of the stage output (inside the image)
    windows: dict[str, Window]  # stage tensor (incl. the graph input) -> its window in this tile


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

    @property
    def extra_macs(self) -> int:
        return self.patched_macs - self.stage_macs

    @property
    def overhead(self) -> float:
        return self.extra_macs / max(self.stage_macs, 1)

    def to_dict(self) -> dict[str, object]:
        return {
            "cut": self.cut,
            "grid": self.grid,
            "last_layer": self.ops[-1],
            "stage_output": self.stage_output,
            "tiles": len(self.tiles),
            "stage_macs": self.stage_macs,
            "extra_macs": self.extra_macs,
            "overhead": round(self.overhead, 4),
            "stage_peak": self.stage_peak,
        }


def _split(n: int, p: int) -> list[tuple[int, int]]:
    b = [round(k * n / p) for k in range(p + 1)]
    return [(b[k], b[k + 1]) for k in range(p) if b[k + 1] > b[k]]


def chain_cuts(graph: Graph) -> list[int]:
    """n such that ops[:n] is a chain of convs from the graph input (each op reads the previous output),
    no later op reads a stage tensor other than ops[n-1].output, and the stage output has >= 8 rows."""
    cuts = []
    prev = graph.input
    for n, op in enumerate(graph.ops, start=1):
        if op.kind != "conv2d" or op.inputs != [prev] or op.kernel != op.weight.shape[2]:
            break
        prev = op.output
        if graph.tensors[op.output].shape[1] < 8:
            break
        inside = {o.output for o in graph.ops[:n]} | {graph.input}
        later = {t for o in graph.ops[n:] for t in o.inputs}
        if later & inside == {op.output}:
            cuts.append(n)
    return cuts


def _conv_in(op: Op, a: int, b: int) -> tuple[int, int]:
    k, s, p = int(op.kernel), int(op.stride), int(op.padding)
    return a * s - p, (b - 1) * s - p + k


def _macs(graph: Graph, op: Op, rows: int, cols: int) -> int:
    w = op.weight.shape  # OIHW; depthwise: [C, 1, kh, kw]
    return rows * cols * graph.tensors[op.output].shape[0] * w[1] * w[2] * w[3]


def plan_patch(graph: Graph, cut: int, grid: int, input_in_arena: bool = True) -> PatchPlan:
    """The tiling of ops[:cut] over a grid x grid split of the stage output (see the module doc)."""
    if cut not in chain_cuts(graph):
        raise ValueError(
            f"{graph.name}: the first {cut} ops are not a patchable chain of convs "
            f"(valid cuts: {chain_cuts(graph)})"
        )
    stage = graph.ops[:cut]
    out_t = stage[-1].output
    _, H, W = graph.tensors[out_t].shape
    if grid > min(H, W):
        raise ValueError(f"grid {grid} is finer than the {H}x{W} stage output")
    tiles: list[Tile] = []
    for r0, r1 in _split(H, grid):
        for c0, c1 in _split(W, grid):
            win: dict[str, Window] = {out_t: (r0, r1, c0, c1)}
            for op in reversed(stage):
                a, b, c, d = win[op.output]
                win[op.inputs[0]] = (*_conv_in(op, a, b), *_conv_in(op, c, d))
            tiles.append(Tile(len(tiles), (r0, r1, c0, c1), win))
    stage_macs = sum(_macs(graph, op, *graph.tensors[op.output].shape[1:]) for op in stage)
    patched = sum(
        _macs(graph, op, w[1] - w[0], w[3] - w[2])
        for t in tiles
        for op in stage
        for w in [t.windows[op.output]]
    )
    tensors = [graph.input] + [op.output for op in stage]
    tile_bytes = {
        x: max(
            align_up(graph.tensors[x].shape[0] * (w[1] - w[0]) * (w[3] - w[2]))
            for t in tiles
            for w in [t.windows[x]]
        )
        for x in tensors
    }
    whole = align_up(_numel(graph, out_t)) + (align_up(_numel(graph, graph.input)) if input_in_arena else 0)
    # during op j of a tile: its input tile and output tile (the first reads the whole input, the last
    # writes a tile that is then stored); the tile_load: the input tile alone
    peak = whole + tile_bytes[graph.input]
    for op in stage:
        peak = max(peak, whole + tile_bytes[op.inputs[0]] + tile_bytes[op.output])
    return PatchPlan(
        cut, grid, [op.name for op in stage], out_t, tiles, stage_macs, patched, peak, tile_bytes
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
        for p in grids:
            if p > min(h, w):
                continue
            pp = plan_patch(graph, cut, p, input_in_arena)
            if pp.overhead > max_overhead:
                continue
            key = (max(pp.stage_peak, floor), pp.extra_macs)
            if best is None or key < best[0]:
                best = (key, pp)
    return best[1] if best else None
