"""ctypes bindings of the imported op kinds' C kernels (firmware/runtime/ops, in the host-native build of
tinytrain.native) with the numpy kernels' signatures, for the bit-exactness tests."""

from __future__ import annotations

import ctypes as C
from typing import Any

import numpy as np


def _p(a: np.ndarray) -> C.c_void_p:
    return C.c_void_p(a.ctypes.data)


class OpsNative:
    def __init__(self, variant: str = "portable") -> None:
        from tinytrain import native

        self.lib = native.load(variant).lib

    def _call(self, name: str, *args: Any) -> None:
        conv = [_p(a) if isinstance(a, np.ndarray) else C.c_int(int(a)) for a in args]
        getattr(self.lib, f"tt_{name}")(*conv)

    def qconv_s8(
        self, x: np.ndarray, w: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray, **a: int
    ) -> np.ndarray:
        h, wd, ci = x.shape
        co, kh, kw, _ = w.shape
        y = np.zeros((a["out_h"], a["out_w"], co), np.int8)
        self._call(
            "qconv_s8",
            np.ascontiguousarray(x, np.int8),
            h,
            wd,
            ci,
            np.ascontiguousarray(w, np.int8),
            co,
            kh,
            kw,
            np.ascontiguousarray(bias, np.int32),
            np.ascontiguousarray(mult, np.int32),
            np.ascontiguousarray(shift, np.int32),
            *_tail(a),
            y,
        )
        return y

    def qdwconv_s8(
        self, x: np.ndarray, w: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray, **a: int
    ) -> np.ndarray:
        h, wd, _ = x.shape
        kh, kw, c = w.shape
        dm = a.pop("depth_multiplier", 1)
        y = np.zeros((a["out_h"], a["out_w"], c), np.int8)
        self._call(
            "qdwconv_s8",
            np.ascontiguousarray(x, np.int8),
            h,
            wd,
            c,
            np.ascontiguousarray(w, np.int8),
            kh,
            kw,
            np.ascontiguousarray(bias, np.int32),
            np.ascontiguousarray(mult, np.int32),
            np.ascontiguousarray(shift, np.int32),
            *_tail(a),
            dm,
            y,
        )
        return y

    def pool(self, kernel: str, x: np.ndarray, **a: int) -> np.ndarray:
        h, wd, c = x.shape
        y = np.zeros((a["out_h"], a["out_w"], c), np.int8)
        keys = (
            "kernel_h",
            "kernel_w",
            "stride_h",
            "stride_w",
            "pad_top",
            "pad_left",
            "out_h",
            "out_w",
            "act_min",
            "act_max",
        )
        self._call(kernel, np.ascontiguousarray(x, np.int8), h, wd, c, *(a[k] for k in keys), y)
        return y

    def pad_s8(
        self, x: np.ndarray, pad_top: int, pad_bottom: int, pad_left: int, pad_right: int, value: int
    ) -> np.ndarray:
        h, wd, c = x.shape
        y = np.zeros((h + pad_top + pad_bottom, wd + pad_left + pad_right, c), np.int8)
        self._call(
            "pad_s8",
            np.ascontiguousarray(x, np.int8),
            h,
            wd,
            c,
            pad_top,
            pad_bottom,
            pad_left,
            pad_right,
            value,
            y,
        )
        return y

    def concat2_s8(self, a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
        from tinytrain.ops.concat import concat_s8

        shape = concat_s8([a, b], axis).shape
        y = np.zeros(shape, np.int8)
        ha, wa, ca = a.shape
        self._call(
            "concat2_s8",
            np.ascontiguousarray(a),
            np.ascontiguousarray(b),
            shape[0],
            shape[1],
            ca,
            b.shape[2],
            axis,
            ha,
            wa,
            y,
        )
        return y

    def mean_s8(self, x: np.ndarray, x_zero: int, y_zero: int, multiplier: int, shift: int) -> np.ndarray:
        h, wd, c = x.shape
        y = np.zeros((1, 1, c), np.int8)
        self._call(
            "mean_s8", np.ascontiguousarray(x, np.int8), h, wd, c, x_zero, y_zero, multiplier, shift, y
        )
        return y


def _tail(a: dict[str, int]) -> list[int]:
    keys = (
        "x_zero",
        "y_zero",
        "act_min",
        "act_max",
        "stride_h",
        "stride_w",
        "pad_top",
        "pad_left",
        "out_h",
        "out_w",
    )
    return [a[k] for k in keys]


class OpsNativeBackward(OpsNative):
    """The backward kernels (firmware/runtime/ops/tt_qconv_bwd.c, tt_qpool_bwd.c, tt_qpad_bwd.c)."""

    @staticmethod
    def _f(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, np.float32)

    def bwd_input(
        self,
        kernel: str,
        g: np.ndarray,
        w: np.ndarray,
        s_w: np.ndarray,
        in_h: int,
        in_w: int,
        stride_h: int,
        stride_w: int,
        pad_top: int,
        pad_left: int,
        depth_multiplier: int = 1,
    ) -> np.ndarray:
        ho, wo, co = g.shape
        dw = kernel.startswith("qdw")
        kh, kw, ci = (w.shape[0], w.shape[1], depth_multiplier) if dw else w.shape[1:]
        dx = np.zeros((in_h, in_w, co // depth_multiplier if dw else ci), np.float32)
        self._call(
            kernel,
            self._f(g),
            ho,
            wo,
            co,
            np.ascontiguousarray(w, np.int8),
            kh,
            kw,
            ci,
            self._f(s_w),
            in_h,
            in_w,
            stride_h,
            stride_w,
            pad_top,
            pad_left,
            dx,
        )
        return dx

    def wgrad(
        self,
        kernel: str,
        g: np.ndarray,
        x: np.ndarray,
        x_zero: int,
        k_in: int,
        kernel_h: int,
        kernel_w: int,
        stride_h: int,
        stride_w: int,
        pad_top: int,
        pad_left: int,
        depth_multiplier: int = 1,
    ) -> np.ndarray:
        ho, wo, co = g.shape
        h, w, cx = x.shape
        shape = (kernel_h, kernel_w, k_in) if kernel.startswith("qdw") else (co, kernel_h, kernel_w, k_in)
        s = np.zeros(shape, np.float32)
        self._call(
            kernel,
            self._f(g),
            ho,
            wo,
            co,
            np.ascontiguousarray(x, np.int8),
            h,
            w,
            cx,
            x_zero,
            k_in,
            kernel_h,
            kernel_w,
            stride_h,
            stride_w,
            pad_top,
            pad_left,
            *([depth_multiplier] if kernel.startswith("qdw") else []),
            s,
        )
        return s

    def avgpool_win_bwd_f32(self, g: np.ndarray, in_h: int, in_w: int, **a: int) -> np.ndarray:
        ho, wo, c = g.shape
        dx = np.zeros((in_h, in_w, c), np.float32)
        keys = ("kernel_h", "kernel_w", "stride_h", "stride_w", "pad_top", "pad_left")
        cip = a.get("count_include_pad", 0)
        self._call("avgpool_win_bwd_f32", self._f(g), ho, wo, c, in_h, in_w, *(a[k] for k in keys), cip, dx)
        return dx

    def maxpool_bwd_f32(self, g: np.ndarray, x: np.ndarray, **a: int) -> np.ndarray:
        ho, wo, c = g.shape
        h, w, _ = x.shape
        dx = np.zeros((h, w, c), np.float32)
        keys = ("kernel_h", "kernel_w", "stride_h", "stride_w", "pad_top", "pad_left")
        self._call(
            "maxpool_bwd_f32",
            self._f(g),
            ho,
            wo,
            c,
            np.ascontiguousarray(x, np.int8),
            h,
            w,
            *(a[k] for k in keys),
            dx,
        )
        return dx

    def pad_bwd_f32(self, g: np.ndarray, pad_top: int, pad_left: int, in_h: int, in_w: int) -> np.ndarray:
        ho, wo, c = g.shape
        dx = np.zeros((in_h, in_w, c), np.float32)
        self._call("pad_bwd_f32", self._f(g), ho, wo, c, pad_top, pad_left, in_h, in_w, dx)
        return dx

    def concat2_bwd_f32(
        self, g: np.ndarray, axis: int, part: int, h: int, w: int, c: int, offset: int
    ) -> np.ndarray:
        ho, wo, co = g.shape
        dx = np.zeros((h, w, c), np.float32)
        self._call("concat2_bwd_f32", self._f(g), ho, wo, co, axis, h, w, c, offset, dx)
        return dx
