"""The simulator's exhaustive mapper on convolutions: the better of the 7-loop conv optimum and the im2col optimum."""

from __future__ import annotations

import importlib

import pytest

import tstack
from tstack.mapping.conv.cost import evaluate_conv
from tstack.mapping.matmul.mappers import MapperName
from tstack.report.simulate_doc import simulate_document
from tstack.simulate.engine import conv_shape, simulate_workload
from tstack.workload.analysis import build_workload
from tstack.workload.ops import OpKind

engine = importlib.import_module("tstack.simulate.engine")


def test_exhaustive_takes_the_direct_conv_only_where_it_lowers_the_edp(monkeypatch: pytest.MonkeyPatch) -> None:
    hw = tstack.load_hardware("gemmini-baseline")
    workload = build_workload(tstack.load_model("resnet50"), 224)
    both = simulate_workload(workload, hw, mapper=MapperName.EXHAUSTIVE)
    monkeypatch.setattr(engine, "direct_conv_if_better", lambda *args, **kwargs: None)
    im2col = simulate_workload(workload, hw, mapper=MapperName.EXHAUSTIVE)
    direct = 0
    for a, b in zip(im2col.ops, both.ops, strict=True):
        if a.kind is not OpKind.CONV:
            assert (a.latency_cycles, a.energy_pj) == (b.latency_cycles, b.energy_pj)
            continue
        assert b.latency_cycles * b.energy_pj <= a.latency_cycles * a.energy_pj * (1 + 1e-12), a.name
        if b.conv_mapping is None:
            assert (b.latency_cycles, b.energy_pj, b.mapping) == (a.latency_cycles, a.energy_pj, a.mapping)
            continue
        direct += 1
        assert b.mapping is None
        assert b.latency_cycles * b.energy_pj < a.latency_cycles * a.energy_pj
        op = next(o for o in workload.ops if o.name == b.name)
        cost = evaluate_conv(conv_shape(op), b.conv_mapping, hw)  # legal (check() passes) and priced the same
        assert b.latency_cycles - b.dequant_cycles == pytest.approx(cost.latency_cycles * op.repeat)
        assert b.energy_pj == pytest.approx(cost.energy_pj * op.repeat)
    assert 0 < direct < sum(o.kind is OpKind.CONV for o in both.ops)  # both mapspaces win somewhere
    doc = simulate_document(both, ops=True)
    assert any(o["conv_mapping"] is not None and o["mapping"] is None for o in doc["ops"])


def test_the_gemmini_mapper_still_prices_convs_as_im2col() -> None:
    result = tstack.simulate("resnet50", "gemmini-baseline", 224)
    assert all(o.conv_mapping is None for o in result.ops)
    assert all(o.mapping is not None for o in result.ops if o.kind is OpKind.CONV)
