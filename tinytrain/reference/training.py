"""Host training reference: executes a `Program` step by step with the numpy kernels.

This is what the firmware must match bit for bit: the same steps in the same order, each the numpy
twin of the C kernel the device calls. Buffers are numpy arrays held by name (the host needs no arena:
the planner's offsets matter only on the device). Kernels are bound once at construction, so a step
costs one Python call per kernel.

Run-time step arguments (`$` attrs, tinytrain/program.py): `$label`, `$neg_lr` (float32 `-lr`),
`$neg_lr_batch` (`f32(f32(-lr) * f32(1/n))` with n = `meta["optimizer"]["accumulate"]`), `$rng` (the shared
`Xorshift32`, seeded like the firmware's global state). Mini-batches: steps with `when == "batch_end"` run
only on every n-th `train_step` call since construction (the firmware counts from `tt_model_init`).

`kernels="native"` binds the host-native build of the C runtime instead (tinytrain.native: the device's C
compiled by the host's gcc, bit-exact with the numpy kernels call for call, tests/kernels/
test_native_vs_reference.py; the whole trainer: tests/kernels/test_native_trainer.py) wherever it has the
kernel, for long host runs (the accuracy evidence): the same results, 5-10x faster. The numpy kernels stay the
oracle every test compares against.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from tinytrain import TinytrainError
from tinytrain.kernels import backward, loss, memory_ops, optim
from tinytrain.kernels.fma import fma_enabled, fma_mode
from tinytrain.kernels.rng import Xorshift32
from tinytrain.program import NUMPY_DTYPE, WHEN_BATCH_END, Program, Step, Storage

DEFAULT_SEED = 0x2545F491
_MODULES = (backward, loss, memory_ops, optim)  # the shared machinery's kernels; the ops' own: ops.registry
_BLAS: Any = None


def _single_threaded_blas() -> contextlib.AbstractContextManager[Any]:
    """The kernels' matrices are small: multi-threaded BLAS costs 3-10x more than it saves (measured
    0.28 s -> 0.07 s per MCUNet step on 2 cores), so a step runs with one BLAS thread."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
        except ImportError:  # optional: results are identical either way, only speed differs
            _BLAS = False
    return _BLAS.limit(limits=1, user_api="blas") if _BLAS else contextlib.nullcontext()


KERNELS = ("numpy", "native")


def native_kernels(fma: bool | None = None) -> Any:
    """The host-native build of the runtime under the multiply-add contract `fma` (default: the current one,
    tinytrain.kernels.fma): a `tinytrain.native.NativeKernels`. Raises TinytrainError if no host C compiler
    can build it."""
    from tinytrain import native
    from tinytrain.kernels.fma import fma_enabled

    fused = fma_enabled() if fma is None else fma
    return native.load("portable" if fused else "portable-nofma")


def kernel_function(name: str, native: Any = None) -> Callable[..., Any]:
    """The numpy reference of catalogue kernel `name`; with `native` (a NativeKernels), its C twin where the
    native build has one."""
    if native is not None:
        fn = getattr(native, name, None)
        if callable(fn):
            return fn
    for mod in _MODULES:
        fn = getattr(mod, name, None)
        if callable(fn):
            return fn
    from tinytrain.ops.registry import kernel_function as ops_kernel  # every op kind's kernels

    fn = ops_kernel(name)
    if fn is not None:
        return fn
    raise TinytrainError(f"no reference kernel named {name!r}")


_Bound = tuple[
    Callable[..., Any],
    list[tuple[str, str]],
    dict[str, Any],
    list[tuple[str, str]],
    list[tuple[str, tuple[int, ...], Any]],
    Step,
]


