"""Hand-built Programs for the planner tests."""

from __future__ import annotations

import numpy as np

from tinytrain.program import Buffer, Program, Step, Storage


def buf(
    name: str, nbytes: int, storage: Storage = Storage.ARENA, role: str = "activation", layer: str = ""
) -> Buffer:
    return Buffer(name, "s8", (nbytes,), storage, layer=layer or name, role=role)


def program(buffers: list[Buffer], steps: list[Step], infer: list[Step] | None = None) -> Program:
    logits = next(iter(steps[-1].outputs.values())) if steps else ""
    return Program(
        model="toy",
        scheme={"name": "toy"},
        buffers={b.name: b for b in buffers},
        steps=steps,
        input_buffer="in",
        logits_buffer=logits,
        num_classes=2,
        infer_steps=infer or [],
    )


def step(
    ins: list[str], outs: list[str], layer: str = "", phase: str = "forward", kernel: str = "op"
) -> Step:
    return Step(
        kernel,
        {f"i{k}": n for k, n in enumerate(ins)},
        {f"o{k}": n for k, n in enumerate(outs)},
        layer=layer,
        phase=phase,
    )


def chain(sizes: list[int]) -> Program:
    """in -> a0 -> a1 -> ... : a straight chain of activations of the given sizes."""
    bufs = [buf("in", 16, Storage.INPUT)] + [buf(f"a{i}", n) for i, n in enumerate(sizes)]
    steps = [step(["in" if i == 0 else f"a{i - 1}"], [f"a{i}"], layer=f"l{i}") for i in range(len(sizes))]
    return program(bufs, steps)


def random_program(rng: np.random.Generator, n_steps: int = 30, n_bufs: int = 25) -> Program:
    """A random straight-line program: each step reads 0-3 already-written buffers and writes 1-2
    buffers (sometimes in place over one of its inputs, sometimes a scratch buffer)."""
    bufs = [buf("in", 32, Storage.INPUT)]
    for i in range(n_bufs):
        role = "scratch" if rng.random() < 0.15 else "activation"
        bufs.append(buf(f"b{i}", int(rng.integers(1, 300)), role=role))
    written: list[str] = []
    steps = []
    fresh = [b.name for b in bufs[1:] if b.role != "scratch"]
    scratch = [b.name for b in bufs[1:] if b.role == "scratch"]
    for t in range(n_steps):
        k = int(rng.integers(0, min(3, len(written)) + 1))
        ins = list(rng.choice(written, size=k, replace=False)) if k else ["in"]
        outs = []
        if fresh and (rng.random() < 0.7 or not written):
            outs.append(fresh.pop(0))
        elif written and ins[0] != "in":
            outs.append(ins[0])  # in place
        else:
            outs.append(fresh.pop(0) if fresh else "in")
        if scratch and rng.random() < 0.3:
            s = scratch[int(rng.integers(0, len(scratch)))]
            ins.append(s)
            outs.append(s)
        outs = [o for o in outs if o != "in"] or ([fresh.pop(0)] if fresh else [])
        if not outs:
            break
        steps.append(step([str(x) for x in ins], outs, layer=f"l{t}", kernel="op"))
        written.extend(o for o in outs if o not in written and o not in scratch)
    return program(bufs, steps)
