"""Hypothesis strategies shared by the cost-model tests of more than one op kind (matmul, conv)."""

from __future__ import annotations

from hypothesis import strategies as st

from tstack.hardware.types import CostOptions, FillDrain, L2Tiling, PartialSums


def cost_options(*, vary_l2_tiling: bool = False) -> st.SearchStrategy[CostOptions]:
    """Any combination of the cost model's modelling choices; the L2 tiling policy stays at its default unless
    `vary_l2_tiling` (it matters only on designs with an L2, so a test on designs without one need not draw it)."""
    l2_tiling = {"l2_tiling": st.sampled_from(list(L2Tiling))} if vary_l2_tiling else {}
    return st.builds(
        CostOptions,
        preload_hidden=st.booleans(),
        fill_drain=st.sampled_from(list(FillDrain)),
        partial_sums=st.sampled_from(list(PartialSums)),
        overlap_transfers=st.booleans(),
        shared_bandwidth=st.booleans(),
        **l2_tiling,
    )
