"""Hardware-aware neural architecture search: search space, supernet, training, hardware cost and search.

The entry points are imported on first use, so ``import tstack.nas`` stays light (no torch, no optuna)::

    from tstack.api import load_space, price_table
    from tstack.nas import ProxyPerplexity, SearchConfig, run_search

    space = load_space("cpu")
    table = price_table(space, "gemmini-ibert")  # latency/energy/EDP of any candidate in microseconds
    results = run_search(space, table, ProxyPerplexity(space), storage="nas-run/study.journal",
                         config=SearchConfig(population=16, iterations=10))
    front = results.front()

Training (torch): ``train_supernet``, ``train_baseline``, ``TrainConfig``, ``load_corpus``, ``PerplexityEvaluator``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tstack.nas.data import load_corpus
    from tstack.nas.evaluate import PerplexityEvaluator
    from tstack.nas.pareto import Point, Selection, hypervolume_2d, pareto_front, pareto_mask, select_within
    from tstack.nas.pricing import CostArrays, HardwareCost, PriceTable, build_price_table
    from tstack.nas.proxy import ProxyPerplexity, decoder_params, spearman
    from tstack.nas.search import (
        SearchConfig,
        SearchProgress,
        StudyResults,
        SupernetObjective,
        load_results,
        open_storage,
        run_search,
    )
    from tstack.nas.space import Architecture, SearchSpace, space_from_dict
    from tstack.nas.train import TrainConfig, train_baseline, train_supernet

_EXPORTS = {
    "Architecture": "space",
    "SearchSpace": "space",
    "space_from_dict": "space",
    "PriceTable": "pricing",
    "HardwareCost": "pricing",
    "CostArrays": "pricing",
    "build_price_table": "pricing",
    "Point": "pareto",
    "Selection": "pareto",
    "pareto_mask": "pareto",
    "pareto_front": "pareto",
    "hypervolume_2d": "pareto",
    "select_within": "pareto",
    "ProxyPerplexity": "proxy",
    "decoder_params": "proxy",
    "spearman": "proxy",
    "SearchConfig": "search",
    "SearchProgress": "search",
    "StudyResults": "search",
    "SupernetObjective": "search",
    "run_search": "search",
    "load_results": "search",
    "open_storage": "search",
    "load_corpus": "data",
    "TrainConfig": "train",
    "train_supernet": "train",
    "train_baseline": "train",
    "PerplexityEvaluator": "evaluate",
}

__all__ = [
    "Architecture",
    "CostArrays",
    "HardwareCost",
    "PerplexityEvaluator",
    "Point",
    "PriceTable",
    "ProxyPerplexity",
    "SearchConfig",
    "SearchProgress",
    "SearchSpace",
    "Selection",
    "StudyResults",
    "SupernetObjective",
    "TrainConfig",
    "build_price_table",
    "decoder_params",
    "hypervolume_2d",
    "load_corpus",
    "load_results",
    "open_storage",
    "pareto_front",
    "pareto_mask",
    "run_search",
    "select_within",
    "space_from_dict",
    "spearman",
    "train_baseline",
    "train_supernet",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tstack.nas' has no attribute {name!r}")
    return getattr(importlib.import_module(f"tstack.nas.{module}"), name)
