"""Host reference: executes IR graphs and training programs with the device's exact semantics."""

from tinytrain.reference.inference import infer, run_forward  # noqa: F401
