"""Hardware files: presets load, sizes parse, and bad files get one clear error naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import tstack
from tstack.errors import InfeasibleError, SpecError
from tstack.hardware.design import design_of
from tstack.spec import preset_names
from tstack.spec.hardware import load_hardware, parse_size_bytes


def test_presets_load_with_the_papers_sizes() -> None:
    assert set(preset_names("hardware")) >= {
        "paper-analytic",
        "gemmini-baseline",
        "gemmini-rebalanced",
        "gemmini-ibert",
    }
    base = design_of(load_hardware("gemmini-baseline"))
    assert base.scratchpad.capacity_bytes == 256 * 1024
    assert base.accumulator.capacity_bytes == 64 * 1024
    assert base.fill_shared and base.dram_bytes_per_cycle == 7.69  # one DMA bus feeds both on-chip memories
    assert design_of(load_hardware("gemmini-baseline-calibrated")).dram_bytes_per_cycle == 5  # fitted to Fig. 13
    ibert = load_hardware("gemmini-ibert")
    assert design_of(ibert).scratchpad.capacity_bytes == 64 * 1024 and ibert.normalization is not None
    assert ibert.activations is not None and ibert.activations.count == 16
    analytic_hw = load_hardware("paper-analytic")
    analytic = design_of(analytic_hw)
    assert analytic.l2 is not None and analytic.l2.capacity_bytes == 2 * 2**20 and analytic_hw.host is None
    assert analytic.accumulator.name == "accumulator"
    # Fig. 11: L2 <-> DRAM 64 B/cycle, local memories <-> L2 16 B/cycle
    assert (analytic.dram_bytes_per_cycle, analytic.scratchpad_fill_bytes_per_cycle) == (64, 16)


@pytest.mark.parametrize(
    ("text", "size"), [("64K", 65536), ("256KiB", 262144), ("2M", 2097152), (4096, 4096), ("1.5K", 1536)]
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size_bytes(text) == size


def _write(tmp_path: Path, change: dict[str, object], drop: str | None = None) -> Path:
    data = yaml.safe_load((Path(tstack.__file__).parent / "presets/hardware/gemmini-baseline.yaml").read_text())
    data.update(change)
    if drop:
        del data[drop]
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("change", "drop", "message"),
    [
        ({}, "clock_ghz", r"clock_ghz: Field required"),
        (
            {"pe_array": {"rows": 16, "cols": -4, "mac_energy_pj": 0.3}},
            None,
            r"pe_array\.cols: Input should be greater",
        ),
        (
            {"pe_array": {"rows": 16, "cols": 16, "dataflow": "row_stationary", "mac_energy_pj": 0.3}},
            None,
            r"pe_array\.dataflow: Input should be 'weight_stationary' or 'output_stationary'",
        ),
        (
            {
                "memory": [
                    {
                        "name": "dram",
                        "capacity": "lots",
                        "read_energy_pj_per_byte": 1,
                        "write_energy_pj_per_byte": 1,
                        "holds": ["inputs", "weights", "outputs"],
                    }
                ]
            },
            None,
            r"memory\.0\.capacity: Value error, 'lots' is not a size",
        ),
        (
            {
                "memory": [
                    {
                        "name": "dram",
                        "capacity": "-64K",
                        "read_energy_pj_per_byte": 1,
                        "write_energy_pj_per_byte": 1,
                        "holds": ["inputs"],
                    }
                ]
            },
            None,
            r"memory\.0\.capacity",
        ),
        (
            {
                "memory": [
                    {
                        "name": "dram",
                        "capacity": "1G",
                        "read_energy_pj_per_byte": 1,
                        "write_energy_pj_per_byte": 1,
                        "holds": ["inputs"],
                    }
                ]
            },
            None,
            r"no memory level holds weights",
        ),
    ],
)
def test_bad_hardware_files(tmp_path: Path, change: dict[str, object], drop: str | None, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_hardware(_write(tmp_path, change, drop))


def test_tile_that_cannot_fit_any_buffer(tmp_path: Path) -> None:
    data = yaml.safe_load(_write(tmp_path, {}).read_text())
    data["memory"][0]["capacity"] = 256  # a 256-byte accumulator cannot hold one 16x16 block of partial sums
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InfeasibleError, match="cannot hold one 16x16 block"):
        tstack.simulate("bert-base", path, 128)


def test_op_the_hardware_can_run_nowhere() -> None:
    hw = load_hardware("paper-analytic")
    import dataclasses

    from tstack.hardware.types import ActivationUnits

    no_softmax = dataclasses.replace(hw, activations=ActivationUnits(16, frozenset({"gelu", "add", "layernorm"})))
    with pytest.raises(InfeasibleError, match=r"layer0\.attn\.softmax \(softmax\) can run nowhere .* no host CPU"):
        tstack.simulate("bert-base", no_softmax, 128)


def test_output_stationary_is_refused_until_modelled(tmp_path: Path) -> None:
    path = _write(
        tmp_path, {"pe_array": {"rows": 16, "cols": 16, "dataflow": "output_stationary", "mac_energy_pj": 0.3}}
    )
    with pytest.raises(InfeasibleError, match="implements weight-stationary arrays; output_stationary is not modelled"):
        tstack.simulate("bert-base", path, 64)


def _file(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "hw.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_extends_restates_only_what_changes(tmp_path: Path) -> None:
    """A variant that extends a preset replaces whole top-level fields and keeps the rest: the -calibrated presets are
    their designs with another DMA link and host table, nothing else."""
    for name in ("gemmini-baseline", "gemmini-rebalanced", "gemmini-ibert"):
        shipped, calibrated = load_hardware(name), load_hardware(f"{name}-calibrated")
        assert calibrated.levels == shipped.levels and calibrated.pe == shipped.pe
        assert calibrated.cost_options == shipped.cost_options and calibrated.activations == shipped.activations
        assert design_of(calibrated).dram_bytes_per_cycle == 5 != design_of(shipped).dram_bytes_per_cycle
        assert calibrated.host is not None and shipped.host is not None
        assert calibrated.host.cycles_per_element != shipped.host.cycles_per_element
        assert calibrated.host.dram_bytes_per_cycle == shipped.host.dram_bytes_per_cycle
    hw = load_hardware(_file(tmp_path, {"extends": "gemmini-ibert", "name": "mine", "clock_ghz": 2.0}))
    assert hw.name == "mine" and hw.clock_hz == 2e9 and hw.levels == load_hardware("gemmini-ibert").levels


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"extends": "no-such-preset", "name": "x"}, "no-such-preset"),
        ({"extends": ["gemmini-ibert"], "name": "x"}, "extends: must be the name of a hardware preset"),
        (
            {"extends": "gemmini-ibert", "name": "x", "host": {"predicted_from": "rocket-kernels",
             "cycles_per_element": {"add": 1.0}, "dram_bytes_per_cycle": 8}},
            "either predicted_from or the cost table",
        ),
        (
            {"extends": "gemmini-ibert", "name": "x", "host": {"cycles_per_element": {"add": 1.0},
             "dram_bytes_per_cycle": 8}},
            "or predicted_from: rocket-kernels",
        ),
        (
            {"extends": "gemmini-ibert", "name": "x", "host": {"predicted_from": "spike", "dram_bytes_per_cycle": 8}},
            "host.predicted_from",
        ),
    ],
)  # fmt: skip
def test_bad_extends_and_host_files(tmp_path: Path, data: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message) as err:
        load_hardware(_file(tmp_path, data))
    assert "\n" not in str(err.value)


def test_predicted_host_comes_from_the_measured_kernels() -> None:
    """`predicted_from: rocket-kernels` prices every op with the Rocket model over the measured instruction counts;
    the table is the model's output, not a copy (a change of the model moves the preset)."""
    from tstack.spec.host import predicted_host

    hw = load_hardware("gemmini-baseline")
    assert hw.host is not None
    assert hw.host == predicted_host(hw.host).host
    costs = dict(hw.host.cycles_per_element)
    assert set(costs) >= {"softmax", "layernorm", "gelu", "add"} and all(c > 0 for c in costs.values())
