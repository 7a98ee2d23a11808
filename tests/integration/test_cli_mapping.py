"""`tstack map` and `tstack mapspace` end to end: exported Timeloop nests and mappings read back, plots named by
their semantics, Timeloop's ID sampler, and convolutions mapped directly where that beats im2col."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tstack.api import map_model
from tstack.cli import app
from tstack.mapping.mapspace import PAPER_OPS, timeloop_hardware
from tstack.mapping.timeloop.mapping_io import names_conv_dims, nest_from_timeloop
from tstack.spec.hardware import load_hardware


@pytest.fixture(scope="module")
def hw():
    return load_hardware("gemmini-baseline")


def test_mapspace_export_writes_timeloop_nests(tmp_path):
    runner = CliRunner()
    args = ["mapspace", "--ops", "bert-base-mha", "--samples", "2000", "--semantics", "nest", "--export", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load((tmp_path / "bert-base-mha.timeloop.yaml").read_text())
    hw = timeloop_hardware(load_hardware("gemmini-baseline"))
    back = nest_from_timeloop(doc, PAPER_OPS["bert-base-mha"], hw)
    assert back.spatial_n[0] == back.spatial_k[0] == 16
    refused = runner.invoke(app, ["mapspace", "--ops", "bert-base-mha", "--samples", "10", "--export", str(tmp_path)])
    assert refused.exit_code == 2 and "--semantics timeloop, nest" in refused.stderr  # one line, exit 2


def test_mapspace_plot_names_the_semantics(tmp_path):
    runner = CliRunner()
    for semantics, name in (
        ("nest", "mapspace_gemmini-baseline_nest.png"),
        ("tstack", "mapspace_gemmini-baseline.png"),
    ):
        args = ["mapspace", "--ops", "bert-base-mha", "--samples", "500", "--semantics", semantics]
        result = runner.invoke(app, [*args, "--plot", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).stat().st_size > 10_000


def test_timeloop_ids_cli() -> None:
    result = CliRunner().invoke(
        app, ["mapspace", "--semantics", "timeloop-ids", "--ops", "bert-base-mha", "--samples", "2000", "--json"]
    )
    assert result.exit_code == 0, result.output
    bad = CliRunner().invoke(app, ["mapspace", "--semantics", "nest", "--sampler", "timeloop-ids", "--samples", "10"])
    assert bad.exit_code == 2 and "has none" in bad.stderr  # one line, exit 2


def test_map_runs_convolutions_as_simulate_does(hw) -> None:
    """ResNet-50: where a conv's 7-loop optimum beats its im2col matmul's, `map` reports it (and only there)."""
    rows = map_model("resnet50", hw)
    convs = [r for r in rows if r.conv_shape is not None]
    direct = [r for r in convs if r.conv is not None]
    assert 0 < len(direct) < len(convs)
    for r in direct:
        assert r.conv is not None and r.conv.edp < r.best.edp and r.best_edp == r.conv.edp
    assert all(r.best_edp == r.best.edp for r in rows if r.conv is None)


def test_map_export_and_mapping_round_trip_for_a_direct_conv(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "conv2.yaml"
    op = ["map", "resnet50", "--hw", "gemmini-baseline", "--op", "stage1.block0.conv2"]
    exported = runner.invoke(app, [*op, "--export", str(out)])
    assert exported.exit_code == 0, exported.output
    assert names_conv_dims(yaml.safe_load(out.read_text()))
    given = runner.invoke(app, [*op, "--mapping", str(out)])
    assert given.exit_code == 0, given.output
    assert "EDP 1.00x the best" in " ".join(given.output.split())
