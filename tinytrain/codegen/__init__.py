"""Code generation: a training `Program` + its memory plan -> C sources (jinja2 templates in
templates/, one emitter per kernel: the shared machinery's in emitters.py, each op's with the op in
tinytrain/ops/<op>), and the packed dataset file the training app
reads (datafile.py)."""

from tinytrain.codegen.datafile import TrainingJob, make_order  # noqa: F401
from tinytrain.codegen.emitters import EMITTERS, EmitContext  # noqa: F401
from tinytrain.codegen.generate import GeneratedModel, ParamInfo, generate, generate_model  # noqa: F401
