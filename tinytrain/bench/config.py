"""Benchmark matrix configuration (TOML, see bench/matrix.toml and docs/benchmarks.md).

```toml
[bench]                      # defaults for every row
dataset = "faces"            # faces, digits or a path (image folder, .npz, .csv, .ts; relative to this file)
classes = 2                  # classes of the new head (a path dataset: the data's, this is then a check)
steps = 2                    # training steps per row (no evaluation)
timeout = 1800               # seconds per row
check_reference = true       # compare each run with the host reference (bit-exact)

[[matrix]]                   # one or more cross-products; rows are the union
models = ["mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3"]
schemes = ["full", "last", "bias", "paper:*"]   # paper:* = the model's five published budgets,
boards = ["m7", "m4"]                           # paper:headline = its ~100 KB scheme
resolutions = [128]
options = [{}, {split_weights = false}]         # optional: CompileOptions per row ({} = the defaults)

[pytorch]                    # host anchors (subprocess each): fp32 PyTorch training, batch 1
models = ["mcunet-5fps", "mbv2-w0.35", "proxyless-w0.3"]
resolution = 128
steps = 5
schemes = ["full", "paper:headline"]

[paper]
include = true               # the published figures as reference rows
```
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from tinytrain import TinytrainError
from tinytrain.bench.paper import HEADLINE_SCHEME

ROW_DEFAULTS: dict[str, Any] = {
    "dataset": "faces",
    "classes": 2,
    "steps": 2,
    "lr": 0.002,
    "timeout": 1800.0,
    "check_reference": True,
}


@dataclass(frozen=True)
class RowSpec:
    """One benchmark run: one CSV row."""

    model: str
    scheme: str
    board: str
    resolution: int
    dataset: str = "faces"  # faces, digits or an absolute path (parse_config resolves it)
    classes: int | None = 2  # None: the data's class count (a path dataset without `classes`)
    steps: int = 2
    lr: float = 0.002
    timeout: float = 1800.0
    check_reference: bool = True
    # the compiler options that differ from CompileOptions' defaults, canonical text (`options_text`):
    # "" = the defaults, e.g. "split_weights=false" or "patch_grid=2,patch_cut=3"
    options: str = ""

    def key(self) -> str:
        """Identity of the row (what the baseline gate matches on; rows with default options keep the key
        they had before the options existed)."""
        classes = "data" if self.classes is None else self.classes
        key = (
            f"{self.model}|{self.scheme}|{self.board}|r{self.resolution}|{self.dataset}"
            f"|c{classes}|s{self.steps}"
        )
        return f"{key}|{self.options}" if self.options else key

    def slug(self) -> str:
        """The row's cache and build name; a path dataset's content hash is part of it (changed data: a new
        row, never a cached one)."""
        from tinytrain.data.identity import dataset_identity

        ident = dataset_identity(self.dataset)  # faces/digits: the name itself (slugs unchanged)
        text = self.key().replace(f"|{self.dataset}|", f"|{ident}|")
        text = text.replace("|", "-").replace(":", "-").replace("/", "_").replace(",", "+")
        doc: dict[str, Any] = asdict(self)
        if not self.options:  # the slug (cache file, build directory) of a default row stays as it was
            del doc["options"]
        if ident != self.dataset:
            doc["dataset_identity"] = ident
        return f"{text}-{hashlib.sha1(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:8]}"

    def compile_options(self) -> Any:
        """The row's CompileOptions (the defaults with `options` applied)."""
        from tinytrain.compiler import CompileOptions

        return CompileOptions(**parse_options_text(self.options, f"row {self.key()}"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TorchSpec:
    """A PyTorch host anchor: fp32 training of the same network, batch 1, in its own process."""

    model: str
    scheme: str  # "full" (all parameters) or a tinytrain scheme name (its tensors only)
    resolution: int = 128
    classes: int = 2
    steps: int = 5

    def key(self) -> str:
        return f"pytorch|{self.model}|{self.scheme}|r{self.resolution}|c{self.classes}|s{self.steps}"


@dataclass
class BenchConfig:
    rows: list[RowSpec]
    torch: list[TorchSpec] = field(default_factory=list)
    paper: bool = True
    source: str = ""


def expand_schemes(model: str, schemes: list[str]) -> list[str]:
    from tinytrain.sparse.schemes import paper_budgets

    out: list[str] = []
    for s in schemes:
        if s == "paper:*":
            out += [f"paper:{b}" for b in paper_budgets(model)]
        elif s == "paper:headline":
            if model not in HEADLINE_SCHEME:
                raise TinytrainError(f"no published ~100 KB scheme for model {model!r}")
            out.append(HEADLINE_SCHEME[model])
        else:
            out.append(s)
    return list(dict.fromkeys(out))


def _option_types() -> dict[str, type]:
    """CompileOptions field -> the type a value must have (bool, int, float or str; `int | None` -> int)."""
    from tinytrain.compiler import CompileOptions

    out: dict[str, type] = {}
    for name, hint in get_type_hints(CompileOptions).items():
        args = [a for a in getattr(hint, "__args__", (hint,)) if a is not type(None)]
        out[name] = args[0]
    return out


def _value_ok(v: Any, want: type) -> bool:
    if want is bool:
        return isinstance(v, bool)
    if isinstance(v, bool):
        return False
    return isinstance(v, int | float) if want is float else isinstance(v, want)


def _format_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def options_text(table: Any, where: str) -> str:
    """A table of CompileOptions fields (TOML `options` entry) -> the row's canonical options text: the
    values that differ from the defaults, in the fields' order, `name=value` joined by commas ("" = all
    defaults). TinytrainError (one line, naming `where` and the key) for an unknown field or a bad value."""
    from dataclasses import fields

    from tinytrain.compiler import CompileOptions

    if not isinstance(table, dict):
        raise TinytrainError(f"{where}: must be a table of compiler options, e.g. {{split_weights = false}}")
    types = _option_types()
    for k, v in table.items():
        if k not in types:
            raise TinytrainError(
                f"{where}: unknown compiler option `{k}` (valid: {', '.join(sorted(types))})"
            )
        want = types[k]
        if not _value_ok(v, want):
            raise TinytrainError(f"{where}: compiler option `{k}` must be a {want.__name__}, got {v!r}")
    try:
        opts = CompileOptions(**{k: float(v) if types[k] is float else v for k, v in table.items()})
    except TinytrainError as exc:
        raise TinytrainError(f"{where}: {exc}") from None
    default = CompileOptions()
    return ",".join(
        f"{f.name}={_format_value(getattr(opts, f.name))}"
        for f in fields(CompileOptions)
        if getattr(opts, f.name) != getattr(default, f.name)
    )


def parse_options_text(text: str, where: str) -> dict[str, Any]:
    """The inverse of `options_text`: "split_weights=false,patch_grid=2" -> {"split_weights": False, ...}."""
    if not text:
        return {}
    types = _option_types()
    out: dict[str, Any] = {}
    for part in text.split(","):
        name, eq, raw = part.partition("=")
        name = name.strip()
        if not eq or name not in types:
            raise TinytrainError(
                f"{where}: bad compiler option `{part}` in options {text!r} (expected name=value)"
            )
        want = types[name]
        try:
            if want is bool:
                if raw not in ("true", "false"):
                    raise ValueError(raw)
                out[name] = raw == "true"
            else:
                out[name] = want(raw)
        except ValueError:
            raise TinytrainError(
                f"{where}: compiler option `{name}` must be a {want.__name__}, got {raw!r}"
            ) from None
    return out


def _options_list(block: dict[str, Any], where: str) -> list[str]:
    """A [[matrix]] block's `options` (a list of tables; absent = [{}], the defaults) as options texts."""
    if "options" not in block:
        return [""]
    v = block["options"]
    if not isinstance(v, list) or not v:
        raise TinytrainError(
            f"{where}: `options` must be a non-empty list of tables, e.g. [{{}}, {{patch = false}}]"
        )
    return list(dict.fromkeys(options_text(t, f"{where} options #{j + 1}") for j, t in enumerate(v)))


def _list(block: dict[str, Any], name: str, where: str) -> list[Any]:
    v = block.get(name)
    if not isinstance(v, list) or not v:
        raise TinytrainError(f"{where}: `{name}` must be a non-empty list")
    return v


def parse_config(doc: dict[str, Any], source: str = "") -> BenchConfig:
    unknown = set(doc) - {"bench", "matrix", "pytorch", "paper"}
    if unknown:
        raise TinytrainError(f"{source}: unknown section(s) {sorted(unknown)}")
    defaults = {**ROW_DEFAULTS, **doc.get("bench", {})}
    bad = set(defaults) - set(ROW_DEFAULTS) - {"jobs"}
    if bad:
        raise TinytrainError(f"{source}: unknown [bench] key(s) {sorted(bad)}")
    defaults.pop("jobs", None)
    rows: list[RowSpec] = []
    for i, block in enumerate(doc.get("matrix", [])):
        where = f"{source} [[matrix]] #{i + 1}"
        over = {k: block[k] for k in ROW_DEFAULTS if k in block}
        data = _data_fields(doc.get("bench", {}), block, defaults["dataset"], source, where)
        over.update(data)
        extra = set(block) - set(ROW_DEFAULTS) - {"models", "schemes", "boards", "resolutions", "options"}
        if extra:
            raise TinytrainError(f"{where}: unknown key(s) {sorted(extra)}")
        options = _options_list(block, where)
        for model in _list(block, "models", where):
            for scheme in expand_schemes(model, _list(block, "schemes", where)):
                for board in _list(block, "boards", where):
                    for res in _list(block, "resolutions", where):
                        for opts in options:
                            rows.append(
                                RowSpec(
                                    model,
                                    scheme,
                                    board,
                                    int(res),
                                    **{**defaults, **over},  # type: ignore[arg-type]
                                    options=opts,
                                )
                            )
    rows = list(dict.fromkeys(rows))
    torch: list[TorchSpec] = []
    pt = doc.get("pytorch")
    if pt:
        for model in _list(pt, "models", f"{source} [pytorch]"):
            for scheme in expand_schemes(model, pt.get("schemes", ["full"])):
                torch.append(
                    TorchSpec(
                        model,
                        scheme,
                        int(pt.get("resolution", 128)),
                        int(pt.get("classes", defaults["classes"])),
                        int(pt.get("steps", 5)),
                    )
                )
    paper = bool(doc.get("paper", {}).get("include", True))
    return BenchConfig(rows, torch, paper, source)


def _data_fields(
    bench: dict[str, Any], block: dict[str, Any], default: str, source: str, where: str
) -> dict[str, Any]:
    """A path dataset: resolved against the config file's folder (rows run from the repository root) and
    checked to exist; without an explicit `classes` the head takes the data's class count."""
    from tinytrain.data import DataError
    from tinytrain.data.identity import is_path_dataset

    spec = str(block.get("dataset", default))
    if not is_path_dataset(spec):
        return {}
    path = Path(spec).expanduser()
    if not path.is_absolute():
        path = (Path(source).parent if source else Path.cwd()) / path
    if not path.exists():
        raise DataError(
            f"{where}: dataset {spec!r}: no such file or folder ({path}); give faces, digits or a path to an "
            "image folder, .npz, .csv or .ts (relative to the config file)"
        )
    out: dict[str, Any] = {"dataset": str(path.resolve())}
    if "classes" not in block and "classes" not in bench:
        out["classes"] = None
    return out


def load_config(path: str | Path) -> BenchConfig:
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise TinytrainError(f"no benchmark config {p}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TinytrainError(f"{p}: {exc}") from None
    return parse_config(doc, str(p))


def config_jobs(path: str | Path) -> int | None:
    """`[bench] jobs` of a config file, if set."""
    doc = tomllib.loads(Path(path).read_text())
    j = doc.get("bench", {}).get("jobs")
    return int(j) if j else None
