"""Memory cost of an update scheme: the compiler's exact plan, nothing else.

`CostModel.exact(spec)` compiles and plans the scheme through the job's assembly stage
(`tinytrain.job.prepare.assemble`, the one way a program is built from a model, a scheme and options):
the returned number *is* `plan.total`, the predicted total SRAM that `tinytrain compile` reports, under
whatever `CompileOptions` are current (pass `options` to pin them).
Results are cached by the scheme's canonical key (in memory, and optionally in a JSON file keyed by
model, resolution, classes, board and options), so a search pays for every distinct scheme once.

`component_table` gives the cost per bias depth `k` and the marginal cost of each (layer, ratio) on top
of a reference bias depth, all from exact plans; `approx` adds them up. The additive approximation is
for reports and a sanity check only (the arena is a peak, not a sum); searches use `exact`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from emulation.boards import DEFAULT_BOARD
from tinytrain import TinytrainError
from tinytrain.ir import Graph

SchemeKey = tuple[int, tuple[tuple[str, float], ...]]


def scheme_key(spec: dict[str, Any]) -> SchemeKey:
    """Canonical key of a scheme dict: (bias_last_n, sorted (layer, ratio)), frozen entries dropped."""
    ws = tuple(
        sorted(
            (str(w["layer"]), float(w["input_channel_ratio"]))
            for w in spec.get("weights", [])
            if float(w["input_channel_ratio"]) > 0
        )
    )
    return int(spec.get("bias_last_n", 0)), ws


def spec_of(key: SchemeKey) -> dict[str, Any]:
    k, ws = key
    return {"bias_last_n": k, "weights": [{"layer": la, "input_channel_ratio": r} for la, r in ws]}


def _compiler_digest() -> str:
    """Hash of the sources that decide a plan (compiler, autodiff rules, scheduler): a disk cache made
    by another version of them is not reused."""
    import tinytrain

    root = Path(tinytrain.__file__).parent
    h = hashlib.sha1()
    for f in sorted(
        [
            root / "compiler.py",
            root / "program.py",
            *(root / "autodiff").glob("*.py"),
            *(root / "schedule").glob("*.py"),
            *(root / "kernels").glob("*.py"),
        ]
    ):
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


class CostModel:
    """Exact SRAM cost (bytes) of schemes on one graph (with its final head) and board."""

    def __init__(
        self,
        graph: Graph,
        board: str | None = DEFAULT_BOARD,
        options: Any = None,
        cache_file: str | Path | None = None,
    ) -> None:
        from tinytrain.compiler import CompileOptions

        self.graph = graph
        self.board = board
        self.options = options or CompileOptions()
        self.cache: dict[SchemeKey, int] = {}
        self.plans = 0  # exact plans computed (cache misses)
        self.plan_seconds = 0.0
        self.cache_file = Path(cache_file) if cache_file else None
        if self.cache_file and self.cache_file.exists():
            try:
                doc = json.loads(self.cache_file.read_text())
                if doc.get("key") == self.identity():
                    for e in doc["costs"]:
                        self.cache[scheme_key(e["scheme"])] = int(e["total"])
            except (OSError, ValueError, KeyError, TypeError):
                pass  # a broken cache is recomputed

    def identity(self) -> dict[str, Any]:
        """What the costs depend on besides the scheme (the disk cache's key)."""
        g = self.graph
        head = g.op(g.producer(g.output).name) if g.producer(g.output) else None  # type: ignore[union-attr]
        digest = hashlib.sha1(head.weight.tobytes()).hexdigest()[:8] if head is not None else ""
        return {
            "compiler": _compiler_digest(),
            "model": g.name,
            "resolution": g.resolution,
            "classes": g.num_classes,
            "board": self.board,
            "options": asdict(self.options),
            "head": digest,
        }

    def save(self) -> None:
        if not self.cache_file:
            return
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "key": self.identity(),
            "costs": [{"scheme": spec_of(k), "total": v} for k, v in sorted(self.cache.items())],
        }
        tmp = self.cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.cache_file)

    def plan(self, spec: dict[str, Any] | str) -> Any:
        """The exact memory plan (`MemoryPlan`) of a scheme (dict or name), uncached."""
        from tinytrain.job.prepare import assemble
        from tinytrain.sparse.schemes import resolve_scheme

        t0 = time.perf_counter()
        asm = assemble(self.graph, resolve_scheme(spec, self.graph), self.options, board=self.board)
        self.plan_seconds += time.perf_counter() - t0
        return asm.plan

    def exact(self, spec: dict[str, Any]) -> int:
        """The total of `spec`'s exact plan (`assemble(graph, spec, options, board).plan.total`), cached."""
        key = scheme_key(spec)
        if key not in self.cache:
            self.cache[key] = int(self.plan(spec_of(key)).total)
            self.plans += 1
        return self.cache[key]

    def minimum(self) -> int:
        """The smallest total any scheme can have: `last` (frozen forward pass + the classifier's update,
        which every scheme includes)."""
        return self.exact({"bias_last_n": 0, "weights": []})

    def component_table(
        self, ks: list[int], layers: list[str], ratios: list[float], ref_bias: int
    ) -> CostTable:
        base = {k: self.exact({"bias_last_n": k}) for k in ks}
        ref = self.exact({"bias_last_n": ref_bias})
        marginal = {
            la: {
                r: self.exact({"bias_last_n": ref_bias, "weights": [{"layer": la, "input_channel_ratio": r}]})
                - ref
                for r in ratios
            }
            for la in layers
        }
        return CostTable(base, ref_bias, ref, marginal)


@dataclass
class CostTable:
    """Exact costs of the parts: `bias[k]` = total of bias depth k; `marginal[layer][r]` = total of
    (ref_bias + that weight update) minus total of ref_bias."""

    bias: dict[int, int]
    ref_bias: int
    ref_total: int
    marginal: dict[str, dict[float, int]]

    def approx(self, spec: dict[str, Any]) -> int:
        """Additive estimate: bias[k] + sum of marginals (k not in the table: nearest larger k)."""
        k, ws = scheme_key(spec)
        ks = sorted(self.bias)
        kk = next((x for x in ks if x >= k), ks[-1])
        try:
            return self.bias[kk] + sum(self.marginal[la][r] for la, r in ws)
        except KeyError as exc:
            raise TinytrainError(f"no component cost for {exc}") from exc

    def rows(self) -> list[dict[str, Any]]:
        out = [
            {
                "item": f"bias last {k}",
                "layer": "",
                "ratio": "",
                "bias_last_n": k,
                "total": v,
                "marginal": v - self.bias[min(self.bias)],
            }
            for k, v in sorted(self.bias.items())
        ]
        for la, d in self.marginal.items():
            out += [
                {
                    "item": f"{la} x{r:g}",
                    "layer": la,
                    "ratio": r,
                    "bias_last_n": self.ref_bias,
                    "total": self.ref_total + m,
                    "marginal": m,
                }
                for r, m in sorted(d.items())
            ]
        return out
