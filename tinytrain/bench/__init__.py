"""Benchmarks: an experiment matrix (TOML) -> one CSV row per run, anchors (PyTorch on the host, the
paper's published figures), plots, an HTML report, a Markdown summary and a baseline regression gate.

    tinytrain bench --config bench/matrix.toml [--jobs N] [--out results/bench]
    tinytrain bench --check results/baseline.csv [--config bench/ci.toml]

Modules: `config` (matrix files), `row` (one run, in its own process), `torch_anchor` (PyTorch anchor, in
its own process), `runner` (parallel, cached, CSV), `macs`, `kernels` (per-kernel profile), `paper`
(published figures), `gate` (baseline comparison), `report` (plots, HTML, summary).
"""

from tinytrain.bench.config import BenchConfig, RowSpec, TorchSpec, load_config, parse_config
from tinytrain.bench.gate import GateResult, compare

__all__ = ["BenchConfig", "GateResult", "RowSpec", "TorchSpec", "compare", "load_config", "parse_config"]
