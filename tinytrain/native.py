"""Host-native build of firmware/runtime (host gcc -> shared library) and ctypes bindings.

`load(variant)` compiles every `firmware/runtime/*.c` into a cached `.so` (rebuilt when a source,
header or flag changes; cache under `$TINYTRAIN_CACHE` or `~/.cache/tinytrain/native`) and returns
a `NativeKernels` whose methods have the same signatures and results as the numpy reference kernels
(each op's in `tinytrain/ops/<op>`, the shared machinery's in `tinytrain.kernels`), so tests can compare
the two call for call. The ctypes prototypes (restype, argtypes) of every library function come from the one
signature table, the runtime headers parsed (`tinytrain.signatures`, `prototypes()`).

Variants: `"portable"` (the portable C path) and `"dsp"` (the Cortex-M SIMD paths, with the DSP
intrinsics emulated in C by `TT_EMULATE_DSP`), so both device code paths are checked on the host.
Float semantics: x86-64 SSE binary32, `-ffp-contract=off -fexcess-precision=standard`, no fast-math.
"""

from __future__ import annotations

import ctypes as C
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from tinytrain import FIRMWARE_DIR, TinytrainError, signatures
from tinytrain.kernels.requant import out_size
from tinytrain.kernels.rng import Xorshift32

#: The C runtime: firmware/runtime in a checkout, tinytrain/firmware/runtime in a wheel (FIRMWARE_DIR).
RUNTIME_DIR = FIRMWARE_DIR / "runtime"
CFLAGS = [
    "-std=c99",
    "-O2",
    "-fPIC",
    "-shared",
    "-ffp-contract=off",
    "-fexcess-precision=standard",
    "-fno-fast-math",
    "-Wall",
    "-Wextra",
    "-Werror",
]
VARIANTS = {
    # the fused multiply-add contract (the default; tinytrain.kernels.fma; libm's correctly rounded fmaf)
    "portable": ["-DTT_FMA=1"],
    "dsp": ["-DTT_EMULATE_DSP", "-DTT_FMA=1"],
    # the two-rounding option (-DTT_FMA=0; the reference under fma_mode(False) / TINYTRAIN_FMA=0)
    "portable-nofma": ["-DTT_FMA=0"],
    "dsp-nofma": ["-DTT_EMULATE_DSP", "-DTT_FMA=0"],
}
RULE_IDS = {"nearest": 0, "stochastic": 1, "shadow": 2}

_DTYPES = {
    "int8_t": np.int8,
    "uint8_t": np.uint8,
    "int32_t": np.int32,
    "uint32_t": np.uint32,
    "float": np.float32,
}
_SCALARS = {
    "int": C.c_int,
    "int32_t": C.c_int32,
    "uint32_t": C.c_uint32,
    "float": C.c_float,
    "size_t": C.c_size_t,
    "void": None,
}


class _Pointer:
    """A pointer parameter of the signature table: a C-contiguous array of the parameter's element type (a
    wrong dtype is a TypeError, like np.ctypeslib.ndpointer), None (NULL), an address, or a ctypes object
    (pointer, byref, struct address)."""

    def __init__(self, ctype: str) -> None:
        self.ctype = ctype
        self.dtype = _DTYPES.get(ctype)

    def from_param(self, obj: object) -> object:
        if obj is None:
            return None
        if isinstance(obj, np.ndarray):
            if self.dtype is not None and obj.dtype != self.dtype:
                raise TypeError(f"array of {obj.dtype} for a {self.ctype} * parameter")
            if not obj.flags.c_contiguous:
                raise TypeError("array is not C-contiguous")
            return obj.ctypes
        if isinstance(obj, int):
            return C.c_void_p(obj)
        return obj  # a ctypes pointer / byref / c_void_p


def _ctype(ctype: str, pointer: bool) -> object:
    if pointer:
        return _Pointer(ctype)
    if ctype not in _SCALARS:
        raise TinytrainError(f"signature table: no ctypes type for the C type {ctype!r}")
    return _SCALARS[ctype]


def prototypes() -> dict[str, tuple[object, list[object]]]:
    """restype and argtypes of every library function of the runtime headers (tinytrain.signatures: one
    table, the headers parsed), by C name."""
    out = {}
    for name, sig in signatures.table(RUNTIME_DIR).items():
        if not sig.inline:
            out[name] = (_ctype(sig.ret, False), [_ctype(p.ctype, p.pointer) for p in sig.params])
    return out


