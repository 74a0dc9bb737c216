"""Scheme search: maximize the summed contribution under a memory budget.

A candidate is a bias depth `k` (one of the measured depths) and a ratio per candidate layer
(0 = frozen, or one of the measured ratios). Its **gain** is `gain_bias[k] + sum gain_weight[layer, r]`
(free: a table lookup); its **cost** is the exact plan's total SRAM (`CostModel.exact`, ~0.1 s). The
currency of a fair comparison is the number of distinct schemes whose cost a method computes
(`evaluations`); every method skips the cost of candidates that could not improve on its best
feasible gain so far, and a method stops when its evaluation budget is spent.

- `evolutionary_search`: a population of feasible schemes; children by crossover of two parents
  (uniform over genes) and mutation (each gene re-drawn with probability 1/genes, at least one), top
  `population` survive; infeasible children are dropped.
- `random_search`: independent random schemes (random sparsity per sample).
- `greedy_search`: knapsack by ratio: from `last`, repeatedly take the move (deeper bias, or a larger
  ratio on one layer) with the best gain per extra byte among the moves that fit.

`search(...)` runs one of them and returns a `SearchResult` whose `spec` is a scheme dict that
`resolve_scheme` / `tinytrain compile --scheme FILE` accept.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tinytrain import TinytrainError
from tinytrain.sparse.contrib import Contributions
from tinytrain.sparse.cost import CostModel, SchemeKey, scheme_key, spec_of

METHODS = ("evolution", "random", "greedy")


@dataclass(frozen=True)
class Genome:
    k: int
    ratios: tuple[float, ...]  # one per candidate layer, 0 = frozen


class Problem:
    """Gains from a contribution table, costs from the exact plan, one budget; counts evaluations."""

    def __init__(self, contrib: Contributions, cost: CostModel, budget: int, max_evals: int) -> None:
        self.contrib = contrib
        self.cost = cost
        self.budget = int(budget)
        self.max_evals = int(max_evals)
        self.layers = list(contrib.layers)
        self.ks = sorted(contrib.bias_acc)
        self.ratios = [0.0, *sorted(contrib.ratios)]
        self.seen: dict[SchemeKey, int] = {}  # this run's evaluated schemes
        self.best: tuple[float, Genome] | None = None
        self.history: list[tuple[int, float]] = []  # (evaluations, best feasible gain) after each improvement

    def spec(self, g: Genome) -> dict[str, Any]:
        return {
            "bias_last_n": g.k,
            "weights": [
                {"layer": la, "input_channel_ratio": r}
                for la, r in zip(self.layers, g.ratios, strict=True)
                if r > 0
            ],
        }

    def gain(self, g: Genome) -> float:
        return self.contrib.bias_gain(g.k) + sum(
            self.contrib.weight_gain(la, r) for la, r in zip(self.layers, g.ratios, strict=True) if r > 0
        )

    @property
    def evaluations(self) -> int:
        return len(self.seen)

    @property
    def exhausted(self) -> bool:
        return self.evaluations >= self.max_evals

    def cost_of(self, g: Genome) -> int | None:
        """Exact cost; None if the evaluation budget is spent and the scheme was not evaluated before."""
        key = scheme_key(self.spec(g))
        if key not in self.seen:
            if self.exhausted:
                return None
            self.seen[key] = self.cost.exact(spec_of(key))
        return self.seen[key]

    def feasible(self, g: Genome) -> bool | None:
        c = self.cost_of(g)
        if c is None:
            return None
        ok = c <= self.budget
        if ok:
            gain = self.gain(g)
            if self.best is None or gain > self.best[0]:
                self.best = (gain, g)
                self.history.append((self.evaluations, gain))
        return ok

    def could_improve(self, g: Genome) -> bool:
        return self.best is None or self.gain(g) > self.best[0]

    def random_genome(self, rng: random.Random) -> Genome:
        p = rng.random()
        return Genome(
            rng.choice(self.ks),
            tuple(rng.choice(self.ratios[1:]) if rng.random() < p * 0.6 else 0.0 for _ in self.layers),
        )

    def empty(self) -> Genome:
        return Genome(0, tuple(0.0 for _ in self.layers))


@dataclass
class SearchResult:
    method: str
    budget: int
    spec: dict[str, Any]
    gain: float
    total: int  # exact plan total of `spec` (bytes)
    evaluations: int
    history: list[tuple[int, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "budget": self.budget,
            "scheme": self.spec,
            "gain": self.gain,
            "total": self.total,
            "evaluations": self.evaluations,
            "history": self.history,
        }


def evolutionary_search(
    p: Problem, seed: int = 0, population: int = 16, parents: int = 6, init: int | None = None
) -> None:
    rng = random.Random(seed)
    pop: list[Genome] = [p.empty()]
    p.feasible(p.empty())
    tries = 0
    while len(pop) < (init or population) and not p.exhausted and tries < 50 * population:
        tries += 1
        g = p.random_genome(rng)
        if p.feasible(g):
            pop.append(g)
    n_genes = len(p.layers) + 1
    stall = 0
    while not p.exhausted and stall < 2000:
        pop.sort(key=lambda g: -p.gain(g))
        pop = pop[:population]
        top = pop[:parents]
        a, b = rng.choice(top), rng.choice(top)
        k = a.k if rng.random() < 0.5 else b.k
        rs = [x if rng.random() < 0.5 else y for x, y in zip(a.ratios, b.ratios, strict=True)]
        genes = [i for i in range(n_genes) if rng.random() < 1.0 / n_genes] or [rng.randrange(n_genes)]
        for i in genes:
            if i == 0:
                k = rng.choice(p.ks)
            else:
                rs[i - 1] = rng.choice(p.ratios)
        child = Genome(k, tuple(rs))
        if child in pop or p.gain(child) <= p.gain(pop[-1]) and len(pop) >= population:
            stall += 1
            continue
        ok = p.feasible(child)
        if ok:
            pop.append(child)
            stall = 0
        else:
            stall += 1


def random_search(p: Problem, seed: int = 0) -> None:
    rng = random.Random(seed)
    p.feasible(p.empty())
    stall = 0
    while not p.exhausted and stall < 20000:
        g = p.random_genome(rng)
        before = p.evaluations
        if p.could_improve(g):
            p.feasible(g)
        stall = 0 if p.evaluations > before else stall + 1


def greedy_search(p: Problem, seed: int = 0) -> None:
    del seed  # deterministic
    cur = p.empty()
    if not p.feasible(cur):
        return
    cur_cost = p.cost_of(cur)
    assert cur_cost is not None
    while not p.exhausted:
        moves: list[Genome] = []
        deeper = [k for k in p.ks if k > cur.k]
        moves += [Genome(k, cur.ratios) for k in deeper]
        for i, r in enumerate(cur.ratios):
            for nr in p.ratios:
                if nr > r:
                    rs = list(cur.ratios)
                    rs[i] = nr
                    moves.append(Genome(cur.k, tuple(rs)))
        g0 = p.gain(cur)
        best: tuple[float, Genome, int] | None = None
        for m in moves:
            dg = p.gain(m) - g0
            if dg <= 0:
                continue
            c = p.cost_of(m)
            if c is None:
                break
            if c > p.budget:
                continue
            p.feasible(m)
            score = dg / max(c - cur_cost, 1)
            if best is None or score > best[0]:
                best = (score, m, c)
        if best is None:
            return
        cur, cur_cost = best[1], best[2]


SEARCHERS: dict[str, Callable[..., None]] = {
    "evolution": evolutionary_search,
    "random": random_search,
    "greedy": greedy_search,
}


def search(
    contrib: Contributions,
    cost: CostModel,
    budget: int,
    method: str = "evolution",
    max_evals: int = 300,
    seed: int = 0,
) -> SearchResult:
    """Best scheme (by summed gain) whose exact plan total is <= `budget` bytes. Refuses a budget below
    `cost.minimum()` (the `last` scheme: frozen forward pass + classifier update) with that minimum."""
    if method not in SEARCHERS:
        raise TinytrainError(f"unknown search method {method!r}: choose one of {', '.join(METHODS)}")
    minimum = cost.minimum()
    if budget < minimum:
        raise TinytrainError(
            f"budget {budget:,} B ({budget / 1024:.1f} KB) is below the minimum {minimum:,} B "
            f"({minimum / 1024:.1f} KB) that {cost.graph.name} @ {cost.graph.resolution}x"
            f"{cost.graph.resolution} with {cost.graph.num_classes} classes needs on board {cost.board}: "
            "the frozen forward pass plus the classifier's update (scheme `last`)"
        )
    missing = [la for la in contrib.layers if la not in {op.name for op in cost.graph.convs()}]
    if missing:
        raise TinytrainError(f"the contribution table names layers not in {cost.graph.name!r}: {missing}")
    p = Problem(contrib, cost, budget, max_evals)
    SEARCHERS[method](p, seed=seed)
    assert p.best is not None  # `last` fits (budget >= minimum)
    gain, g = p.best
    spec = p.spec(g)
    total = cost.exact(spec)  # the final scheme, verified with the exact plan
    if total > budget:
        raise TinytrainError(f"internal: found scheme needs {total} B > budget {budget} B")
    return SearchResult(method, budget, spec, gain, total, p.evaluations, p.history)


def last_k_layers(cost: CostModel, budget: int) -> dict[str, Any]:
    """Baseline: weights and biases of the last k convs (k includes the classifier), the largest k whose
    exact plan fits `budget`."""
    convs = [op.name for op in cost.graph.convs()]
    best: dict[str, Any] = {"bias_last_n": 0, "weights": []}
    for k in range(1, len(convs) + 1):
        layers = convs[len(convs) - k :]
        spec = {"bias_last_n": k - 1, "weights": [{"layer": la, "input_channel_ratio": 1.0} for la in layers]}
        if cost.exact(spec) > budget:
            break
        best = spec
    return best
