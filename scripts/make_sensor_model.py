"""Make the zoo's `sensor-conv1d`: a small Conv1d net pretrained on BasicMotions, int8 via ONNX.

Reproducible and seeded (`--seed`, default 0), CPU, about a minute:

1. pretrain the float `TinySensorNet` (Conv1d 6->12 k5 s2, 12->24 k5 s2, 24->24 k3 s2, ReLU each, global
   average pool, Linear 24->4: scripts/sensor_baseline.py's `SensorNet` at 3/4 width with a stride-2 last
   conv, about half its MACs, so that training every layer fits 20 ms per step on m4) on the scenario's
   pretraining split (the archive's 40 training recordings, normalized with their own per-channel
   statistics) with the baseline's recipe (Adam 3e-3, 150 epochs, batch 8), on the inputs a device gets
   (quantized with `INPUT_SCALE`, dequantized);
2. `torch.onnx.export` (opset 13) -> `onnxruntime.quantization.quantize_static`: QDQ, int8 activations and
   per-channel int8 weights, MinMax calibration on the pretraining split only (its 40 recordings, clipped
   to +-`INPUT_CLIP` standard deviations so the input range is about the device's);
3. tinytrain's ONNX importer (`tinytrain.models.importer.import_model`) -> a `tinytrain-ir/1` directory
   `tinytrain/zoo/sensor-conv1d/` (written atomically) with a README that records the measured accuracies:
   float vs imported int8 (tinytrain's host reference, the device's numerics) on the archive's held-out
   test recordings as recorded, and on them worn rotated (the personalization scenario's shift).

Usage: `PYTHONPATH=. python scripts/make_sensor_model.py [--seed 0] [--out tinytrain/zoo/sensor-conv1d]`
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sensor_baseline import PRETRAIN_EPOCHS, accuracy, as_device_input  # noqa: E402

from tinytrain.data.sensor import SensorScenario, sensor_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tinytrain" / "zoo" / "sensor-conv1d"
INPUT_CLIP = 4.0  # standard deviations: the calibration range of the input
INPUT_SCALE = (
    8.0 / 255
)  # what MinMax calibration on [-4, 4] gives (asymmetric int8): the float net trains on it
OPSET = 13


class TinySensorNet(nn.Module):
    """Conv1d blocks + global average pooling + linear: input [N, 6, 100] -> logits [N, 4]."""

    def __init__(self, channels: int = 6, classes: int = 4, width: int = 12) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(channels, width, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv1d(width, 2 * width, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv1d(2 * width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def pretrain(s: SensorScenario, seed: int) -> TinySensorNet:
    """scripts/sensor_baseline.py's recipe: Adam 3e-3, `PRETRAIN_EPOCHS` epochs of seeded batches of 8."""
    torch.manual_seed(seed)
    net = TinySensorNet()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    x = torch.from_numpy(np.ascontiguousarray(s.pretrain[0].transpose(0, 2, 1), np.float32))
    y = torch.from_numpy(s.pretrain[1])
    g = torch.Generator().manual_seed(seed)
    for _ in range(PRETRAIN_EPOCHS):
        net.train()
        for idx in torch.randperm(len(y), generator=g).split(8):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    return net.eval()


class _Reader:
    """onnxruntime CalibrationDataReader over the pretraining recordings, one at a time ([1, 6, 100])."""

    def __init__(self, x: np.ndarray) -> None:
        self._it = iter(x)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {"input": x[None]}


def export_onnx(net: TinySensorNet) -> bytes:
    buf = io.BytesIO()
    torch.onnx.export(
        net.eval(),
        (torch.zeros(1, 6, 100),),
        buf,
        dynamo=False,
        opset_version=OPSET,
        input_names=["input"],
        output_names=["output"],
        do_constant_folding=True,
    )
    return buf.getvalue()


