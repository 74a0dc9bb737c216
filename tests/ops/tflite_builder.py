"""Write small full-integer int8 `.tflite` files from numpy arrays, with the `tflite` package's flatbuffer
builders (no TensorFlow): the op-level test models. Scales are chosen by the test, not calibrated; the
numerics under test (TFLite Micro's integer kernels) do not depend on how they were chosen.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import flatbuffers
import numpy as np
import tflite


def _m(name: str) -> Any:
    return importlib.import_module(f"tflite.{name}")


TYPES = {"float32": 0, "int32": 2, "uint8": 3, "int64": 4, "int16": 7, "int8": 9}
NP = {
    "float32": np.float32,
    "int32": np.int32,
    "uint8": np.uint8,
    "int64": np.int64,
    "int16": np.int16,
    "int8": np.int8,
}


@dataclass
class _T:
    name: str
    shape: list[int]
    dtype: str
    scale: list[float] | None
    zero: list[int] | None
    qdim: int
    buffer: int
    signature: list[int] | None = None


@dataclass
class _Op:
    code: int
    inputs: list[int]
    outputs: list[int]
    opt_name: str | None
    opts: dict[str, Any] = field(default_factory=dict)


class TFLiteBuilder:
    def __init__(self) -> None:
        self.tensors: list[_T] = []
        self.buffers: list[bytes] = [b""]
        self.ops: list[_Op] = []
        self.codes: list[int] = []

    def tensor(
        self,
        name: str,
        shape: list[int] | tuple[int, ...],
        dtype: str = "int8",
        scale: float | list[float] | np.ndarray | None = None,
        zero: int | list[int] | None = None,
        data: np.ndarray | None = None,
        qdim: int = 0,
        signature: list[int] | None = None,
    ) -> int:
        buf = 0
        if data is not None:
            self.buffers.append(np.ascontiguousarray(np.asarray(data, NP[dtype])).tobytes())
            buf = len(self.buffers) - 1
        sc = None if scale is None else [float(s) for s in np.atleast_1d(scale)]
        zp = None if zero is None else [int(z) for z in np.atleast_1d(zero)]
        if sc is not None and zp is None:
            zp = [0] * len(sc)
        self.tensors.append(_T(name, [int(d) for d in shape], dtype, sc, zp, qdim, buf, signature))
        return len(self.tensors) - 1

    def op(
        self, builtin: str, inputs: list[int], outputs: list[int], opt_name: str | None = None, **opts: Any
    ) -> None:
        code = getattr(tflite.BuiltinOperator, builtin)
        if code not in self.codes:
            self.codes.append(code)
        self.ops.append(_Op(code, list(inputs), list(outputs), opt_name, opts))

    def finish(self, inputs: list[int], outputs: list[int]) -> bytes:
        b = flatbuffers.Builder(1024)

        def ivec(start: Any, vals: list[int], kind: str = "Int32") -> int:
            start(b, len(vals))
            for v in reversed(vals):
                getattr(b, f"Prepend{kind}")(v)
            return b.EndVector()

        buf_offs = []
        for data in self.buffers:
            d = b.CreateByteVector(data) if data else None
            _m("Buffer").BufferStart(b)
            if d is not None:
                _m("Buffer").BufferAddData(b, d)
            buf_offs.append(_m("Buffer").BufferEnd(b))
        t_offs = []
        for t in self.tensors:
            name = b.CreateString(t.name)
            shape = ivec(_m("Tensor").TensorStartShapeVector, t.shape)
            sig = ivec(_m("Tensor").TensorStartShapeSignatureVector, t.signature) if t.signature else None
            q = None
            if t.scale is not None:
                sc = ivec(_m("QuantizationParameters").QuantizationParametersStartScaleVector, [], "Float32")
                _m("QuantizationParameters").QuantizationParametersStartScaleVector(b, len(t.scale))
                for v in reversed(t.scale):
                    b.PrependFloat32(v)
                sc = b.EndVector()
                zp = ivec(
                    _m("QuantizationParameters").QuantizationParametersStartZeroPointVector,
                    t.zero or [],
                    "Int64",
                )
                _m("QuantizationParameters").QuantizationParametersStart(b)
                _m("QuantizationParameters").QuantizationParametersAddScale(b, sc)
                _m("QuantizationParameters").QuantizationParametersAddZeroPoint(b, zp)
                _m("QuantizationParameters").QuantizationParametersAddQuantizedDimension(b, t.qdim)
                q = _m("QuantizationParameters").QuantizationParametersEnd(b)
            _m("Tensor").TensorStart(b)
            _m("Tensor").TensorAddShape(b, shape)
            if sig is not None:
                _m("Tensor").TensorAddShapeSignature(b, sig)
            _m("Tensor").TensorAddType(b, TYPES[t.dtype])
            _m("Tensor").TensorAddBuffer(b, t.buffer)
            _m("Tensor").TensorAddName(b, name)
            if q is not None:
                _m("Tensor").TensorAddQuantization(b, q)
            t_offs.append(_m("Tensor").TensorEnd(b))
        op_offs = []
        for o in self.ops:
            opt = None
            if o.opt_name:
                mod = _m(o.opt_name)
                getattr(mod, f"{o.opt_name}Start")(b)
                for k, v in o.opts.items():
                    getattr(mod, f"{o.opt_name}Add{k}")(b, v)
                opt = getattr(mod, f"{o.opt_name}End")(b)
            ins = ivec(_m("Operator").OperatorStartInputsVector, o.inputs)
            outs = ivec(_m("Operator").OperatorStartOutputsVector, o.outputs)
            _m("Operator").OperatorStart(b)
            _m("Operator").OperatorAddOpcodeIndex(b, self.codes.index(o.code))
            _m("Operator").OperatorAddInputs(b, ins)
            _m("Operator").OperatorAddOutputs(b, outs)
            if opt is not None:
                _m("Operator").OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, o.opt_name))
                _m("Operator").OperatorAddBuiltinOptions(b, opt)
            op_offs.append(_m("Operator").OperatorEnd(b))

        def tvec(start: Any, offs: list[int]) -> int:
            start(b, len(offs))
            for x in reversed(offs):
                b.PrependUOffsetTRelative(x)
            return b.EndVector()

        tensors = tvec(_m("SubGraph").SubGraphStartTensorsVector, t_offs)
        operators = tvec(_m("SubGraph").SubGraphStartOperatorsVector, op_offs)
        sin = ivec(_m("SubGraph").SubGraphStartInputsVector, inputs)
        sout = ivec(_m("SubGraph").SubGraphStartOutputsVector, outputs)
        sname = b.CreateString("main")
        _m("SubGraph").SubGraphStart(b)
        _m("SubGraph").SubGraphAddTensors(b, tensors)
        _m("SubGraph").SubGraphAddOperators(b, operators)
        _m("SubGraph").SubGraphAddInputs(b, sin)
        _m("SubGraph").SubGraphAddOutputs(b, sout)
        _m("SubGraph").SubGraphAddName(b, sname)
        sg = _m("SubGraph").SubGraphEnd(b)
        code_offs = []
        for c in self.codes:
            _m("OperatorCode").OperatorCodeStart(b)
            _m("OperatorCode").OperatorCodeAddDeprecatedBuiltinCode(b, min(c, 127))
            _m("OperatorCode").OperatorCodeAddBuiltinCode(b, c)
            _m("OperatorCode").OperatorCodeAddVersion(b, 1)
            code_offs.append(_m("OperatorCode").OperatorCodeEnd(b))
        codes = tvec(_m("Model").ModelStartOperatorCodesVector, code_offs)
        sgs = tvec(_m("Model").ModelStartSubgraphsVector, [sg])
        bufs = tvec(_m("Model").ModelStartBuffersVector, buf_offs)
        desc = b.CreateString("tinytrain test model")
        _m("Model").ModelStart(b)
        _m("Model").ModelAddVersion(b, 3)
        _m("Model").ModelAddOperatorCodes(b, codes)
        _m("Model").ModelAddSubgraphs(b, sgs)
        _m("Model").ModelAddBuffers(b, bufs)
        _m("Model").ModelAddDescription(b, desc)
        b.Finish(_m("Model").ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def tflm_run(model: bytes, xs: np.ndarray, tensor: int | None = None) -> np.ndarray:
    """The TFLite Micro interpreter's int8 outputs (or those of tensor index `tensor`, e.g. the logits
    before a SOFTMAX) for a batch of int8 inputs, one invoke per sample."""
    from tflite_micro.python.tflite_micro import runtime

    if tensor is None:
        interp = runtime.Interpreter.from_bytes(model)
    else:
        interp = runtime.Interpreter.from_bytes(
            model, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors
        )
    outs = []
    for x in xs:
        interp.set_input(np.ascontiguousarray(x[None]), 0)
        interp.invoke()
        y = interp.get_output(0) if tensor is None else interp.GetTensor(tensor, 0)["tensor_data"]
        outs.append(np.array(y).reshape(-1).copy())
    return np.stack(outs)
