"""Small int8 .tflite test models built with tests/ops/tflite_builder.py: one per op and option."""

from __future__ import annotations

import numpy as np

from tests.ops.tflite_builder import TFLiteBuilder

ACT = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4}
PAD = {"SAME": 0, "VALID": 1}


class Net:
    """A builder with a running activation and a deterministic rng."""

    def __init__(self, shape: list[int], seed: int = 0, scale: float = 0.05, zero: int = -5) -> None:
        self.b = TFLiteBuilder()
        self.rng = np.random.default_rng(seed)
        self.n = 0
        self.x = self.b.tensor("serving_default_input:0", shape, scale=scale, zero=zero)
        self.input = self.x
        self.shape = list(shape)

    def _out(self, name: str, shape: list[int], scale: float | None = None, zero: int | None = None) -> int:
        self.n += 1
        sc = scale if scale is not None else float(self.rng.uniform(0.02, 0.12))
        zp = zero if zero is not None else int(self.rng.integers(-20, 20))
        return self.b.tensor(f"model/{name}_{self.n}/op", shape, scale=sc, zero=zp)

    def _bias(self, x: int, ws: np.ndarray, co: int) -> int:
        xs = self.b.tensors[x].scale[0]
        return self.b.tensor(
            f"model/b{self.n}", [co], "int32", data=self.rng.integers(-3000, 3000, co), scale=list(xs * ws)
        )

    def conv(
        self,
        co: int,
        kh: int,
        kw: int,
        stride: tuple[int, int] = (1, 1),
        padding: str = "SAME",
        act: str = "RELU",
        depthwise: bool = False,
        dilation: int = 1,
        name: str = "conv2d",
        wtype: str = "int8",
        multiplier: int = 1,
    ) -> Net:
        _, h, w, ci = self.shape
        if depthwise:
            co = ci * multiplier
            wshape = [1, kh, kw, co]
        else:
            wshape = [co, kh, kw, ci]
        ws = self.rng.uniform(0.002, 0.02, co).astype(np.float32)
        wt = self.b.tensor(
            f"model/{name}/w{self.n}",
            wshape,
            wtype,
            data=self.rng.integers(-127, 128, wshape),
            scale=list(ws),
            zero=[0] * co,
            qdim=3 if depthwise else 0,
        )
        bt = self._bias(self.x, ws, co)
        sh, sw = stride
        if padding == "SAME":
            ho, wo = -(-h // sh), -(-w // sw)
        else:
            ho, wo = (h - ((kh - 1) * dilation + 1)) // sh + 1, (w - ((kw - 1) * dilation + 1)) // sw + 1
        y = self._out(name, [1, ho, wo, co])
        if depthwise:
            self.b.op(
                "DEPTHWISE_CONV_2D",
                [self.x, wt, bt],
                [y],
                "DepthwiseConv2DOptions",
                Padding=PAD[padding],
                StrideW=sw,
                StrideH=sh,
                DepthMultiplier=multiplier,
                FusedActivationFunction=ACT[act],
                DilationWFactor=dilation,
                DilationHFactor=dilation,
            )
        else:
            self.b.op(
                "CONV_2D",
                [self.x, wt, bt],
                [y],
                "Conv2DOptions",
                Padding=PAD[padding],
                StrideW=sw,
                StrideH=sh,
                FusedActivationFunction=ACT[act],
                DilationWFactor=dilation,
                DilationHFactor=dilation,
            )
        self.x, self.shape = y, [1, ho, wo, co]
        return self

    def reshape(self, shape: list[int], op: str = "RESHAPE") -> Net:
        y = self.b.tensor(
            f"model/reshape_{self.n}",
            shape,
            scale=self.b.tensors[self.x].scale,
            zero=self.b.tensors[self.x].zero,
        )
        self.n += 1
        if op == "RESHAPE":
            st = self.b.tensor(f"model/shape{self.n}", [len(shape)], "int32", data=np.array(shape))
            self.b.op("RESHAPE", [self.x, st], [y], "ReshapeOptions")
        elif op == "EXPAND_DIMS":
            ax = self.b.tensor(f"model/axis{self.n}", [], "int32", data=np.array(1))
            self.b.op("EXPAND_DIMS", [self.x, ax], [y])
        else:
            self.b.op("SQUEEZE", [self.x], [y])
        self.x, self.shape = y, shape
        return self

    def fc(self, k: int, act: str = "NONE", per_channel: bool = False) -> Net:
        n = int(np.prod(self.shape[1:]))
        ws = self.rng.uniform(0.002, 0.02, k if per_channel else 1).astype(np.float32)
        wt = self.b.tensor(
            f"model/dense/w{self.n}",
            [k, n],
            data=self.rng.integers(-127, 128, (k, n)),
            scale=list(ws),
            zero=[0] * ws.size,
        )
        bt = self._bias(self.x, np.broadcast_to(ws, (k,)) if per_channel else ws, k if per_channel else 1)
        if not per_channel:  # per-tensor bias scale, k entries
            xs = self.b.tensors[self.x].scale[0]
            bt = self.b.tensor(
                f"model/bd{self.n}", [k], "int32", data=self.rng.integers(-3000, 3000, k), scale=[xs * ws[0]]
            )
        y = self._out("dense", [1, k])
        self.b.op(
            "FULLY_CONNECTED",
            [self.x, wt, bt],
            [y],
            "FullyConnectedOptions",
            FusedActivationFunction=ACT[act],
        )
        self.x, self.shape = y, [1, k]
        return self

    def pool(
        self,
        mode: str,
        k: tuple[int, int],
        stride: tuple[int, int],
        padding: str = "VALID",
        act: str = "NONE",
    ) -> Net:
        _, h, w, c = self.shape
        sh, sw = stride
        if padding == "SAME":
            ho, wo = -(-h // sh), -(-w // sw)
        else:
            ho, wo = (h - k[0]) // sh + 1, (w - k[1]) // sw + 1
        t = self.b.tensors[self.x]
        y = self._out(f"{mode}pool", [1, ho, wo, c], t.scale[0], t.zero[0])
        self.b.op(
            "MAX_POOL_2D" if mode == "max" else "AVERAGE_POOL_2D",
            [self.x],
            [y],
            "Pool2DOptions",
            Padding=PAD[padding],
            StrideW=sw,
            StrideH=sh,
            FilterWidth=k[1],
            FilterHeight=k[0],
            FusedActivationFunction=ACT[act],
        )
        self.x, self.shape = y, [1, ho, wo, c]
        return self

    def mean(self, keep_dims: bool = False, same_quant: bool = False) -> Net:
        rank = len(self.shape)
        axes = [1, 2] if rank == 4 else [1]
        c = self.shape[-1]
        ax = self.b.tensor(f"model/mean_axes{self.n}", [len(axes)], "int32", data=np.array(axes))
        t = self.b.tensors[self.x]
        shape = ([1, 1, 1, c] if rank == 4 else [1, 1, c]) if keep_dims else [1, c]
        y = self._out("mean", shape, t.scale[0] if same_quant else None, t.zero[0] if same_quant else None)
        self.b.op("MEAN", [self.x, ax], [y], "ReducerOptions", KeepDims=keep_dims)
        self.x, self.shape = y, shape
        return self

    def pad(self, pads: tuple[int, int, int, int]) -> Net:
        _, h, w, c = self.shape
        t, b, l, r = pads
        p = self.b.tensor(
            f"model/paddings{self.n}", [4, 2], "int32", data=np.array([[0, 0], [t, b], [l, r], [0, 0]])
        )
        tt = self.b.tensors[self.x]
        shape = [1, h + t + b, w + l + r, c]
        y = self._out("pad", shape, tt.scale[0], tt.zero[0])
        self.b.op("PAD", [self.x, p], [y], "PadOptions")
        self.x, self.shape = y, shape
        return self

    def add_from(self, other: int, other_shape: list[int], act: str = "NONE") -> Net:
        assert other_shape == self.shape
        y = self._out("add", list(self.shape))
        self.b.op("ADD", [self.x, other], [y], "AddOptions", FusedActivationFunction=ACT[act])
        self.x = y
        return self

    def concat_with(self, other: int, other_shape: list[int]) -> Net:
        t = self.b.tensors[self.x]
        shape = list(self.shape)
        shape[-1] += other_shape[-1]
        y = self._out("concat", shape, t.scale[0], t.zero[0])
        self.b.op(
            "CONCATENATION", [self.x, other], [y], "ConcatenationOptions", Axis=-1, FusedActivationFunction=0
        )
        self.x, self.shape = y, shape
        return self

    def softmax(self) -> Net:
        y = self.b.tensor("StatefulPartitionedCall:0", self.shape, scale=1 / 256, zero=-128)
        self.b.op("SOFTMAX", [self.x], [y], "SoftmaxOptions", Beta=1.0)
        self.x = y
        return self

    def build(self) -> bytes:
        return self.b.finish([self.input], [self.x])


def mobilenet_like(seed: int = 1) -> bytes:
    """A MobileNet-style block net: conv s2, depthwise + pointwise, residual add, mean, dense, softmax."""
    n = Net([1, 12, 12, 3], seed)
    n.conv(8, 3, 3, (2, 2), "SAME", "RELU6")
    skip, skip_shape = n.x, list(n.shape)
    n.conv(8, 3, 3, (1, 1), "SAME", "RELU6", depthwise=True).conv(8, 1, 1, act="NONE")
    n.add_from(skip, skip_shape)
    n.conv(16, 3, 3, (2, 2), "SAME", "RELU", depthwise=False)
    return n.mean().fc(4).softmax().build()


def conv1d_like(seed: int = 2) -> bytes:
    """A Conv1D sensor net as the converter writes it: EXPAND_DIMS -> CONV_2D (1 x k) -> RESHAPE, max pool."""
    n = Net([1, 32, 3], seed)
    n.reshape([1, 1, 32, 3], "EXPAND_DIMS").conv(8, 1, 5, (1, 2), "SAME", "RELU").reshape([1, 16, 8])
    n.reshape([1, 1, 16, 8], "EXPAND_DIMS").pool("max", (1, 2), (1, 2)).reshape([1, 8, 8])
    n.reshape([1, 1, 8, 8], "EXPAND_DIMS").conv(12, 1, 3, (1, 1), "VALID", "RELU").reshape([1, 6, 12])
    return n.mean().fc(3).build()
