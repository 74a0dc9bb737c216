"""PyTorch host anchor: fp32 training of the same network (tinytrain.torch_model.FloatNet, the float twin
of the int8 graph) on the host CPU, batch 1, plain SGD; peak RSS and step time of the training process.

Run in a fresh process per anchor (`python -m tinytrain.bench.torch_anchor SPEC.json OUT.json`), so the
peak RSS (getrusage `ru_maxrss`) is this training run's and nothing else's. Scheme `full` trains every
parameter (the paper's "PyTorch needs ~300 MB" comparison); a tinytrain scheme name trains only its
tensors (`scheme_parameters`). One thread (`torch.set_num_threads(1)`): a microcontroller has one core.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from tinytrain.bench.config import TorchSpec


def _rss_now() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(spec: TorchSpec) -> dict[str, Any]:
    import numpy as np
    import torch

    from tinytrain.job.prepare import load_graph
    from tinytrain.torch_model import FloatNet, cross_entropy, scheme_parameters

    torch.set_num_threads(1)
    torch.manual_seed(0)
    graph = load_graph(spec.model, spec.resolution, spec.classes, 0)
    net = FloatNet(graph)
    if spec.scheme == "full":
        params = list(net.parameters())
        for p in params:
            p.requires_grad_(True)
    else:
        from tinytrain.sparse.schemes import resolve_scheme

        params = scheme_parameters(net, resolve_scheme(spec.scheme, graph))
    opt = torch.optim.SGD(params, lr=1e-3)
    rng = np.random.default_rng(0)
    x = net.input_from_int8(rng.integers(-128, 128, (spec.resolution, spec.resolution, 3), dtype=np.int8))
    y = torch.tensor([1 % spec.classes])
    rss_model = _rss_now()
    times = []
    for _ in range(spec.steps + 1):  # the first step warms up (allocator, lazy init) and is not timed
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "kind": "pytorch",
        "model": spec.model,
        "scheme": spec.scheme,
        "board": f"host (PyTorch {torch.__version__}, fp32, CPU, 1 thread)",
        "resolution": spec.resolution,
        "classes": spec.classes,
        "steps": spec.steps,
        "status": "ok",
        "error": "",
        "host_rss_peak": peak,
        "host_rss_model": rss_model,
        "host_step_ms": round(1000 * statistics.median(times[1:]), 2),
        "macs_total": None,
        "note": f"measured: {sum(p.numel() for p in params):,} trainable parameters, SGD, batch 1",
    }


def main(argv: list[str]) -> int:
    spec_file, out_file = argv
    spec = TorchSpec(**json.loads(Path(spec_file).read_text()))
    t = time.perf_counter()
    try:
        row = measure(spec)
    except Exception as exc:
        row = {
            "kind": "pytorch",
            "model": spec.model,
            "scheme": spec.scheme,
            "resolution": spec.resolution,
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}",
            "note": traceback.format_exc()[-500:],
        }
    row["wall_s"] = round(time.perf_counter() - t, 2)
    Path(out_file).write_text(json.dumps({"row": row, "detail": {}}, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
