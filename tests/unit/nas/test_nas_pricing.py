"""NAS pricing: the lookup table must reproduce the simulator exactly, for every candidate, on every design."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tstack.api import price_table as build_price_table
from tstack.api import simulate
from tstack.errors import SpecError
from tstack.nas.space import Architecture, SearchSpace, space_from_dict
from tstack.simulate import simulate_workload
from tstack.spec.hardware import load_hardware
from tstack.spec.nas_space import load_space
from tstack.workload import Phase, build_workload

TINY_SPLIT = {
    "name": "tiny-split",
    "layers": [1, 2, 3],
    "heads": [2, 4],
    "d_model": [32, 64],
    "d_ff": [64, 96, 128],
    "head_rule": "split",
    "seq_len": 32,
    "vocab_size": 100,
}


def _check(
    space: SearchSpace, archs: list[Architecture], hardware: str, tmp_path: Path, phase: str = "prefill"
) -> None:
    table = build_price_table(space, hardware, phase=phase, cache_dir=tmp_path)
    vectorized = table.price_many(archs)
    for i, arch in enumerate(archs):
        whole = simulate(space.model_spec(arch), hardware, space.seq_len, phase=phase)
        one = table.price(arch)
        assert one.latency_cycles == pytest.approx(whole.latency_cycles, rel=1e-9, abs=0)
        assert one.energy_pj == pytest.approx(whole.energy_pj, rel=1e-9, abs=0)
        assert one.edp == pytest.approx(whole.edp, rel=1e-9, abs=0)
        assert vectorized.latency_cycles[i] == pytest.approx(whole.latency_cycles, rel=1e-9, abs=0)
        assert vectorized.energy_pj[i] == pytest.approx(whole.energy_pj, rel=1e-9, abs=0)


def _candidates(space: SearchSpace, n: int, seed: int) -> list[Architecture]:
    rng = np.random.default_rng(seed)
    archs = [space.largest(), space.smallest(), *(space.sample(rng) for _ in range(n))]
    if space.head_rule == "fixed":  # make sure layers really differ from each other
        assert any(len(set(a.heads)) > 1 and len(set(a.d_ff)) > 1 for a in archs)
    return archs


@pytest.mark.parametrize("hardware", ["gemmini-ibert", "gemmini-baseline"])
def test_table_equals_simulator_on_random_heterogeneous_candidates(hardware: str, tmp_path: Path) -> None:
    # gemmini-baseline runs Softmax/LayerNorm on the host, so de/requantization charges cross op boundaries there
    space = load_space("cpu")
    _check(space, _candidates(space, 30, seed=1), hardware, tmp_path)


def test_table_equals_simulator_on_the_paper_space(tmp_path: Path) -> None:
    space = load_space("paper")
    _check(space, _candidates(space, 8, seed=2), "gemmini-ibert", tmp_path)


def test_split_heads_and_generate_phase(tmp_path: Path) -> None:
    space = space_from_dict(TINY_SPLIT)
    archs = _candidates(space, 12, seed=3)
    _check(space, archs, "gemmini-ibert", tmp_path)
    _check(space, archs[:5], "gemmini-baseline", tmp_path, phase="generate")


def test_lm_head_is_priced_when_asked(tmp_path: Path) -> None:
    space = space_from_dict(TINY_SPLIT)
    table = build_price_table(space, "gemmini-ibert", lm_head=True, cache_dir=tmp_path)
    without = build_price_table(space, "gemmini-ibert", cache_dir=tmp_path)
    for arch in _candidates(space, 4, seed=4):
        wl = build_workload(space.model_spec(arch), space.seq_len, phase=Phase.PREFILL, lm_head=True)
        whole = simulate_workload(wl, load_hardware("gemmini-ibert"))
        assert table.price(arch).latency_cycles == pytest.approx(whole.latency_cycles, rel=1e-9)
        assert table.price(arch).latency_cycles > without.price(arch).latency_cycles


def test_cache_round_trip_and_damaged_entry(tmp_path: Path) -> None:
    space = space_from_dict(TINY_SPLIT)
    first = build_price_table(space, cache_dir=tmp_path)
    files = list(tmp_path.glob("price-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["key"] == first.key
    again = build_price_table(space, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.attn_latency_cycles, first.attn_latency_cycles)
    other_seq = build_price_table(space, seq_len=16, cache_dir=tmp_path)
    assert other_seq.key != first.key and len(list(tmp_path.glob("price-*.json"))) == 2
    files[0].write_text("{not json")
    rebuilt = build_price_table(space, cache_dir=tmp_path)
    np.testing.assert_array_equal(rebuilt.ffn_energy_pj, first.ffn_energy_pj)


def test_bad_inputs(tmp_path: Path) -> None:
    space = space_from_dict(TINY_SPLIT)
    with pytest.raises(SpecError, match="decoder"):
        build_price_table(space, phase="encoder", cache_dir=tmp_path)
    with pytest.raises(SpecError, match="unknown phase"):
        build_price_table(space, phase="sideways", cache_dir=tmp_path)
    table = build_price_table(space, cache_dir=tmp_path)
    with pytest.raises(SpecError, match="not in search space"):
        table.price(Architecture(2, 48, (2, 2), (64, 64)))
    with pytest.raises(SpecError, match="shape"):
        table.price_indices(np.zeros((3, 2), dtype=np.int64))
