"""The study: resumable runs, an honest cumulative table, the report's content, and the command's errors."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.study.conftest import tiny_config
from tstack.cli import app
from tstack.studies import cumulative, gemmini, workload
from tstack.studies.runner import SCHEMA, load_study, run_study


class _Killed(BaseException):
    """Stands in for an interrupt: not a TstackError, so the study stops instead of recording it."""


def test_resume_redoes_no_finished_experiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tstack.studies import mapping

    calls: dict[str, int] = {"workload": 0, "gemmini": 0, "mapping": 0}

    def counting(module: Any, name: str) -> Any:
        real = module.run

        def run(config: Any, progress: Any, work_dir: Path) -> Any:
            calls[name] += 1
            return real(config, progress, work_dir)

        return run

    monkeypatch.setattr(workload, "run", counting(workload, "workload"))
    monkeypatch.setattr(gemmini, "run", counting(gemmini, "gemmini"))
    mapping_run = counting(mapping, "mapping")

    def killed(config: Any, progress: Any, work_dir: Path) -> Any:
        raise _Killed

    monkeypatch.setattr(mapping, "run", killed)
    with pytest.raises(_Killed):
        run_study(tiny_config(), tmp_path, only=["workload", "gemmini", "mapping"])
    assert calls == {"workload": 1, "gemmini": 1, "mapping": 0}
    assert not (tmp_path / "study.json").exists()  # the interrupted study wrote no half document

    monkeypatch.setattr(mapping, "run", mapping_run)
    calls_before = dict(calls)
    doc = run_study(tiny_config(), tmp_path, resume=True, only=["workload", "gemmini", "mapping"])
    assert calls == {**calls_before, "mapping": 1}  # neither finished experiment ran again
    assert doc["experiments"]["workload"]["cached"] and doc["experiments"]["gemmini"]["cached"]
    assert not doc["experiments"]["mapping"]["cached"] and doc["experiments"]["mapping"]["data"]["mapspace"]

    # a changed setting invalidates the cache: the same experiment is recomputed, not reused with stale data
    doc2 = run_study(tiny_config(seed=1), tmp_path, resume=True, only=["workload"])
    assert calls["workload"] == calls_before["workload"] + 1
    assert not doc2["experiments"]["workload"]["cached"]


def test_without_resume_everything_is_recomputed(tmp_path: Path) -> None:
    run_study(tiny_config(), tmp_path, only=["workload"])
    doc = run_study(tiny_config(), tmp_path, only=["workload"])
    assert not doc["experiments"]["workload"]["cached"]


def test_cumulative_end_to_end_is_the_product_of_measured_factors(fast_study: tuple[dict[str, Any], Path]) -> None:
    doc, _ = fast_study
    g = doc["experiments"]["gemmini"]["data"]
    m = doc["experiments"]["mapping"]["data"]["mapper"]
    c = doc["cumulative"]
    steps = [f["step"] for f in c["factors"]]
    has_nas = "nas" in doc["experiments"]
    assert steps == ["hardware + integer kernels", "mapping search"] + (["NAS (+0.1 perplexity)"] if has_nas else [])
    assert c["factors"][0]["gains"]["latency"] == g["speedup_latency"]
    assert c["factors"][1]["gains"]["edp"] == m["gain_edp"]
    for metric in ("latency", "energy", "edp"):
        expected = math.prod(f["gains"][metric] for f in c["factors"])
        assert c["end_to_end"][metric] == pytest.approx(expected, rel=1e-12)
    # the hardware latency factor is a ratio of the two designs' simulated latencies, not a constant
    base, target = g["designs"][0], g["designs"][-1]
    assert g["speedup_latency"] == pytest.approx(base["latency_cycles"] / target["latency_cycles"])
    if has_nas:
        n = doc["experiments"]["nas"]["data"]
        nas_edp = n["selected"]["0.1"]["gains"]["edp"]
        assert c["factors"][2]["gains"]["edp"] == nas_edp
        assert c["paper_mixed"]["value"] == pytest.approx(g["speedup_latency"] * nas_edp)
        # the NAS gain is a ratio of priced candidates: the selected one's EDP over the baseline's
        chosen = next(p for p in n["points"] if p["key"] == n["selected"]["0.1"]["key"])
        assert nas_edp == pytest.approx(n["baseline"]["edp"] / chosen["edp"])
    else:
        assert c["paper_mixed"]["value"] is None and not c["complete"]  # no NAS: no made-up 88.7x


def test_paper_mixed_product_uses_hardware_latency_and_nas_edp() -> None:
    data = {
        "gemmini": {"model": "m", "seq": 8, "baseline": "a", "target": "b", "speedup_latency": 30.0,
                    "gain_energy": 5.0, "gain_edp": 150.0},
        "nas": {"space": "cpu", "hardware": "b",
                "selected": {"0.1": {"gains": {"latency": 1.5, "energy": 2.0, "edp": 3.0}}}},
    }  # fmt: skip
    c = cumulative.derive(data)
    assert c["paper_mixed"]["value"] == pytest.approx(30.0 * 3.0)
    assert c["end_to_end"] == pytest.approx({"latency": 45.0, "energy": 10.0, "edp": 450.0})
    assert c["complete"]


def test_study_json_and_report(fast_study: tuple[dict[str, Any], Path]) -> None:
    doc, out = fast_study
    assert load_study(out / "study.json")["schema"] == SCHEMA
    html = (out / "report.html").read_text()
    assert "http://" not in html and "https://" not in html  # self-contained: nothing to fetch
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', html)
    pngs = sorted((out / "figures").glob("*.png"))
    assert len(images) == len(pngs) >= 6
    assert len(list((out / "figures").glob("*.svg"))) == len(pngs)
    assert html.index('id="headline"') < html.index("id='workload'")
    # every table row with a paper value shows a difference: Table 3's total AI at l = 128 is the paper's to 0.1%
    t3 = doc["experiments"]["workload"]["data"]["table3"][0]
    assert t3["seq"] == 128 and t3["ai"][-1] == pytest.approx(t3["paper_ai"][-1], rel=1e-3)
    assert "Why they differ" in html


def test_study_command_runs_and_resumes(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["study", "--quick", "--only", "workload,gemmini", "--out", str(tmp_path), "--seq", "128"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "Report:" in first.output and (tmp_path / "report.html").is_file()
    second = runner.invoke(app, [*args, "--resume"])
    assert second.exit_code == 0, second.output
    assert second.output.count("from the cache") == 2
    doc = json.loads((tmp_path / "study.json").read_text())
    assert all(e["cached"] for e in doc["experiments"].values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quick", "--full"], "--quick and --full exclude each other"),
        (["--model", "no-such-model"], "unknown model preset"),
        (["--only", "workload,nope"], "unknown experiment"),
        (["--seq", "0"], "--seq must be a positive"),
        (["--hw-target", "nope"], "unknown hardware preset"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "tstack.cli", "study", "--out", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_mapping_study_brackets_the_paper_with_timeloop_readings(fast_study: tuple[dict[str, Any], Path]) -> None:
    """Each mapspace op also carries the statistics under Timeloop's model for three readings of its mapspace; the
    whole-array nest and the free-spatial nest fall on either side (benchmarks/RESULTS-mapping.md, section D)."""
    doc, out = fast_study
    op = doc["experiments"]["mapping"]["data"]["mapspace"][0]
    by = {r["semantics"]: r for r in op["readings"]}
    assert list(by) == ["timeloop", "nest", "nest-free"]
    assert by["nest"]["p10"] < op["paper_p10"] < by["nest-free"]["p10"]
    assert by["nest"]["within_3x"] > op["paper_within_3x"] > by["nest-free"]["within_3x"]
    assert "nest-free" in (out / "report.html").read_text()
    assert (out / "figures" / "mapspace_readings.png").read_bytes()[:4] == b"\x89PNG"  # the bracket, drawn


def test_mapping_study_sets_the_paper_beside_real_timeloop(fast_study: tuple[dict[str, Any], Path]) -> None:
    """The mapspace section shows the paper, real Timeloop on Gemmini's published files (measured) and tstack's
    timeloop-ids reading (predicted) side by side: the reading lands within sampling noise of the measurement (three
    standard errors of a difference of two runs), both far from the paper, and the report says so plainly."""
    doc, out = fast_study
    op = doc["experiments"]["mapping"]["data"]["mapspace"][0]
    measured, predicted = op["timeloop"]["measured"], op["timeloop"]["predicted"]
    assert measured["samples"] == predicted["samples"] == 100_000
    assert abs(predicted["p10"] - measured["p10"]) < 3 * 2**0.5 * measured["p10_stderr"]
    assert abs(predicted["within_3x"] - measured["within_3x"]) < 3 * 2**0.5 * measured["within_3x_stderr"]
    assert measured["p10"] > 2 * op["paper_p10"] and measured["within_3x"] < op["paper_within_3x"] / 2
    html = (out / "report.html").read_text()
    assert "real Timeloop (measured)" in html and "out of reach of every published artefact" in html


def test_mapping_study_marks_readings_a_design_cannot_have() -> None:
    """A baseline outside Gemmini's hierarchy (an L2) has no reading under Timeloop's Gemmini description: the study
    records why instead of failing."""
    from tests.study.conftest import TINY
    from tstack.report.study_html import _readings
    from tstack.studies import mapping
    from tstack.studies.base import Scale, StudyConfig

    config = StudyConfig(scale=Scale.QUICK, seq=128, settings=TINY, threads=1, hw_baseline="paper-analytic")
    ops = mapping._mapspace(config, lambda _: None)
    readings = {r["semantics"]: r for r in ops[0]["readings"]}
    assert all("also has l2" in readings[s]["error"] for s in ("timeloop", "nest", "nest-free"))
    assert "n/a" in _readings(ops)


def test_fusion_study_uses_the_papers_memories_and_marks_what_does_not_fit() -> None:
    """Figs. 21-22's setting (256 kB scratchpad, 128 and 256 kB accumulators) on the target; at l = 4096 the forced
    Q x K^T row tile does not fit the 128 kB accumulator: no infinite number reaches study.json, the report says
    so, the figure draws no bar for it; W_out + LN at 128 kB compares matmul to matmul, as the paper states it."""
    import dataclasses
    import warnings

    from tests.study.conftest import TINY
    from tstack.report import study_html, study_plots
    from tstack.spec.loading import load_model
    from tstack.studies import mapping

    config = dataclasses.replace(tiny_config(), settings=dataclasses.replace(TINY, fusion_seqs=(512, 4096)))
    rows = mapping._fusion(load_model("bert-base"), config, lambda _: None)
    assert {r["accumulator_kb"] for r in rows} == {128, 256}
    qk = next(r for r in rows if (r["pair"], r["seq"], r["accumulator_kb"]) == ("qk+softmax", 4096, 128))
    assert not qk["fits"] and qk["fused_cycles"][0] is None and qk["change"] is None
    json.dumps(rows, allow_nan=False)  # strict JSON: no Infinity
    assert study_html._fusion_change(qk) == "–"
    w_out = next(r for r in rows if (r["pair"], r["seq"], r["accumulator_kb"]) == ("out+layernorm", 512, 128))
    assert w_out["paper_of_matmul"] and f"(matmul {100 * w_out['matmul_change']:+.0f}%)" in study_html._fusion_change(
        w_out
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        study_plots._fusion({"fusion": rows})


def test_gemmini_study_carries_the_speedups_sensitivity(fast_study: tuple[dict[str, Any], Path]) -> None:
    """Each predicted, calibrated, assumed or optional input moved over its range around the presets (predicted) and
    around the -calibrated presets: the presets' reference is the study's own speedup, every row brackets its
    reference, the speedups move the way the physics says, and a swapped input gives what a direct simulation of that
    design gives."""
    import dataclasses

    import tstack
    from tstack.spec.hardware import load_hardware

    doc, out = fast_study
    g = doc["experiments"]["gemmini"]["data"]
    s = g["sensitivity"]
    json.dumps(s, allow_nan=False)
    assert s["bases"]["predicted"]["speedup"] == pytest.approx(g["speedup_latency"], rel=1e-12)
    assert s["bases"]["calibrated"]["host"] == "calibrated" and s["bases"]["predicted"]["host"] == "predicted"
    rows = {r["key"]: r for r in s["rows"]}
    assert set(rows) == {
        "dma_bandwidth",
        "host_speed",
        "host_costs",
        "soc_latency",
        "row_hit_rate",
        "mispredict_penalty",
        "fp_to_int_latency",
        "skip_one_trip_loops",
        "weights_stay_in_array",
    }
    for r in s["rows"]:
        assert r["kind"] and r["note"]
        for name, b in r["bases"].items():
            ref = s["bases"][name]["speedup"]
            assert b["min_speedup"] <= ref <= b["max_speedup"], (r["key"], name)
            assert b["min_speedup"] == min(p["speedup"] for p in [*b["points"], {"speedup": ref}])
    for key in ("soc_latency", "row_hit_rate", "mispredict_penalty", "fp_to_int_latency"):  # only in the prediction
        assert list(rows[key]["bases"]) == ["predicted"]
    for name in ("predicted", "calibrated"):
        dma = rows["dma_bandwidth"]["bases"][name]["points"]
        assert [p["value"] for p in dma] == [3.0, 16.0] and dma[0]["speedup"] < dma[1]["speedup"]
        speed = rows["host_speed"]["bases"][name]["points"]  # a slower host (costs x1.77) leaves more to gain
        assert speed[0]["value"] > 1 > speed[1]["value"] and speed[0]["speedup"] > speed[1]["speedup"]
        assert speed[0]["baseline_matmul_share"] < speed[1]["baseline_matmul_share"]
    # the presets with the calibrated host (and their own predicted DMA), simulated directly
    designs = []
    for h in (g["baseline"], g["target"]):
        hw = load_hardware(h)
        dma = s["bases"]["predicted"]["dma_bytes_per_cycle"]
        designs.append(
            dataclasses.replace(hw, host=load_hardware(f"{h}-calibrated").host).with_link("dram", "scratchpad", dma)
        )
    direct = (
        tstack.simulate(g["model"], designs[0], g["seq"]).latency_cycles
        / tstack.simulate(g["model"], designs[1], g["seq"]).latency_cycles
    )
    swapped = next(p for p in rows["host_costs"]["bases"]["predicted"]["points"] if p["value"] == "calibrated")
    assert swapped["speedup"] == pytest.approx(direct, rel=1e-9)
    html = (out / "report.html").read_text()
    assert "Sensitivity of the speedup" in html and 'id="fig-gemmini_sensitivity"' in html
    assert "host and DMA predicted" in html and "(not an input of this configuration)" in html


def test_host_speed_range_is_the_calibration_at_the_papers_two_matmul_shares() -> None:
    """The host-speed row scales the -calibrated presets' host by the factor that `calibrate_host` itself gives at the
    paper's 1.06% and 3.2% matmul shares (to the presets' rounding), and the baseline then spends about that share in
    matmuls."""
    import tstack
    from tstack.simulate.calibration import calibrate_host
    from tstack.spec.hardware import load_hardware
    from tstack.studies.sensitivity import PAPER_MATMUL_SHARES, host_scale_for, sensitivity

    hw = load_hardware("gemmini-baseline-calibrated")
    assert hw.host is not None
    workload = tstack.build_workload(tstack.load_model("bert-base"), 512)
    stored = dict(hw.host.cycles_per_element)
    for share in PAPER_MATMUL_SHARES:
        derived = calibrate_host(hw, workload, share)
        for op in ("softmax", "layernorm", "gelu", "add"):
            assert stored[op] * host_scale_for(share) == pytest.approx(derived[op], rel=2e-3), (share, op)
    s = sensitivity("bert-base", 512)
    points = next(r for r in s["rows"] if r["key"] == "host_speed")["bases"]["calibrated"]["points"]
    for p, share in zip(points, PAPER_MATMUL_SHARES, strict=True):
        assert p["baseline_matmul_share"] == pytest.approx(share, rel=0.02)
