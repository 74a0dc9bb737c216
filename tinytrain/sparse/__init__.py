"""Sparse update: update schemes (and, later, the memory cost model, contribution analysis, search)."""

from tinytrain.sparse.schemes import Scheme, WeightUpdate, paper_budgets, resolve_scheme  # noqa: F401
