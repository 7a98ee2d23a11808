"""Timeloop-style mapping YAML and Gemmini tile triples, in and out, with the errors bad files get."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import tstack
from tstack.api import check_capacity, evaluate_mapping_file
from tstack.errors import InfeasibleError, SpecError
from tstack.mapping.matmul.gemmini_tiler import GemminiMemory, tiled_matmul_auto
from tstack.mapping.matmul.loopnest import ORDERS, Mapping, MatmulShape
from tstack.mapping.timeloop.mapping_io import from_timeloop, to_gemmini_triple, to_timeloop

SHAPE = MatmulShape(512, 3072, 768)


@pytest.mark.parametrize("order", ORDERS)
def test_roundtrip(order: tuple[str, ...]) -> None:
    mapping = Mapping(128, 96, 256, order)
    doc = to_timeloop(mapping, SHAPE, 16, 16)
    assert from_timeloop(yaml.safe_load(yaml.safe_dump(doc)), SHAPE) == mapping
    factors = {lv["type"] + lv["target"]: lv["factors"] for lv in doc["mapping"]}
    assert factors["temporalDRAM"] == "M=4 N=32 K=3" and factors["spatialBuffer"] == "M=1 N=16 K=16"


def test_gemmini_triple_roundtrip() -> None:
    tiling = tiled_matmul_auto(512, 3072, 768, GemminiMemory.from_capacities(16, 256 * 1024, 64 * 1024))
    mapping = Mapping.from_gemmini(tiling, 16)
    assert to_gemmini_triple(mapping, 16) == tiling
    with pytest.raises(SpecError, match="loops i, j, k"):
        to_gemmini_triple(Mapping(80, 80, 768, ("n", "m", "k")), 16)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {
                "mapping": [
                    {"target": "DRAM", "type": "temporal", "factors": "M=3 N=96 K=1", "permutation": "NKM"},
                    {"target": "Buffer", "type": "temporal", "factors": "M=128 N=32 K=768"},
                ]
            },
            "the factors of M multiply to 384, but M = 512",
        ),
        ({"mapping": [{"target": "DRAM", "factors": "M=4 X=2"}]}, "bad factor 'X=2'"),
        (
            {
                "mapping": [
                    {"target": "DRAM", "factors": "M=4 N=96 K=1", "permutation": "NKQ"},
                    {"target": "Buffer", "factors": "M=128 N=32 K=768"},
                ]
            },
            "permutation must order M, N and K",
        ),
        ({"mapping": [{"target": "Buffer", "factors": "M=512 N=3072 K=768"}]}, "no DRAM level"),
        ({"levels": []}, "expected a top-level 'mapping:' list"),
    ],
)
def test_bad_mapping_files(doc: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        from_timeloop(doc, SHAPE)


def test_mapping_that_breaks_a_capacity(tmp_path: Path) -> None:
    hw = tstack.load_hardware("gemmini-baseline")
    with pytest.raises(InfeasibleError, match=r"need .* B of 'scratchpad', which offers 131,072 B \(double-buffered"):
        check_capacity(Mapping(512, 3072, 768), SHAPE, hw)
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(to_timeloop(Mapping(128, 256, 16), SHAPE, 16, 16)))  # 128 KiB of partial sums
    with pytest.raises(InfeasibleError, match="'accumulator', which offers 32,768 B"):
        evaluate_mapping_file("bert-base", hw, "layer0.ffn.up", path, 512)
