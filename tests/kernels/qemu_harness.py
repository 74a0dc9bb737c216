"""Kernel-test firmware: numpy cases compiled into a bare-metal ELF, run in QEMU, compared bit for bit.

Each case embeds its inputs and the numpy reference's expected outputs as C arrays, calls one runtime
kernel between `tt_phase_begin/end` (so the instruction count per call is measured, SysTick resolution),
and reports the number of differing bytes as a metric. Also runnable as a script to print
instructions per MAC of the main kernels on MCUNet-like shapes:

    .venv/bin/python -m tests.kernels.qemu_harness [m7|m4] [--no-fma]

(The default build is the fused multiply-add contract, TT_FMA 1; --no-fma: the two-rounding option,
-DTT_FMA=0, expected values from the reference under fma_mode(False). --fma is accepted: the default.)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import tinytrain.kernels as K
from tinytrain.kernels.fma import fma_f32, fma_mode
from tinytrain.ops import avgpool, conv2d, residual

RUNTIME = Path(__file__).resolve().parents[2] / "firmware" / "runtime"
F32 = np.float32
_CTYPE = {
    np.dtype(np.int8): "int8_t",
    np.dtype(np.uint8): "uint8_t",
    np.dtype(np.int32): "int32_t",
    np.dtype(np.float32): "float",
}


def _lit(a: np.ndarray) -> str:
    flat = a.reshape(-1)
    if a.dtype == F32:
        return ", ".join(
            float(v).hex() + "f" if np.isfinite(v) else ("-" if v < 0 else "") + "INFINITY" for v in flat
        )
    return ", ".join(str(int(v)) for v in flat)


@dataclass
class Case:
    """One kernel call: `call` is C using the array names; `inputs` const, `inout` initialised + checked."""

    name: str
    call: str
    inputs: dict[str, np.ndarray] = field(default_factory=dict)
    # name -> (initial, expected)
    inout: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    outputs: dict[str, np.ndarray] = field(default_factory=dict)  # name -> expected
    macs: int = 0
    scratch: dict[str, int] = field(default_factory=dict)  # name -> bytes, not checked


def firmware_source(cases: list[Case]) -> str:
    lines = [
        "#include <math.h>",
        "#include <stdint.h>",
        "#include <string.h>",
        '#include "tt_board.h"',
        '#include "tt_kernels.h"',
        '#include "tt_memory_ops.h"',
        "",
    ]
    body = []
    for i, c in enumerate(cases):
        p = f"c{i}_"
        for n, a in c.inputs.items():
            lines.append(f"static const {_CTYPE[a.dtype]} {p}{n}[{max(a.size, 1)}] = {{{_lit(a)}}};")
        for n, (a0, a1) in c.inout.items():
            lines.append(f"static {_CTYPE[a0.dtype]} {p}{n}[{max(a0.size, 1)}] = {{{_lit(a0)}}};")
            lines.append(f"static const {_CTYPE[a1.dtype]} {p}{n}_exp[{max(a1.size, 1)}] = {{{_lit(a1)}}};")
        for n, a in c.outputs.items():
            lines.append(f"static {_CTYPE[a.dtype]} {p}{n}[{max(a.size, 1)}];")
            lines.append(f"static const {_CTYPE[a.dtype]} {p}{n}_exp[{max(a.size, 1)}] = {{{_lit(a)}}};")
        for n, nbytes in c.scratch.items():
            lines.append(f"static int8_t {p}{n}[{max(nbytes, 1)}] __attribute__((aligned(8)));")
        call = c.call
        for n in sorted([*c.inputs, *c.inout, *c.outputs, *c.scratch], key=len, reverse=True):
            call = call.replace(f"@{n}", f"{p}{n}")
        body.append(f'  tt_phase_begin("{c.name}");')
        body.append(f"  {call};")
        body.append(f'  tt_phase_end("{c.name}");')
        body.append("  bad = 0;")
        for n in [*c.inout, *c.outputs]:
            body.append(f"  bad += diff(&{p}{n}, &{p}{n}_exp, sizeof {p}{n});")
        body.append(f'  tt_metric_int("{c.name}", bad);')
        body.append("  total += bad;")
    lines += [
        "",
        "static int32_t diff(const void *a, const void *b, size_t n) {",
        "  const uint8_t *x = a, *y = b;",
        "  int32_t d = 0;",
        "  for (size_t i = 0; i < n; i++) d += x[i] != y[i];",
        "  return d;",
        "}",
        "",
        "uint32_t rng_cell;",
        "float loss_cell;",
        "",
        "int main(void) {",
        "  tt_board_init();",
        "  int32_t bad, total = 0;",
        *body,
        "  tt_exit(total ? 1 : 0);",
        "}",
    ]
    return "\n".join(lines) + "\n"


def run_cases(cases: list[Case], board: str, out_dir: Path, profile: bool = False, fma: bool = True):  # type: ignore[no-untyped-def]
    """Build and run; returns the emulation RunRecord. fma: the contract the build uses (-DTT_FMA=1, the
    default; False: -DTT_FMA=0, with the cases' expected values generated under `fma_mode(False)`)."""
    from emulation import build_firmware, run_elf

    out_dir.mkdir(parents=True, exist_ok=True)
    src = out_dir / "kernel_test.c"
    src.write_text(firmware_source(cases))
    res = build_firmware(
        board,
        [src, *sorted(RUNTIME.glob("*.c"))],
        [RUNTIME],
        out_dir,
        name="kernel_test",
        extra_cflags=["-Wno-unused-function", f"-DTT_FMA={int(fma)}"],
        stack_min=8192,
    )
    return run_elf(res.elf, board, timeout=120, run_dir=out_dir / "run", profile=profile)


def _s8(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(-128, 128, shape, dtype=np.int8)


INT32_MAX, INT32_MIN = 2**31 - 1, -(2**31)


def extreme_bias(rng: np.random.Generator, n: int, near: int) -> np.ndarray:
    """int32 biases at and near +-2^31 (the zoo's dead channels): per channel, cycling, 2^31 - 1, -2^31,
    within `near` of either limit (so acc + bias overflows for some pixels and not for others: pass about the
    accumulators' magnitude), 2^31 - 2, -2^31 + 1, and an ordinary bias."""
    near = max(int(near), 1)
    kinds = [
        lambda: INT32_MAX,
        lambda: INT32_MIN,
        lambda: INT32_MAX - int(rng.integers(0, near)),
        lambda: INT32_MIN + int(rng.integers(0, near)),
        lambda: INT32_MAX - 1,
        lambda: INT32_MIN + 1,
        lambda: int(rng.integers(-4000, 4000)),
    ]
    start = int(rng.integers(0, len(kinds)))
    return np.array([kinds[(start + i) % len(kinds)]() for i in range(n)], np.int64).astype(np.int32)


def fold_edge_bias(rng: np.random.Generator, n: int) -> np.ndarray:
    """int32 biases on both sides of the depthwise 3x3 kernel's fold limit (|bias| <= 2^31 - 2^19 starts the
    sums, a larger one is added with QADD), at the int32 limits and ordinary, cycling per channel."""
    kinds = [
        INT32_MAX - (1 << 19),
        INT32_MAX - (1 << 19) + 1,
        INT32_MIN + (1 << 19),
        INT32_MIN + (1 << 19) - 1,
        INT32_MAX,
        INT32_MIN,
        int(rng.integers(-4000, 4000)),
    ]
    return np.array([kinds[i % len(kinds)] for i in range(n)], np.int64).astype(np.int32)


def extreme_m(rng: np.random.Generator, n: int) -> np.ndarray:
    """Multipliers that keep f32(+-2^31) * m inside +-256 (|v| up to ~236), so a bias at the limit gives an
    output that depends on the bias, and a wrapped sum would flip its sign."""
    return rng.uniform(1e-9, 1.1e-7, n).astype(F32)


def conv_case(
    rng: np.random.Generator, h: int, ci: int, co: int, k: int, stride: int, sat: bool = False
) -> Case:
    pad = (k - 1) // 2
    x, w = _s8(rng, (h, h, ci)), _s8(rng, (co, k, k, ci))
    b = rng.integers(-4000, 4000, co).astype(np.int32)
    m = rng.uniform(2e-4, 2e-3, co).astype(F32)
    if sat:
        b, m = extreme_bias(rng, co, 6000 * int(np.sqrt(k * k * ci))), extreme_m(rng, co)
    y = conv2d.conv2d_s8(x, w, b, m, -7, 3, stride, pad)
    ho = y.shape[0]
    return Case(
        f"conv{k}x{k}_s{stride}_{h}x{h}_{ci}_{co}" + ("_bsat" if sat else ""),
        f"tt_conv2d_s8(@x, {h}, {h}, {ci}, @w, {co}, {k}, {k}, @b, @m, -7, 3, {stride}, {pad}, @y)",
        {"x": x, "w": w, "b": b, "m": m},
        outputs={"y": y},
        macs=ho * ho * co * k * k * ci,
    )


def dw_case(
    rng: np.random.Generator,
    h: int,
    c: int,
    k: int,
    stride: int,
    wd: int | None = None,
    m_hi: float = 1e-2,
    sat: bool = False,
    fold_edge: bool = False,
) -> Case:
    pad = (k - 1) // 2
    wd = h if wd is None else wd
    x, w = _s8(rng, (h, wd, c)), _s8(rng, (k, k, c))
    b = rng.integers(-4000, 4000, c).astype(np.int32)
    m = rng.uniform(m_hi / 10, m_hi, c).astype(F32)
    if sat:
        b, m = extreme_bias(rng, c, 6000 * k), extreme_m(rng, c)
    if fold_edge:
        b, m = fold_edge_bias(rng, c), extreme_m(rng, c)
    y = conv2d.dwconv2d_s8(x, w, b, m, 5, -128, stride, pad)
    ho, wo = y.shape[:2]
    size = f"{h}x{wd}" if wd != h else f"{h}x{h}"
    return Case(
        f"dw{k}x{k}_s{stride}_{size}_{c}"
        + ("_sat" if m_hi > 0.1 else "")
        + ("_bsat" if sat else "")
        + ("_bfold" if fold_edge else ""),
        f"tt_dwconv2d_s8(@x, {h}, {wd}, {c}, @w, {k}, {k}, @b, @m, 5, -128, {stride}, {pad}, @y)",
        {"x": x, "w": w, "b": b, "m": m},
        outputs={"y": y},
        macs=ho * wo * c * k * k,
    )


def split_case(
    rng: np.random.Generator, h: int, ci: int, k: int, co: int, kernel: int, stride: int, sat: bool = True
) -> Case:
    """tt_conv2d_split_s8 (tt_memory_ops.c) with biases at and near +-2^31 (sat), else ordinary biases and
    multipliers (outputs spread over the int8 range: every accumulator error shows)."""
    pad = (kernel - 1) // 2
    x, w = _s8(rng, (h, h, ci)), _s8(rng, (co, kernel, kernel, ci))
    wa, wb = np.ascontiguousarray(w[..., :k]), np.ascontiguousarray(w[..., k:])
    if sat:
        b, m = extreme_bias(rng, co, 6000 * int(np.sqrt(kernel * kernel * ci))), extreme_m(rng, co)
    else:
        b, m = rng.integers(-4000, 4000, co).astype(np.int32), rng.uniform(2e-4, 2e-3, co).astype(F32)
    y = conv2d.conv2d_split_s8(x, wa, wb, b, m, 9, -2, stride, pad)
    return Case(
        f"split{kernel}x{kernel}_s{stride}_{h}_{ci}_{k}_{co}" + ("_bsat" if sat else ""),
        f"tt_conv2d_split_s8(@x, {h}, {h}, {ci}, @wa, @wb, {co}, {kernel}, {kernel}, {k}, @b, @m, "
        f"9, -2, {stride}, {pad}, @y)",
        {"x": x, "wa": wa, "wb": wb, "b": b, "m": m},
        outputs={"y": y},
        macs=y.shape[0] * y.shape[1] * co * kernel * kernel * ci,
    )


def q_edge_m(rng: np.random.Generator, n: int) -> np.ndarray:
    """Multipliers just off a half of f32(2^31) * m (alternately above and below): the requantization of a sum
    at the int32 limit L differs from that of L +- 2^19, so the in-place 3x3 four-channel path must take its
    saturating (QADD) route for those channels instead of reading the sum unsigned."""
    k = rng.integers(-120, 120, n) + 0.5
    side = np.where(np.arange(n) % 2 == 0, 1 + 2.0**-14, 1 - 2.0**-14)
    return (k / 2.0**31 * side).astype(F32)


def dw_inplace_case(
    rng: np.random.Generator,
    h: int,
    c: int,
    k: int,
    fold_edge: bool = False,
    wd: int | None = None,
    q_edge: bool = False,
    y_zero: int = 11,
) -> Case:
    """tt_dwconv2d_s8_inplace (tt_memory_ops.c) with biases at and near +-2^31 (fold_edge: around the 3x3
    kernel's fold limit; q_edge: multipliers that force the saturating route, `q_edge_m`); wd: the width
    (default h)."""
    pad = (k - 1) // 2
    wd = h if wd is None else wd
    x, w = _s8(rng, (h, wd, c)), _s8(rng, (k, k, c))
    b = fold_edge_bias(rng, c) if fold_edge else extreme_bias(rng, c, 6000 * k)
    m = q_edge_m(rng, c) if q_edge else extreme_m(rng, c)
    y = conv2d.dwconv2d_s8_inplace(x, w, b, m, -4, y_zero, 1, pad)
    tag = "bfold" if fold_edge else "bsat"
    return Case(
        f"dw_inplace{k}x{k}_{h}" + (f"x{wd}" if wd != h else "") + f"_{c}_{tag}" + ("_q" if q_edge else ""),
        f"tt_dwconv2d_s8_inplace(@x, {h}, {wd}, {c}, @w, {k}, {k}, @b, @m, -4, {y_zero}, {pad}, @scr)",
        {"w": w, "b": b, "m": m},
        {"x": (x, y)},
        scratch={"scr": h * wd},
        macs=h * wd * c * k * k,
    )


def irb_case(
    rng: np.random.Generator, h: int, ci: int, e: int, co2: int, k: int, stride: int, rule: str = "nearest"
) -> Case:
    """tt_ir_block_bwd_f32 (channel-wise fused block backward), every part on: masks, both bias updates, the
    block input gradient and the pw1 weight update. macs: the pw2 and dw input gradients, the dx terms and the
    pw1 weight gradient."""
    pad = (k - 1) // 2
    ho = K.out_size(h, k, stride, pad)
    g = (rng.standard_normal((ho, ho, co2)) * 0.02).astype(F32)
    w2, w_dw, w1 = _s8(rng, (co2, e)), _s8(rng, (k, k, e)), rng.integers(-127, 128, (e, ci), dtype=np.int8)
    s_w2, s_w_dw, s_w1 = (rng.uniform(1e-3, 2e-2, n).astype(F32) for n in (co2, e, e))
    bits_dw = rng.integers(0, 256, K.mask_bytes(ho * ho * e)).astype(np.uint8)
    bits_pw1 = rng.integers(0, 256, K.mask_bytes(h * h * e)).astype(np.uint8)
    x1 = _s8(rng, (h, h, ci))
    b_dw0, b10 = (rng.integers(-900, 900, e).astype(np.int32) for _ in range(2))
    qb_dw, qb1, q1 = (s_w_dw * 300).astype(F32), (s_w1 * 200).astype(F32), (1 / s_w1).astype(F32)
    b_dw, b1, w1n = b_dw0.copy(), b10.copy(), w1.copy()
    r = K.Xorshift32(4321)
    dx = conv2d.ir_block_bwd_f32(
        g,
        w2,
        s_w2,
        w_dw,
        s_w_dw,
        h,
        h,
        stride,
        pad,
        bits_dw,
        bits_pw1,
        b_dw,
        qb_dw,
        w1n,
        None,
        s_w1,
        b1,
        qb1,
        x1,
        q1,
        None,
        -3,
        ci,
        F32(-0.37),
        rule,
        r,
    )[0]
    call = (
        "{ rng_cell = 4321u; tt_ir_block_bwd_args a = {"
        f".g = @g, .ho = {ho}, .wo = {ho}, .co2 = {co2}, .e = {e}, .w2 = @w2, .s_w2 = @s_w2, "
        f".bits_dw = @bits_dw, .w_dw = @w_dw, .s_w_dw = @s_w_dw, .kh = {k}, .kw = {k}, "
        f".stride = {stride}, .pad = {pad}, .h = {h}, .w = {h}, .b_dw = @b_dw, .qb_dw = @qb_dw, "
        f".bits_pw1 = @bits_pw1, .w1 = @w1, .w1_rest = 0, .ci = {ci}, .k1 = {ci}, .s_w1 = @s_w1, "
        f".dx = @dx, .b1 = @b1, .qb1 = @qb1, .x1 = @x1, .x1_c = {ci}, .x_zero = -3, .k_in = {ci}, "
        f".q1 = @q1, .shadow1 = 0, .neg_lr = -0.37f, .rule = {_RULE[rule]}, .rng = &rng_cell}}; "
        "tt_ir_block_bwd_f32(&a, (float *)@scr); "
        f'if (rng_cell != {r.state}u) tt_metric_int("rng_state_mismatch", 1); }}'
    )
    macs = e * (ho * ho * co2 + ho * ho * k * k + 2 * h * h * ci)
    return Case(
        f"ir_block_bwd_{h}_{ci}_{e}_{co2}_k{k}s{stride}_{rule}",
        call,
        {
            "g": g,
            "w2": w2,
            "s_w2": s_w2,
            "bits_dw": bits_dw,
            "w_dw": w_dw,
            "s_w_dw": s_w_dw,
            "qb_dw": qb_dw,
            "bits_pw1": bits_pw1,
            "s_w1": s_w1,
            "qb1": qb1,
            "x1": x1,
            "q1": q1,
        },
        {"b_dw": (b_dw0, b_dw), "b1": (b10, b1), "w1": (w1, w1n)},
        outputs={"dx": dx},
        macs=macs,
        scratch={"scr": conv2d.ir_block_bwd_f32_scratch_bytes((ho, ho), h, h)},
    )


def bwd1x1_case(rng: np.random.Generator, p: int, co: int, ci: int) -> Case:
    g = rng.standard_normal((p, co)).astype(F32)
    w = _s8(rng, (co, ci))
    s = rng.uniform(1e-3, 1e-1, co).astype(F32)
    return Case(
        f"bwd_in1x1_{p}_{co}_{ci}",
        f"tt_conv2d_bwd_input_f32(@g, {p}, {co}, @w, {ci}, @s, @dx)",
        {"g": g, "w": w, "s": s},
        outputs={"dx": conv2d.conv2d_bwd_input_f32(g, w, s)},
        macs=p * co * ci,
    )


def bwd_dw_case(rng: np.random.Generator, h: int, c: int, k: int, stride: int) -> Case:
    pad = (k - 1) // 2
    ho = K.out_size(h, k, stride, pad)
    g = rng.standard_normal((ho, ho, c)).astype(F32)
    w = _s8(rng, (k, k, c))
    s = rng.uniform(1e-3, 1e-1, c).astype(F32)
    dx = conv2d.dwconv2d_bwd_input_f32(g, w, s, h, h, stride, pad)
    return Case(
        f"bwd_in_dw{k}x{k}_s{stride}_{h}_{c}",
        f"tt_dwconv2d_bwd_input_f32(@g, {ho}, {ho}, {c}, @w, {k}, {k}, @s, {h}, {h}, {stride}, {pad}, @dx)",
        {"g": g, "w": w, "s": s},
        outputs={"dx": dx},
        macs=ho * ho * c * k * k,
    )


_RULE = {"nearest": 0, "stochastic": 1, "shadow": 2}


def wgrad_case(
    rng: np.random.Generator,
    h: int,
    ci: int,
    co: int,
    k: int,
    stride: int,
    k_in: int,
    rule: str,
    dw: bool = False,
    x_zero: int = 2,
) -> Case:
    pad = (k - 1) // 2
    ho = K.out_size(h, k, stride, pad)
    x = _s8(rng, (h, h, ci))
    q = rng.uniform(0.1, 3.0, co).astype(F32)
    seed = 12345
    r = K.Xorshift32(seed)
    if dw:
        g = rng.standard_normal((ho, ho, ci)).astype(F32)
        w0 = rng.integers(-127, 128, (k, k, ci), dtype=np.int8)
        fn, shape_args, n = "tt_dwconv2d_wgrad_update", f"{k}, {k}, {ci}", k * k * k_in
    else:
        g = rng.standard_normal((ho, ho, co)).astype(F32)
        w0 = rng.integers(-127, 128, (co, k, k, ci), dtype=np.int8)
        fn, shape_args, n = "tt_conv2d_wgrad_update", f"{co}, {k}, {k}, {ci}", co * k * k * k_in
    w = w0.copy()
    sh0 = K.shadow_init(w0, k_in) if rule == "shadow" else np.zeros(1, F32)
    sh = sh0.copy()
    shadow = sh if rule == "shadow" else None
    getattr(conv2d, fn[3:])(g, x, x_zero, w, k_in, q, -0.7, rule, r, shadow, stride, pad)
    inout = {"w": (w0, w)}
    if rule == "shadow":
        inout["sh"] = (sh0, sh)
    sh_arg = "@sh" if rule == "shadow" else "0"
    call = (
        f"rng_cell = {seed}u; {fn}(@g, @x, {h}, {h}, {ci}, {x_zero}, @w, {shape_args}, {k_in}, @q, "
        f"-0.7f, {_RULE[rule]}, &rng_cell, {sh_arg}, {stride}, {pad}); "
        f'if (rng_cell != {r.state}u) tt_metric_int("rng_state_mismatch", 1)'
    )
    macs = ho * ho * n
    return Case(
        f"wgrad_{'dw' if dw else 'conv'}{k}x{k}_{h}_{ci}_{co}_{k_in}_{rule}_z{x_zero}",
        call,
        {"g": g, "x": x, "q": q},
        inout,
        macs=macs,
    )


def fma_inputs(rng: np.random.Generator, n_random: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Operands (a, b, c) float32 for checking a single-rounding fma: the hard cases first, then random ones.

    Hard: exact ties of the product (rounded to even), sums one binary64 rounding away from a float32 tie (the
    double-rounding trap a plain f32(f64(a*b) + c) falls into), total and partial cancellation (c = -f32(a*b):
    the result is the product's rounding error), subnormal products and results, large exponent differences
    both ways, signed zeros, results at the float32 overflow edge, infinities."""
    f = F32
    one12 = f(1 + 2.0**-12)
    rows: list[tuple[float, float, float]] = []
    for sa in (1.0, -1.0):
        for sc in (1.0, -1.0):
            for k in (0, 3, -7, 40, -60):
                sc2 = 2.0**k
                # a*b = 1 + 2^-11 + 2^-24: a float32 tie; c nudges it a binary64 ulp or less either side
                for c in (0.0, 2.0**-80, 2.0**-60, 2.0**-53, 2.0**-30):
                    rows.append((sa * float(one12) * sc2, float(one12), sc * c * sc2))
    for a, b in (
        (1 + 2.0**-23, 1 - 2.0**-23),
        (3.0, 1.0 / 3.0),
        (0.1, 10.0),
        (1.7, 1.3),
        (2.0**-70, 2.0**-70),
    ):
        pa, pb = f(a), f(b)
        p = float(f(pa * pb))
        rows += [
            (float(pa), float(pb), -p),
            (float(pa), float(pb), -p * (1 + 2.0**-20)),
            (-float(pa), float(pb), p),
        ]
    for e in (-140, -130, -126, -100, -75):  # subnormal products / results
        a, b = f(2.0 ** (e // 2) * 1.5), f(2.0 ** (e - e // 2) * 1.25)
        rows += [
            (float(a), float(b), 0.0),
            (float(a), float(b), 2.0**-149),
            (float(a), float(b), -(2.0**-140)),
        ]
    for a, b, c in (
        (1.0, 1.0, 2.0**100),
        (2.0**60, 2.0**60, 1.0),
        (1.0, 2.0**-100, 1.0),
        (2.0**-60, 3.0, -1.0),
    ):
        rows.append((a, b, c))
    rows += [(0.0, 5.0, -0.0), (-0.0, 5.0, 0.0), (-0.0, 5.0, -0.0), (2.0**-80, 2.0**-80, -0.0)]
    big = float(np.finfo(F32).max)
    rows += [(big, 1.0, big), (big, 0.5, -big), (2.0**64, 2.0**64, 1.0), (float("inf"), 1.0, 1.0)]
    hard = np.array(rows, np.float64).astype(F32)
    # random: significands uniform, exponents spread so products and sums cover cancellation and rounding
    bits = rng.integers(0, 2**23, (n_random, 3)).astype(np.uint32)
    ex = rng.integers(-20, 21, (n_random, 3))
    ex[:, 2] += ex[:, 0] + ex[:, 1] + rng.integers(-30, 31, n_random)
    sign = rng.integers(0, 2, (n_random, 3)).astype(np.uint32) << 31
    rnd = ((bits | ((ex + 127).clip(1, 254).astype(np.uint32) << 23)) | sign).view(F32)
    allv = np.concatenate([hard, rnd])
    return allv[:, 0].copy(), allv[:, 1].copy(), allv[:, 2].copy()


def fma_case(rng: np.random.Generator, n_random: int = 2000) -> Case:
    """C fmaf (a VFMA on the device) vs the numpy fma_f32, bit for bit."""
    a, b, c = fma_inputs(rng, n_random)
    n = a.size
    return Case(
        "fmaf",
        f"for (int i = 0; i < {n}; i++) @y[i] = fmaf(@a[i], @b[i], @c[i])",
        {"a": a, "b": b, "c": c},
        outputs={"y": fma_f32(a, b, c)},
    )


def misc_cases(rng: np.random.Generator) -> list[Case]:
    z = _s8(rng, (10,))
    g, loss = K.softmax_xent(z, F32(0.11), 3)
    gb = rng.standard_normal((4, 4, 24)).astype(F32)
    b0 = rng.integers(-10000, 10000, 24).astype(np.int32)
    b = b0.copy()
    qb = rng.uniform(10, 1000, 24).astype(F32)
    conv2d.bias_grad_update(gb, b, qb, F32(-0.01))
    a1, a2 = _s8(rng, (5, 5, 13)), _s8(rng, (5, 5, 13))
    y = rng.choice(np.array([-128, 127, 0, 3], np.int8), 333)
    gm = rng.standard_normal(333).astype(F32)
    bits = K.mask_s8(y)
    gp = rng.standard_normal(13).astype(F32)
    return [
        Case(
            "softmax_xent",
            "tt_softmax_xent(@z, 10, 0.11f, 3, @g, @loss)",
            {"z": z},
            outputs={"g": g, "loss": np.array([loss], F32)},
        ),
        Case(
            "bias_grad_update",
            "tt_bias_grad_update(@g, 16, 24, @b, @qb, -0.01f)",
            {"g": gb, "qb": qb},
            {"b": (b0, b)},
        ),
        Case(
            "add_s8",
            "tt_add_s8(@a, @b, 325, 0.75f, 1.25f, -3, 7, -128, @y)",
            {"a": a1, "b": a2},
            outputs={"y": residual.add_s8(a1, a2, F32(0.75), F32(1.25), -3, 7, -128)},
        ),
        Case(
            "avgpool_s8", "tt_avgpool_s8(@a, 5, 5, 13, @y)", {"a": a1}, outputs={"y": avgpool.avgpool_s8(a1)}
        ),
        Case(
            "mask",
            "tt_mask_s8(@y, 333, @bits); tt_apply_mask_f32(@g, @bits, 333, @out)",
            {"y": y, "g": gm},
            outputs={"bits": bits, "out": K.apply_mask_f32(gm, bits)},
        ),
        Case(
            "avgpool_bwd",
            "tt_avgpool_bwd_f32(@g, 13, 3, 3, @dx)",
            {"g": gp},
            outputs={"dx": avgpool.avgpool_bwd_f32(gp, 3, 3)},
        ),
    ]


def check_cases(seed: int = 0) -> list[Case]:
    """Small shapes covering every kernel, the SIMD tails and every update rule."""
    rng = np.random.default_rng(seed)
    return [
        conv_case(rng, 5, 13, 7, 1, 1),
        conv_case(rng, 4, 16, 24, 1, 1),
        conv_case(rng, 7, 3, 8, 3, 2),
        conv_case(rng, 1, 38, 5, 1, 1),
        conv_case(rng, 2, 600, 3, 1, 1),
        conv_case(rng, 6, 7, 3, 5, 2),
        conv_case(rng, 4, 30, 2, 3, 1),
        dw_case(rng, 6, 13, 3, 1),
        dw_case(rng, 8, 16, 5, 2),
        dw_case(rng, 5, 8, 7, 1),
        dw_case(rng, 7, 5, 3, 2, m_hi=3.0),
        dw_case(rng, 20, 2, 7, 1, wd=60),
        dw_case(rng, 9, 3, 5, 2, wd=11),
        dw_case(rng, 3, 2, 7, 1, wd=200),
        bwd1x1_case(rng, 9, 12, 13),
        bwd_dw_case(rng, 6, 7, 3, 1),
        bwd_dw_case(rng, 8, 8, 5, 2),
        wgrad_case(rng, 4, 10, 6, 1, 1, 5, "stochastic"),
        wgrad_case(rng, 5, 3, 4, 3, 2, 3, "shadow"),
        wgrad_case(rng, 6, 9, 9, 3, 1, 9, "nearest", dw=True),
        wgrad_case(rng, 5, 6, 6, 5, 2, 4, "stochastic", dw=True),
        *misc_cases(rng),
        *sat_bias_cases(np.random.default_rng(seed + 100)),
        irb_case(rng, 6, 5, 6, 4, 3, 1, "stochastic"),
        irb_case(rng, 9, 6, 5, 7, 5, 2, "nearest"),
        # the stochastic rule over the blocked weight-gradient paths (a cursor per row of the updated layout)
        wgrad_case(rng, 6, 9, 9, 3, 1, 9, "stochastic", dw=True),
        wgrad_case(rng, 2, 7, 131, 1, 1, 7, "stochastic"),
        wgrad_case(rng, 3, 6, 3, 1, 1, 6, "stochastic"),
        # the one-output 1x1 row (wg1x1_row): 8- and 4-channel word-load blocks, tails, odd x_c (unaligned
        # words), x_zero at both ends (x - x_zero = +-255 in the halfword lanes)
        wgrad_case(rng, 5, 21, 1, 1, 1, 21, "stochastic", x_zero=-128),
        wgrad_case(rng, 4, 17, 1, 1, 1, 12, "nearest", x_zero=127),
        wgrad_case(rng, 3, 8, 1, 1, 1, 8, "shadow", x_zero=0),
        irb_case(rng, 5, 13, 3, 4, 3, 1, "stochastic"),
        irb_case(rng, 4, 16, 2, 5, 3, 1, "nearest"),
        irb_case(rng, 3, 9, 2, 3, 7, 1, "nearest"),
        irb_case(rng, 6, 8, 2, 9, 5, 1, "stochastic"),
        fma_case(np.random.default_rng(seed + 200), 300),  # the device's VFMA vs the exact numpy fma
        # the fused block's zero-padded dw plane at stride 2 (3x3, 7x7) and the unpaired last channel
        irb_case(rng, 7, 6, 3, 4, 3, 2, "nearest"),
        irb_case(rng, 9, 5, 4, 3, 7, 2, "stochastic"),
        # the dw weight gradient's kernel-row path (padded plane, 3x3 assembly): stride 1 and 2, all rules,
        # a shifted last channel block; 5x5 rows in C
        wgrad_case(rng, 7, 8, 8, 3, 2, 8, "nearest", dw=True, x_zero=-128),
        wgrad_case(rng, 8, 14, 14, 3, 1, 11, "shadow", dw=True, x_zero=127),
        wgrad_case(rng, 6, 6, 6, 3, 1, 6, "stochastic", dw=True),
        wgrad_case(rng, 7, 5, 5, 5, 2, 5, "nearest", dw=True),
        # the dw input gradient's four-channel path (assembly, stride 1, 3x3 / 5x5, channel tails), fallback
        bwd_dw_case(rng, 7, 9, 5, 1),
        bwd_dw_case(rng, 5, 12, 3, 1),
        bwd_dw_case(rng, 12, 8, 5, 1),
        # the 3x3 stride 1 plane path: four-channel planes with a channel tail, odd width, several strips of
        # four planes (non-square, in place), biases on both sides of the fold limit
        dw_case(rng, 9, 7, 3, 1, wd=13, fold_edge=True),
        dw_case(rng, 20, 8, 3, 1, wd=30),
        dw_inplace_case(rng, 30, 5, 3, fold_edge=True),
        dw_inplace_case(rng, 9, 8, 3),
        # the in-place 3x3 four-channel path (width % 4 == 0): one strip with groups only; a channel tail and
        # a non-square map; several strips (halo rows carried); the saturating route forced on half of them
        dw_inplace_case(rng, 8, 12, 3),
        dw_inplace_case(rng, 9, 6, 3, wd=12, y_zero=-100),
        dw_inplace_case(rng, 16, 8, 3, q_edge=True),
        dw_inplace_case(rng, 8, 24, 3, q_edge=True, y_zero=0),
        # the 1x1 output-pair assembly (tt_pw2x2, ci % 4 == 0): an odd count of 4-channel blocks, odd co (the
        # last output in C), odd pixel count (the last pixel in C); one 8-channel iteration, one output pair
        conv_case(rng, 5, 20, 9, 1, 1),
        conv_case(rng, 2, 8, 2, 1, 1),
        # tt_pw2x2 over a zero-padded last block (ci % 4 != 0): the last row read stays inside the weights
        conv_case(rng, 4, 1, 9, 1, 1),
        conv_case(rng, 4, 2, 5, 1, 1),
        conv_case(rng, 3, 6, 4, 1, 1),
        conv_case(rng, 6, 3, 6, 3, 2),
        # the split 1x1 with ordinary biases: tt_pw2x2_split (odd co and pixels, odd block counts, an empty
        # part of either kind) and the C path over tt_dot2x2 (% 4 tails)
        split_case(rng, 5, 24, 8, 7, 1, 1, sat=False),
        split_case(rng, 4, 20, 12, 6, 1, 1, sat=False),
        split_case(rng, 3, 16, 0, 4, 1, 1, sat=False),
        split_case(rng, 4, 16, 16, 5, 1, 1, sat=False),
        split_case(rng, 5, 38, 5, 7, 1, 1, sat=False),
    ]


def sat_bias_cases(rng: np.random.Generator) -> list[Case]:
    """Biases at and near +-2^31 through every int8 path: sat32(acc + bias) (QADD), accumulators from 0."""
    gb = (rng.standard_normal((3, 3, 12)) * 50).astype(F32)
    b0 = extreme_bias(rng, 12, 3000)
    b = b0.copy()
    qb = rng.uniform(10, 1000, 12).astype(F32)
    conv2d.bias_grad_update(gb, b, qb, F32(-1.0))
    return [
        conv_case(rng, 5, 13, 7, 1, 1, sat=True),  # 1x1 fast path (tt_dot2x2), odd pixel, odd co, ci % 4
        conv_case(rng, 4, 64, 6, 1, 1, sat=True),
        conv_case(rng, 3, 600, 3, 1, 1, sat=True),  # ci > 512: C SXTB16 path, odd output, odd pixel
        conv_case(rng, 7, 3, 8, 3, 2, sat=True),  # stem: im2col
        conv_case(rng, 4, 30, 3, 3, 1, sat=True),  # K > 256: generic loops
        dw_case(rng, 6, 9, 3, 1, sat=True),
        dw_case(rng, 9, 5, 5, 2, sat=True),
        dw_case(rng, 5, 3, 7, 1, sat=True),
        dw_case(rng, 7, 6, 3, 2, sat=True),
        dw_case(rng, 3, 6, 7, 1, wd=200, sat=True),  # too wide: per pixel
        split_case(rng, 5, 13, 4, 7, 1, 1),
        split_case(rng, 6, 6, 2, 5, 3, 2),
        dw_inplace_case(rng, 6, 7, 3),
        dw_inplace_case(rng, 5, 5, 5),
        split_case(rng, 5, 38, 5, 7, 1, 1),  # split 1x1 fast path: % 4 tails in both parts, odd pixel and co
        split_case(rng, 3, 600, 100, 3, 1, 1),  # ci > 512: plain loops
        # in-place plane path: 2-output tail; several strips (scratch copy)
        dw_inplace_case(rng, 7, 3, 7),
        dw_inplace_case(rng, 40, 2, 3),
        conv_case(rng, 5, 12, 7, 1, 1, sat=True),  # tt_pw2x2 (ci % 4 == 0): odd blocks, odd co, odd pixel
        # tt_pw2x2_split (k, ci - k % 4 == 0): odd co and pixels, odd block counts, an empty part of either
        # kind
        split_case(rng, 5, 24, 8, 7, 1, 1),
        split_case(rng, 4, 20, 12, 6, 1, 1),
        split_case(rng, 3, 16, 0, 4, 1, 1),
        split_case(rng, 4, 16, 16, 5, 1, 1),
        Case(
            "bias_grad_update_sat",
            "tt_bias_grad_update(@g, 9, 12, @b, @qb, -1.0f)",
            {"g": gb, "qb": qb},
            {"b": (b0, b)},
        ),
    ]


def bench_cases(seed: int = 1) -> list[Case]:
    """MCUNet-like layer shapes (the DESIGN.md reference point): 8x8 and 4x4 maps, 48..384 channels."""
    rng = np.random.default_rng(seed)
    return [
        conv_case(rng, 8, 96, 48, 1, 1),
        conv_case(rng, 4, 160, 96, 1, 1),
        dw_case(rng, 8, 96, 3, 1),
        dw_case(rng, 8, 96, 5, 1),
        dw_case(rng, 4, 192, 7, 1),
        dw_case(rng, 16, 48, 3, 2),
        dw_case(rng, 16, 48, 5, 2),
        dw_case(rng, 8, 96, 7, 2),
        dw_case(rng, 8, 96, 7, 1),
        conv_case(rng, 32, 3, 16, 3, 2),
        bwd1x1_case(rng, 64, 48, 96),
        bwd_dw_case(rng, 8, 96, 3, 1),
        bwd_dw_case(rng, 8, 96, 5, 1),
        wgrad_case(rng, 8, 96, 48, 1, 1, 96, "nearest"),
        wgrad_case(rng, 8, 96, 96, 3, 1, 96, "nearest", dw=True),
        irb_case(rng, 8, 32, 96, 32, 3, 1),
        irb_case(rng, 8, 48, 144, 48, 5, 2),
        split_case(rng, 8, 96, 32, 48, 1, 1),
        split_case(rng, 4, 160, 40, 96, 1, 1),
        dw_inplace_case(rng, 8, 96, 3),
        dw_inplace_case(rng, 8, 96, 5),
        dw_inplace_case(rng, 4, 192, 7),
        dw_inplace_case(rng, 16, 48, 3),
        wgrad_case(rng, 8, 96, 48, 1, 1, 96, "stochastic"),
        wgrad_case(rng, 8, 96, 96, 3, 1, 96, "stochastic", dw=True),
        # the narrow 1x1 layers of the 128x128 paper models (ci = 8, 16: per-output work dominates)
        conv_case(rng, 8, 8, 48, 1, 1),
        conv_case(rng, 11, 16, 8, 1, 1),
    ]


def main(argv: list[str]) -> int:
    fma = "--no-fma" not in argv
    args = [a for a in argv[1:] if a not in ("--fma", "--no-fma")]
    board = args[0] if args else "m7"
    with fma_mode(fma):
        cases = bench_cases()
    out = Path("build") / "kernel_bench" / (board + ("-fma" if fma else "-nofma"))
    rec = run_cases(cases, board, out, fma=fma)
    print(f"{board} ({'fma' if fma else 'two roundings, -DTT_FMA=0'}): {rec.status}")
    for c in cases:
        instr = rec.phase(c.name)
        print(
            f"{c.name:40s} {c.macs:8d} MAC {instr:9d} instr {instr / c.macs:6.2f} instr/MAC  "
            f"mismatch={rec.metrics.get(c.name)}"
        )
    return 0 if rec.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