def quantize_onnx(float_model: bytes, calib_ncl: np.ndarray, tmp: Path) -> bytes:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, pre, out = tmp / "float.onnx", tmp / "pre.onnx", tmp / "int8.onnx"
    src.write_bytes(float_model)
    quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    quantize_static(
        str(pre),
        str(out),
        _Reader(calib_ncl),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    return out.read_bytes()


def int8_accuracy(graph: Any, x8_nhwc: np.ndarray, y: np.ndarray) -> float:
    """Held-out accuracy of the imported int8 graph on the host reference (the device's integer numerics)."""
    from tinytrain.reference import infer

    preds = [int(np.argmax(infer(graph, xi.transpose(2, 0, 1)))) for xi in x8_nhwc]
    return float(np.mean(np.asarray(preds) == y))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="pretraining seed (weights init, batch order)")
    ap.add_argument("--out", default=str(OUT), help="model directory to write (replaced)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    from tinytrain.data import model_input
    from tinytrain.models.importer import import_model, write_model_dir

    # the splits: the pretraining recordings; the held-out archive test recordings as recorded and rotated
    s = as_device_input(sensor_scenario(0), INPUT_SCALE)
    net = pretrain(s, args.seed)
    float_model = export_onnx(net)
    calib = np.clip(s.pretrain[0], -INPUT_CLIP, INPUT_CLIP).transpose(0, 2, 1).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        q = quantize_onnx(float_model, calib, Path(tmp))
        (Path(tmp) / "sensor-conv1d.onnx").write_bytes(q)
        graph = import_model(Path(tmp) / "sensor-conv1d.onnx")
    graph.name = "sensor-conv1d"
    mi = model_input(graph)

    # accuracy on the archive's 40 test recordings: as recorded (the pretraining task) and rotated (the shift)
    rows: dict[str, dict[str, float]] = {}
    for what, rot in (("as recorded", np.eye(3)), ("worn rotated (180 deg about z)", None)):
        sc = sensor_scenario(0, rotation=rot)
        ys = np.concatenate([sc.adapt[1], sc.test[1]])
        sd = as_device_input(sensor_scenario(0, rotation=rot), INPUT_SCALE)
        xf = np.concatenate([sd.adapt[0], sd.test[0]])
        x8 = np.concatenate(
            [
                sc.int8("adapt", mi["input_scale"], mi["input_zero"])[0],
                sc.int8("test", mi["input_scale"], mi["input_zero"])[0],
            ]
        )
        rows[what] = {"float": accuracy(net, xf, ys), "int8": int8_accuracy(graph, x8, ys), "n": len(ys)}
    train_x8 = sensor_scenario(0).int8("pretrain", mi["input_scale"], mi["input_zero"])
    rows["pretraining split"] = {
        "float": accuracy(net, *s.pretrain),
        "int8": int8_accuracy(graph, *train_x8),
        "n": len(s.pretrain[1]),
    }
    for k, v in rows.items():
        print(f"{k:>32}: float {100 * v['float']:.1f} %, int8 {100 * v['int8']:.1f} % (n={v['n']})")

    out = write_model_dir(graph, args.out, force=True)
    meta = {
        "seed": args.seed,
        "input": mi,
        "params": graph.num_params(),
        "macs": graph.macs(),
        "accuracy": rows,
        "onnx": {"opset": OPSET, "quantization": "quantize_static QDQ, int8 per-channel weights, MinMax"},
    }
    (out / "make.json").write_text(json.dumps(meta, indent=1) + "\n")
    (out / "README.md").write_text(readme(meta))
    print(f"wrote {out} ({graph.num_params()} parameters, {graph.macs()} MACs)")
    return 0


def readme(meta: dict[str, Any]) -> str:
    acc = meta["accuracy"]
    lines = "\n".join(
        f"| {k} | {v['n']} | {100 * v['float']:.1f} % | {100 * v['int8']:.1f} % |" for k, v in acc.items()
    )
    mi = meta["input"]
    return f"""# sensor-conv1d: a 1-D int8 activity classifier for the sensor personalization job

Made by `PYTHONPATH=. python scripts/make_sensor_model.py --seed {meta["seed"]}` (seeded, CPU, reproducible;
this README and `make.json` are written by it). Format `tinytrain-ir/1` (`graph.json` + arrays), the ONNX
importer's output.

- Network: Conv1d(6->12, k5, s2) ReLU, Conv1d(12->24, k5, s2) ReLU, Conv1d(24->24, k3, s2) ReLU, global
  average pool, Linear(24->4): {meta["params"]:,} parameters, {meta["macs"]:,} MACs per inference;
  input `(C, H, W) = {tuple(mi["input_shape"])}` (6 channels, 100 steps), int8 with scale
  {mi["input_scale"]:.6g}, zero point {mi["input_zero"]} on per-channel standardized data
  (statistics of the pretraining split: `tinytrain.data.sensor`).
- Pretraining: float PyTorch on the 40 recordings of the archive's training file (scripts/sensor_baseline.py's
  recipe: Adam 3e-3, 150 epochs, batch 8, seeded), inputs quantized and dequantized as a device sees them.
- Quantization: `torch.onnx.export` (opset {meta["onnx"]["opset"]}) ->
  `onnxruntime.quantization.quantize_static` (QDQ, int8 activations, int8 per-channel weights, MinMax
  calibration on the pretraining recordings only, clipped to +-4 standard deviations) -> `tinytrain import`.
- Classes (index order): Badminton, Running, Standing, Walking.

Accuracy (float PyTorch vs the imported int8 graph on tinytrain's host reference, which is bit-exact with the
device), the archive's recordings:

| recordings | n | float | int8 |
|---|---|---|---|
{lines}

"Worn rotated" is the personalization scenario's shift (docs/data.md): before any adaptation.

## Licence

The weights are derived from BasicMotions (UEA/UCR time-series classification archive, Bagnall et al. 2018,
https://www.timeseriesclassification.com/description.php?Dataset=BasicMotions), as redistributed in aeon's
wheel (BSD 3-Clause, https://github.com/aeon-toolkit/aeon); the data files and their hashes are in
`tinytrain/data/basicmotions/` (see its README). The archive asks users to cite it. The network, the script
and these weights are part of tinytrain and under its licence.
"""


if __name__ == "__main__":
    sys.exit(main())
