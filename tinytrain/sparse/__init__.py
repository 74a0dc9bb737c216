"""Sparse update: update schemes (and, later, the memory cost model, contribution analysis, search)."""

from tinytrain.sparse.schemes import Scheme, WeightUpdate, paper_budgets, resolve_scheme  # noqa: F401
from tinytrain.sparse.search import SearchResult, last_k_layers, search  # noqa: F401