class IrBlockBwdArgs(C.Structure):
    """tt_ir_block_bwd_args (tt_memory_ops.h), field for field."""

    _fields_ = [
        (n, t)
        for n, t in (
            ("g", C.c_void_p),
            ("ho", C.c_int),
            ("wo", C.c_int),
            ("co2", C.c_int),
            ("e", C.c_int),
            ("w2", C.c_void_p),
            ("s_w2", C.c_void_p),
            ("bits_dw", C.c_void_p),
            ("w_dw", C.c_void_p),
            ("s_w_dw", C.c_void_p),
            ("kh", C.c_int),
            ("kw", C.c_int),
            ("stride", C.c_int),
            ("pad", C.c_int),
            ("h", C.c_int),
            ("w", C.c_int),
            ("b_dw", C.c_void_p),
            ("qb_dw", C.c_void_p),
            ("bits_pw1", C.c_void_p),
            ("w1", C.c_void_p),
            ("w1_rest", C.c_void_p),
            ("ci", C.c_int),
            ("k1", C.c_int),
            ("s_w1", C.c_void_p),
            ("dx", C.c_void_p),
            ("b1", C.c_void_p),
            ("qb1", C.c_void_p),
            ("x1", C.c_void_p),
            ("x1_c", C.c_int),
            ("x_zero", C.c_int32),
            ("k_in", C.c_int),
            ("q1", C.c_void_p),
            ("shadow1", C.c_void_p),
            ("neg_lr", C.c_float),
            ("rule", C.c_int),
            ("rng", C.c_void_p),
        )
    ]