class Trainer:
    """Executes a compiled program: `train_step`, `infer`, `evaluate`; parameters dump/load as npz.

    `trace(step, buffers)`, if set, is called after every executed step (debugging, gradient capture).
    """

    def __init__(self, program: Program, seed: int = DEFAULT_SEED, kernels: str = "numpy") -> None:
        if kernels not in KERNELS:
            raise TinytrainError(f"kernels must be one of {', '.join(KERNELS)}, got {kernels!r}")
        self.kernels = kernels
        #: the program's multiply-add contract (CompileOptions.fma, decided at compile time; a program without
        #: it, e.g. loaded from an old file: the process's current contract)
        self.fma = bool(program.meta.get("fma", fma_enabled()))
        self._native = native_kernels(self.fma) if kernels == "native" else None
        self.program = program
        self.rng = Xorshift32(seed)
        self.trace: Callable[[Step, dict[str, np.ndarray]], None] | None = None
        self.buffers: dict[str, np.ndarray] = {}
        for name, buf in program.buffers.items():
            if buf.storage in (Storage.FLASH, Storage.SRAM):
                if buf.data is None:
                    raise TinytrainError(f"program buffer {name!r} ({buf.storage.value}) has no initial data")
                arr = np.array(buf.data, dtype=NUMPY_DTYPE[buf.dtype], copy=True).reshape(buf.shape)
                if buf.storage is Storage.FLASH:
                    arr.setflags(write=False)  # a kernel writing flash is a compiler bug
                self.buffers[name] = arr
        self._train = [self._bind(s) for s in program.steps]
        # mini-batches: the steps of a sample that does not end its batch (no `batch_end` steps)
        self._train_mid = [b for b in self._train if b[-1].when != WHEN_BATCH_END]
        self._infer = [self._bind(s) for s in program.infer_steps]
        in_buf = program.buffers[program.input_buffer]
        self.input_shape = in_buf.shape
        self.steps_done = 0
        self.accumulate = int(program.meta.get("optimizer", {}).get("accumulate", 1))
        self._inv_accumulate = np.float32(1.0 / self.accumulate)
        self.batch_count = 0  # samples of the current mini-batch seen so far (the firmware's counter)

    def _bind(self, step: Step) -> _Bound:
        fn = kernel_function(step.kernel, self._native)
        static = {k: v for k, v in step.attrs.items() if not (isinstance(v, str) and v.startswith("$"))}
        dyn = [(k, v) for k, v in step.attrs.items() if isinstance(v, str) and v.startswith("$")]
        outs = []
        for _p, b in step.outputs.items():
            buf = self.program.buffers[b]
            outs.append((b, buf.shape, NUMPY_DTYPE[buf.dtype]))
        return fn, list(step.inputs.items()), static, dyn, outs, step

    def _run(self, bound: list[_Bound], runtime: dict[str, Any]) -> None:
        with _single_threaded_blas(), fma_mode(self.fma):
            self._run_steps(bound, runtime)

    def _run_steps(self, bound: list[_Bound], runtime: dict[str, Any]) -> None:
        bufs = self.buffers
        trace = self.trace
        for fn, ins, static, dyn, outs, step in bound:
            kw = {p: bufs[b] for p, b in ins}
            kw.update(static)
            for p, v in dyn:
                kw[p] = runtime[v]
            try:
                result = fn(**kw)
            except KeyError as exc:
                raise TinytrainError(
                    f"step {step.kernel} ({step.layer}): buffer {exc} read before written"
                ) from exc
            if result is not None:
                results = (result,) if len(outs) == 1 else result
                for (b, shape, dtype), r in zip(outs, results, strict=True):
                    a = np.asarray(r)
                    if a.dtype != dtype or a.size != int(np.prod(shape)):
                        raise TinytrainError(
                            f"step {step.kernel} ({step.layer}) wrote {a.dtype}{a.shape} to {b}, "
                            f"declared {np.dtype(dtype)}{shape}"
                        )
                    bufs[b] = a.reshape(shape)
            if trace is not None:
                trace(step, bufs)

    def _set_input(self, x_hwc: np.ndarray) -> None:
        x = np.asarray(x_hwc)
        if x.dtype != np.int8 or x.shape != self.input_shape:
            raise TinytrainError(
                f"input must be int8 {self.input_shape} (HWC), got {x.dtype}{tuple(x.shape)}"
            )
        self.buffers[self.program.input_buffer] = x

    def train_step(self, x_hwc: np.ndarray, label: int, lr: float) -> float:
        """One training step on one sample; returns the loss (float32, before the update). With mini-batches
        of n samples (`CompileOptions.accumulate`) the update happens on every n-th call only."""
        label = int(label)
        if not 0 <= label < self.program.num_classes:
            raise TinytrainError(f"label {label} outside [0, {self.program.num_classes})")
        self._set_input(x_hwc)
        self.batch_count += 1
        batch_end = self.batch_count >= self.accumulate
        if batch_end:
            self.batch_count = 0
        neg_lr = np.float32(-lr)
        runtime = {
            "$label": label,
            "$neg_lr": neg_lr,
            "$neg_lr_batch": np.float32(neg_lr * self._inv_accumulate),
            "$rng": self.rng,
        }
        self._run(self._train if batch_end else self._train_mid, runtime)
        self.steps_done += 1
        return float(self.buffers[self.program.meta.get("loss_buffer", "loss")].reshape(-1)[0])

    def infer(self, x_hwc: np.ndarray) -> np.ndarray:
        """int8 logits [K] of one int8 HWC sample with the current weights."""
        self._set_input(x_hwc)
        self._run(self._infer, {})
        return self.buffers[self.program.logits_buffer].reshape(-1).copy()

    def predict(self, x_hwc: np.ndarray) -> int:
        return int(np.argmax(self.infer(x_hwc)))  # ties: the lowest class index (as the firmware)

    def evaluate(self, xs: Iterable[np.ndarray], ys: Iterable[int]) -> float:
        """Top-1 accuracy over samples (int8 HWC) and labels."""
        n = correct = 0
        for x, y in zip(xs, ys, strict=True):
            correct += int(self.predict(x) == int(y))
            n += 1
        return correct / n if n else 0.0

    # parameters -------------------------------------------------------------------------------------
    def parameters(self) -> dict[str, np.ndarray]:
        """The trainable state (SRAM buffers: updated weights, biases, shadow copies, optimizer state), by
        buffer name."""
        return {
            name: self.buffers[name] for name, b in self.program.buffers.items() if b.storage is Storage.SRAM
        }

    def save(self, path: str | Path) -> None:
        state = {k: v.copy() for k, v in self.parameters().items()}
        state["__rng_state__"] = np.array([self.rng.state], np.uint32)
        state["__batch_count__"] = np.array([self.batch_count], np.uint32)
        np.savez(path, **state)

    def load(self, path: str | Path) -> None:
        try:
            npz = np.load(path, allow_pickle=False)
        except Exception as exc:  # OSError, BadZipFile, a pickle, a damaged header: not a parameter file
            raise TinytrainError(f"{path}: cannot read parameters ({type(exc).__name__}: {exc})") from None
        try:
            self._load_arrays(path, npz)
        except TinytrainError:
            raise
        except Exception as exc:  # a damaged member (zip CRC, truncated array, bad header)
            raise TinytrainError(f"{path}: damaged parameter file ({type(exc).__name__}: {exc})") from None

    def _load_arrays(self, path: str | Path, npz: Any) -> None:
        """Read and check every array first, then assign: a damaged file leaves the trainer as it was."""
        params = self.parameters()
        loaded = {}
        for name, arr in params.items():
            if name not in npz.files:
                raise TinytrainError(f"{path}: no array for {name!r} (was it saved from another program?)")
            new = npz[name]
            if new.shape != arr.shape or new.dtype != arr.dtype:
                raise TinytrainError(
                    f"{path}: {name!r} is {new.dtype}{new.shape}, expected {arr.dtype}{arr.shape}"
                )
            loaded[name] = new
        rng = [int(npz["__rng_state__"].ravel()[0])] if "__rng_state__" in npz.files else []
        batch = [int(npz["__batch_count__"].ravel()[0])] if "__batch_count__" in npz.files else []
        for name, new in loaded.items():
            params[name][...] = new
        if rng:
            self.rng.state = rng[0]
        if batch:
            self.batch_count = batch[0] % self.accumulate
