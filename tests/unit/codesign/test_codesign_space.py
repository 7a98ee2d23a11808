"""The co-design hardware space, design pricing with its op-window cache, and 3-D fronts."""

from __future__ import annotations

import numpy as np
import pytest

from tstack.codesign import DesignPricer, build_design, hypervolume, pareto_mask_nd
from tstack.errors import SpecError
from tstack.mapping.matmul.mappers import parse_mapper
from tstack.simulate import simulate_workload
from tstack.spec import load_model
from tstack.spec.codesign import hardware_space_from_dict, load_hardware_space
from tstack.spec.hardware import load_hardware
from tstack.workload import Phase, build_workload


def test_the_preset_loads_and_its_base_point_is_the_base_design() -> None:
    space = load_hardware_space("gemmini")
    assert space.size == 3 * 3 * 4 * 4 * 4 * 3 * 3 * 2
    assert space.base_params() == space.params(space.base_params().to_dict())  # the base design is in the space
    hw = build_design(space, space.base_params())
    wl = build_workload(load_model("bert-base"), 128)
    mapper = parse_mapper("exhaustive")
    ours, theirs = (
        simulate_workload(wl, hw, mapper=mapper),
        simulate_workload(wl, load_hardware("gemmini-ibert"), mapper=mapper),
    )
    assert ours.latency_cycles == theirs.latency_cycles and ours.energy_pj == theirs.energy_pj


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"pe_rows": [16], "banana": [1]}, "unknown parameter(s) banana"),
        ({"scratchpad_kib": {"start": 64, "stop": 32, "step": 16}}, "is empty"),
        ({"pe_cols": []}, "list of values is empty"),
        ({"nonlinear_units": ["ibert", "gpu"]}, "unknown value(s) ['gpu']"),
        ({"pe_rows": [16.5]}, "whole number"),
    ],
)
def test_bad_spaces_are_one_line_errors(params: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError) as info:
        hardware_space_from_dict({"parameters": params})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_pricing_equals_simulate_op_for_op_on_random_designs() -> None:
    """The op-window cache is exact: every op of BERT-Base and of a GPT-2 prefill equals `simulate_workload`'s."""
    space = load_hardware_space("gemmini")
    pricer = DesignPricer()
    workloads = [
        build_workload(load_model("bert-base"), 128),
        build_workload(load_model("gpt2"), 64, phase=Phase.PREFILL),
    ]
    rng = np.random.default_rng(3)
    for _ in range(4):
        genes = {name: values[int(rng.integers(len(values)))] for name, values in space.choices}
        hw = build_design(space, space.params(genes))
        for wl in workloads:
            assert pricer.price(wl, hw).ops == simulate_workload(wl, hw, mapper=parse_mapper("exhaustive")).ops
    stats = pricer.stats
    assert stats.ops_simulated < stats.ops_requested / 3  # repeated layers were priced once per design


def test_hypervolume_3d_matches_a_grid_count() -> None:
    rng = np.random.default_rng(0)
    pts = rng.random((12, 3))
    ref = (1.0, 1.0, 1.0)
    axis = (np.arange(60) + 0.5) / 60
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    dominated = np.zeros(len(grid), dtype=bool)
    for p in pts:
        dominated |= np.all(grid >= p, axis=1)
    assert hypervolume(pts, ref) == pytest.approx(dominated.mean(), abs=0.02)
    assert pareto_mask_nd([[1, 1, 1], [2, 2, 2], [0, 3, 1]]).tolist() == [True, False, True]


def test_a_space_can_be_taken_around_another_base_design() -> None:
    baseline = load_hardware("gemmini-baseline")
    space = load_hardware_space("gemmini", base=baseline)
    assert space.base is baseline and space.choices == load_hardware_space("gemmini").choices
    assert space.base_params().nonlinear_units.value == "none"  # gemmini-baseline has no special-function units


def test_the_codesign_package_reads_no_files_and_imports_no_upper_layer() -> None:
    """The base design arrives as a value; presets and files are the boundary layer's (tstack.spec.codesign)."""
    import ast
    from pathlib import Path

    import tstack.codesign

    upper = ("tstack.spec", "tstack.report", "tstack.commands", "tstack.cli")
    for path in Path(tstack.codesign.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad = [n for n in names if n.startswith(upper)]
            assert not bad, f"{path.name} imports {bad}"


def test_a_space_outside_the_area_model_is_refused_before_the_search() -> None:
    from tstack.codesign import CodesignProblem, check_problem
    from tstack.commands.codesign import component_area_mm2
    from tstack.errors import TstackError
    from tstack.nas.proxy import ProxyPerplexity
    from tstack.spec.nas_space import load_space

    shapes = load_space("cpu")
    space = hardware_space_from_dict({"parameters": {"l2_kib": [0, 8192]}})  # 8 MiB: beyond the 22 nm table
    problem = CodesignProblem(shapes, space, component_area_mm2, ProxyPerplexity(shapes), 5.0, 23.0)
    with pytest.raises(TstackError) as info:
        check_problem(problem)
    assert "outside area table" in str(info.value) and "\n" not in str(info.value)