def cache_dir() -> Path:
    env = os.environ.get("TINYTRAIN_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "tinytrain"
    return base / "native"


def _sources() -> list[Path]:
    return sorted(RUNTIME_DIR.glob("*.c"))


def build(variant: str = "portable", cc: str = "gcc") -> Path:
    """Compile the runtime into a cached shared library; returns its path."""
    if variant not in VARIANTS:
        raise TinytrainError(f"unknown native variant {variant!r}; expected one of {sorted(VARIANTS)}")
    if shutil.which(cc) is None:
        raise TinytrainError(f"host C compiler {cc!r} not found on PATH")
    flags = CFLAGS + VARIANTS[variant]
    h = hashlib.sha256(" ".join([cc, *flags]).encode())
    for f in sorted([*RUNTIME_DIR.glob("*.[ch]"), *RUNTIME_DIR.glob("ops/*.[ch]")]):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    out = cache_dir() / f"libtt_{variant}_{h.hexdigest()[:16]}.so"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    cmd = [cc, *flags, "-I", str(RUNTIME_DIR), *map(str, _sources()), "-lm", "-o", str(tmp)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise TinytrainError(f"native build failed ({' '.join(cmd)}):\n{res.stderr}")
    os.replace(tmp, out)
    return out


def _s8(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.int8)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.float32)


class NativeKernels:
    """ctypes bindings with the numpy reference signatures (tinytrain/ops/<op>, tinytrain.kernels)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lib = C.CDLL(str(path))
        for name, (res, args) in prototypes().items():
            fn = getattr(self.lib, name)
            fn.restype = res
            fn.argtypes = args

    # ---- forward ----
    def conv2d_s8(
        self,
        x: np.ndarray,
        w: np.ndarray,
        bias: np.ndarray,
        m: np.ndarray,
        x_zero: int,
        y_zero: int,
        stride: int = 1,
        pad: int = 0,
    ) -> np.ndarray:
        h, wd, ci = x.shape
        co, kh, kw, _ = w.shape
        y = np.empty((out_size(h, kh, stride, pad), out_size(wd, kw, stride, pad), co), np.int8)
        self.lib.tt_conv2d_s8(
            _s8(x),
            h,
            wd,
            ci,
            _s8(w),
            co,
            kh,
            kw,
            np.ascontiguousarray(bias, np.int32),
            _f32(m),
            x_zero,
            y_zero,
            stride,
            pad,
            y,
        )
        return y

    def dwconv2d_s8(
        self,
        x: np.ndarray,
        w: np.ndarray,
        bias: np.ndarray,
        m: np.ndarray,
        x_zero: int,
        y_zero: int,
        stride: int = 1,
        pad: int = 0,
    ) -> np.ndarray:
        h, wd, c = x.shape
        kh, kw, _ = w.shape
        y = np.empty((out_size(h, kh, stride, pad), out_size(wd, kw, stride, pad), c), np.int8)
        self.lib.tt_dwconv2d_s8(
            _s8(x),
            h,
            wd,
            c,
            _s8(w),
            kh,
            kw,
            np.ascontiguousarray(bias, np.int32),
            _f32(m),
            x_zero,
            y_zero,
            stride,
            pad,
            y,
        )
        return y

    def add_s8(
        self, a: np.ndarray, b: np.ndarray, fa: float, fb: float, a_zero: int, b_zero: int, y_zero: int
    ) -> np.ndarray:
        y = np.empty(a.shape, np.int8)
        self.lib.tt_add_s8(_s8(a), _s8(b), a.size, fa, fb, a_zero, b_zero, y_zero, y)
        return y

    def avgpool_s8(self, x: np.ndarray) -> np.ndarray:
        h, w, c = x.shape
        y = np.empty(c, np.int8)
        self.lib.tt_avgpool_s8(_s8(x), h, w, c, y)
        return y

    def slice_channels_s8(self, x: np.ndarray, k: int) -> np.ndarray:
        h, w, c = x.shape
        y = np.empty((h, w, k), np.int8)
        self.lib.tt_slice_channels_s8(_s8(x), h, w, c, k, y)
        return y

    # ---- loss ----
    def tt_expf(self, x: np.ndarray) -> np.ndarray:
        v = np.asarray(x, np.float32).reshape(-1)
        return np.array([self.lib.tt_expf(float(e)) for e in v], np.float32)

    def tt_logf(self, s: np.ndarray) -> np.ndarray:
        v = np.asarray(s, np.float32).reshape(-1)
        return np.array([self.lib.tt_logf(float(e)) for e in v], np.float32)

    def softmax_xent(self, z: np.ndarray, z_scale: float, label: int) -> tuple[np.ndarray, np.float32]:
        z = _s8(z).reshape(-1)
        g = np.empty(z.size, np.float32)
        loss = C.c_float()
        self.lib.tt_softmax_xent(z, z.size, z_scale, label, g, C.byref(loss))
        return g, np.float32(loss.value)

    # ---- backward ----
    def mask_s8(self, y: np.ndarray) -> np.ndarray:
        y = _s8(y).reshape(-1)
        bits = np.empty((y.size + 7) // 8, np.uint8)
        self.lib.tt_mask_s8(y, y.size, bits)
        return bits

    def apply_mask_f32(self, g: np.ndarray, bits: np.ndarray) -> np.ndarray:
        out = _f32(g).copy()
        self.lib.tt_apply_mask_f32(out, np.ascontiguousarray(bits, np.uint8), out.size, out)  # in place
        return out

    def conv2d_bwd_input_f32(self, g: np.ndarray, w: np.ndarray, s_w: np.ndarray) -> np.ndarray:
        g = _f32(g)
        co = g.shape[-1]
        w2 = _s8(w).reshape(co, -1)
        ci = w2.shape[1]
        dx = np.empty(g.shape[:-1] + (ci,), np.float32)
        self.lib.tt_conv2d_bwd_input_f32(g, g.size // co, co, w2, ci, _f32(s_w), dx)
        return dx

    def dwconv2d_bwd_input_f32(
        self,
        g: np.ndarray,
        w: np.ndarray,
        s_w: np.ndarray,
        in_h: int,
        in_w: int,
        stride: int = 1,
        pad: int = 0,
    ) -> np.ndarray:
        g = _f32(g)
        ho, wo, c = g.shape
        kh, kw, _ = w.shape
        dx = np.empty((in_h, in_w, c), np.float32)
        self.lib.tt_dwconv2d_bwd_input_f32(
            g, ho, wo, c, _s8(w), kh, kw, _f32(s_w), in_h, in_w, stride, pad, dx
        )
        return dx

    def avgpool_bwd_f32(self, g: np.ndarray, h: int, w: int) -> np.ndarray:
        g = _f32(g).reshape(-1)
        dx = np.empty((h, w, g.size), np.float32)
        self.lib.tt_avgpool_bwd_f32(g, g.size, h, w, dx)
        return dx

    def add_f32(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        y = _f32(a).copy()
        self.lib.tt_add_f32(y, _f32(b), y.size, y)  # in place on a copy of a
        return y

    # ---- weight gradient + update (in place, like the reference) ----
    def _rng_ptr(self, rng: Xorshift32 | None) -> tuple[C.c_uint32, object]:
        cell = C.c_uint32(rng.state if rng is not None else 1)
        return cell, C.pointer(cell)

    @staticmethod
    def _shadow_ptr(shadow: np.ndarray | None, n: int) -> int | None:
        if shadow is None:
            return None
        if shadow.dtype != np.float32 or shadow.size != n or not shadow.flags.c_contiguous:
            raise ValueError(f"shadow must be contiguous float32 with {n} elements")
        return shadow.ctypes.data

    def conv2d_wgrad_update(
        self,
        g: np.ndarray,
        x: np.ndarray,
        x_zero: int,
        w: np.ndarray,
        k_in: int,
        q: np.ndarray,
        neg_lr: float,
        rule: str = "nearest",
        rng: Xorshift32 | None = None,
        shadow: np.ndarray | None = None,
        stride: int = 1,
        pad: int = 0,
    ) -> None:
        assert w.dtype == np.int8 and w.flags.c_contiguous
        g = _f32(g)
        co = g.shape[-1]
        w4 = w.reshape(co, 1, 1, -1) if w.ndim == 2 else w
        _, kh, kw, ci = w4.shape
        x = _s8(x)
        if kh == 1 and kw == 1 and stride == 1 and pad == 0:
            xc = x.shape[-1]
            h, wd = x.size // xc, 1
        else:
            h, wd, xc = x.shape
        cell, ptr = self._rng_ptr(rng)
        sp = self._shadow_ptr(shadow, co * kh * kw * k_in)
        self.lib.tt_conv2d_wgrad_update(
            g,
            x,
            h,
            wd,
            xc,
            x_zero,
            w,
            co,
            kh,
            kw,
            ci,
            k_in,
            _f32(q),
            neg_lr,
            RULE_IDS[rule],
            ptr,
            sp,
            stride,
            pad,
        )
        if rng is not None:
            rng.state = int(cell.value)

    def dwconv2d_wgrad_update(
        self,
        g: np.ndarray,
        x: np.ndarray,
        x_zero: int,
        w: np.ndarray,
        k_in: int,
        q: np.ndarray,
        neg_lr: float,
        rule: str = "nearest",
        rng: Xorshift32 | None = None,
        shadow: np.ndarray | None = None,
        stride: int = 1,
        pad: int = 0,
    ) -> None:
        assert w.dtype == np.int8 and w.flags.c_contiguous
        g = _f32(g)
        kh, kw, c = w.shape
        x = _s8(x)
        h, wd, xc = x.shape
        cell, ptr = self._rng_ptr(rng)
        sp = self._shadow_ptr(shadow, kh * kw * k_in)
        self.lib.tt_dwconv2d_wgrad_update(
            g, x, h, wd, xc, x_zero, w, kh, kw, c, k_in, _f32(q), neg_lr, RULE_IDS[rule], ptr, sp, stride, pad
        )
        if rng is not None:
            rng.state = int(cell.value)

    def bias_grad_update(self, g: np.ndarray, bias: np.ndarray, qb: np.ndarray, neg_lr: float) -> None:
        assert bias.dtype == np.int32 and bias.flags.c_contiguous
        g = _f32(g)
        co = bias.shape[0]
        self.lib.tt_bias_grad_update(g, g.size // co, co, bias, _f32(qb), neg_lr)

    # ---- split kernels (tinytrain/kernels/memory_ops.py) ----
    def conv2d_wgrad_f32(
        self,
        g: np.ndarray,
        x: np.ndarray,
        x_zero: int,
        k_in: int,
        kernel: int = 1,
        stride: int = 1,
        pad: int = 0,
    ) -> np.ndarray:
        g = _f32(g)
        co = g.shape[-1]
        x = _s8(x)
        if kernel == 1 and stride == 1 and pad == 0:
            xc = x.shape[-1]
            h, wd = x.size // xc, 1
        else:
            h, wd, xc = x.shape
        s = np.empty((co, kernel, kernel, k_in), np.float32)
        self.lib.tt_conv2d_wgrad_f32(g, x, h, wd, xc, x_zero, co, kernel, k_in, stride, pad, s)
        return s

    def dwconv2d_wgrad_f32(
        self,
        g: np.ndarray,
        x: np.ndarray,
        x_zero: int,
        k_in: int,
        kernel: int = 3,
        stride: int = 1,
        pad: int = 1,
    ) -> np.ndarray:
        g = _f32(g)
        x = _s8(x)
        h, wd, xc = x.shape
        s = np.empty((kernel, kernel, k_in), np.float32)
        self.lib.tt_dwconv2d_wgrad_f32(g, x, h, wd, xc, x_zero, g.shape[-1], kernel, k_in, stride, pad, s)
        return s

    def bias_grad_f32(self, g: np.ndarray) -> np.ndarray:
        g = _f32(g)
        co = g.shape[-1]
        s = np.empty(co, np.float32)
        self.lib.tt_bias_grad_f32(g, g.size // co, co, s)
        return s

    def conv2d_weight_update(
        self,
        s: np.ndarray,
        w: np.ndarray,
        k_in: int,
        q: np.ndarray,
        neg_lr: float,
        rule: str = "nearest",
        rng: Xorshift32 | None = None,
        shadow: np.ndarray | None = None,
    ) -> None:
        assert w.dtype == np.int8 and w.flags.c_contiguous
        co = s.shape[0]
        w4 = w.reshape(co, 1, 1, -1) if w.ndim == 2 else w
        _, kh, kw, ci = w4.shape
        cell, ptr = self._rng_ptr(rng)
        sp = self._shadow_ptr(shadow, co * kh * kw * k_in)
        self.lib.tt_conv2d_weight_update(
            _f32(s), w, co, kh, kw, ci, k_in, _f32(q), neg_lr, RULE_IDS[rule], ptr, sp
        )
        if rng is not None:
            rng.state = int(cell.value)

    def dwconv2d_weight_update(
        self,
        s: np.ndarray,
        w: np.ndarray,
        k_in: int,
        q: np.ndarray,
        neg_lr: float,
        rule: str = "nearest",
        rng: Xorshift32 | None = None,
        shadow: np.ndarray | None = None,
    ) -> None:
        assert w.dtype == np.int8 and w.flags.c_contiguous
        kh, kw, c = w.shape
        cell, ptr = self._rng_ptr(rng)
        sp = self._shadow_ptr(shadow, kh * kw * k_in)
        self.lib.tt_dwconv2d_weight_update(
            _f32(s), w, kh, kw, c, k_in, _f32(q), neg_lr, RULE_IDS[rule], ptr, sp
        )
        if rng is not None:
            rng.state = int(cell.value)

    def bias_update(self, s: np.ndarray, bias: np.ndarray, qb: np.ndarray, neg_lr: float) -> None:
        assert bias.dtype == np.int32 and bias.flags.c_contiguous
        self.lib.tt_bias_update(_f32(s), bias.shape[0], bias, _f32(qb), neg_lr)

    # ---- memory-saving kernels (tinytrain/kernels/memory_ops.py, firmware/runtime/tt_memory_ops.c) ----
    def conv2d_split_s8(
        self,
        x: np.ndarray,
        w: np.ndarray,
        w_rest: np.ndarray,
        bias: np.ndarray,
        m: np.ndarray,
        x_zero: int,
        y_zero: int,
        stride: int = 1,
        pad: int = 0,
    ) -> np.ndarray:
        h, wd, ci = x.shape
        co = w.shape[0]
        w4 = w.reshape(co, 1, 1, -1) if w.ndim == 2 else w
        _, kh, kw, k = w4.shape
        y = np.empty((out_size(h, kh, stride, pad), out_size(wd, kw, stride, pad), co), np.int8)
        b32 = np.ascontiguousarray(bias, np.int32)
        self.lib.tt_conv2d_split_s8(
            _s8(x),
            h,
            wd,
            ci,
            _s8(w4),
            _s8(w_rest),
            co,
            kh,
            kw,
            k,
            b32,
            _f32(m),
            x_zero,
            y_zero,
            stride,
            pad,
            y,
        )
        return y

    def conv2d_split_bwd_input_f32(
        self, g: np.ndarray, w: np.ndarray, w_rest: np.ndarray, s_w: np.ndarray
    ) -> np.ndarray:
        g = _f32(g)
        co = g.shape[-1]
        wa, wb = _s8(w).reshape(co, -1), _s8(w_rest).reshape(co, -1)
        k, ci = wa.shape[1], wa.shape[1] + wb.shape[1]
        dx = np.empty(g.shape[:-1] + (ci,), np.float32)
        self.lib.tt_conv2d_split_bwd_input_f32(g, g.size // co, co, wa, wb, ci, k, _f32(s_w), dx)
        return dx

    def tile_load_s8(
        self, x: np.ndarray, row0: int, col0: int, rows: int, cols: int, fill: int, stream: bool = False
    ) -> np.ndarray:
        """`stream`: through tt_tile_load_stream_s8 and the library's default tt_input_read (from `x`)."""
        h, w, c = x.shape
        t = np.empty((rows, cols, c), np.int8)
        fn = self.lib.tt_tile_load_stream_s8 if stream else self.lib.tt_tile_load_s8
        fn(_s8(x), h, w, c, row0, col0, rows, cols, fill, t)
        return t

    def tile_fill_s8(self, t: np.ndarray, row0: int, col0: int, h: int, w: int, fill: int) -> np.ndarray:
        out = _s8(t).copy()
        rows, cols, c = out.shape
        self.lib.tt_tile_fill_s8(out, rows, cols, c, row0, col0, h, w, fill)  # in place on a copy
        return out

    def tile_store_s8(self, t: np.ndarray, y: np.ndarray, row0: int, col0: int) -> np.ndarray:
        out = _s8(y).copy()
        rows, cols, c = t.shape
        self.lib.tt_tile_store_s8(_s8(t), rows, cols, c, out, out.shape[0], out.shape[1], row0, col0)
        return out

    def dwconv2d_bwd_input_inplace_f32(
        self,
        g: np.ndarray,
        w: np.ndarray,
        s_w: np.ndarray,
        in_h: int,
        in_w: int,
        stride: int = 1,
        pad: int = 0,
    ) -> np.ndarray:
        out = _f32(g).copy()
        ho, wo, c = out.shape
        kh, kw, _ = w.shape
        assert stride == 1 and (in_h, in_w) == (ho, wo)
        scratch = np.empty(ho * wo, np.float32)
        self.lib.tt_dwconv2d_bwd_input_inplace_f32(out, ho, wo, c, _s8(w), kh, kw, _f32(s_w), pad, scratch)
        return out

    def dwconv2d_s8_inplace(
        self,
        x: np.ndarray,
        w: np.ndarray,
        bias: np.ndarray,
        m: np.ndarray,
        x_zero: int,
        y_zero: int,
        stride: int = 1,
        pad: int = 0,
    ) -> np.ndarray:
        out = _s8(x).copy()
        h, wd, c = out.shape
        kh, kw, _ = w.shape
        assert stride == 1 and out_size(h, kh, 1, pad) == h and out_size(wd, kw, 1, pad) == wd
        scratch = np.empty(h * wd, np.int8)
        self.lib.tt_dwconv2d_s8_inplace(
            out,
            h,
            wd,
            c,
            _s8(w),
            kh,
            kw,
            np.ascontiguousarray(bias, np.int32),
            _f32(m),
            x_zero,
            y_zero,
            pad,
            scratch,
        )
        return out

    def ir_block_bwd_f32(
        self,
        g: np.ndarray,
        w2: np.ndarray,
        s_w2: np.ndarray,
        w_dw: np.ndarray,
        s_w_dw: np.ndarray,
        in_h: int,
        in_w: int,
        stride: int = 1,
        pad: int = 0,
        bits_dw: np.ndarray | None = None,
        bits_pw1: np.ndarray | None = None,
        b_dw: np.ndarray | None = None,
        qb_dw: np.ndarray | None = None,
        w1: np.ndarray | None = None,
        w1_rest: np.ndarray | None = None,
        s_w1: np.ndarray | None = None,
        b1: np.ndarray | None = None,
        qb1: np.ndarray | None = None,
        x1: np.ndarray | None = None,
        q1: np.ndarray | None = None,
        shadow1: np.ndarray | None = None,
        x_zero: int = 0,
        k_in: int = 0,
        neg_lr: float = 0.0,
        rule: str = "nearest",
        rng: Xorshift32 | None = None,
    ) -> tuple[np.ndarray, ...]:
        """Same results as memory_ops.ir_block_bwd_f32 (updates in place on b_dw, b1, w1, shadow1)."""
        keep: list[np.ndarray] = []

        def ptr(a: np.ndarray | None, conv: object = None) -> int | None:
            if a is None:
                return None
            if conv is not None:
                a = conv(a)  # type: ignore[operator]
            assert a.flags.c_contiguous
            keep.append(a)
            return int(a.ctypes.data)

        g = _f32(g)
        ho, wo, co2 = g.shape
        kh, kw, e = w_dw.shape
        k1 = ci = 0
        if w1 is not None:
            k1 = ci = int(np.prod(w1.shape[1:]))
            if w1_rest is not None:
                ci += int(np.prod(w1_rest.shape[1:]))
        dx = np.empty((in_h, in_w, ci), np.float32) if s_w1 is not None else None
        cell = C.c_uint32(rng.state if rng is not None else 0)
        for a in (b_dw, b1, w1, shadow1):
            assert a is None or a.flags.c_contiguous
        w1p = ptr(w1) if x1 is not None else ptr(w1, _s8)  # updated in place when trained
        args = IrBlockBwdArgs(
            ptr(g),
            ho,
            wo,
            co2,
            e,
            ptr(w2, _s8),
            ptr(s_w2, _f32),
            ptr(bits_dw, np.ascontiguousarray),
            ptr(w_dw, _s8),
            ptr(s_w_dw, _f32),
            kh,
            kw,
            stride,
            pad,
            in_h,
            in_w,
            ptr(b_dw),
            ptr(qb_dw, _f32),
            ptr(bits_pw1, np.ascontiguousarray),
            w1p,
            ptr(w1_rest, _s8),
            ci,
            k1,
            ptr(s_w1, _f32),
            ptr(dx),
            ptr(b1),
            ptr(qb1, _f32),
            ptr(x1, _s8),
            x1.shape[-1] if x1 is not None else 0,
            x_zero,
            k_in,
            ptr(q1, _f32),
            ptr(shadow1),
            neg_lr,
            RULE_IDS[rule],
            C.addressof(cell) if rng is not None else None,
        )
        from tinytrain.ops.conv2d.memory import ir_block_bwd_f32_scratch_bytes

        scratch = np.empty(ir_block_bwd_f32_scratch_bytes((ho, wo), in_h, in_w) // 4, np.float32)
        self.lib.tt_ir_block_bwd_f32(C.addressof(args), scratch)
        if rng is not None:
            rng.state = int(cell.value)
        out = [a for a in (dx, b_dw, b1) if a is not None]
        if x1 is not None:
            out += [w1] + ([shadow1] if shadow1 is not None else [])
        return tuple(out)

    # ---- optimizer state (tt_optim.c), in place on a copy like add_f32 ----
    def momentum_f32(self, m: np.ndarray, g: np.ndarray, mu: float) -> np.ndarray:
        out = _f32(m).copy()
        gg = _f32(g)
        if gg.size != out.size:
            raise ValueError(f"momentum buffer has {out.size} elements, the gradient {gg.size}")
        self.lib.tt_momentum_f32(out, gg, out.size, mu)
        return out

    def zero_f32(self, x: np.ndarray) -> np.ndarray:
        out = _f32(x).copy()
        self.lib.tt_zero_f32(out, out.size)
        return out

    def xorshift32(self, state: int) -> int:
        cell = C.c_uint32(state)
        return int(self.lib.tt_xorshift32(C.byref(cell)))


_LOADED: dict[str, NativeKernels] = {}


def load(variant: str = "portable") -> NativeKernels:
    """The host-native kernels of one variant (built on first use, cached per process and on disk)."""
    if variant not in _LOADED:
        _LOADED[variant] = NativeKernels(build(variant))
    return _LOADED[variant]
