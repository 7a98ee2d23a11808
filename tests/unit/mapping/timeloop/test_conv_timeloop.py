"""7-loop conv mappings as Timeloop mappings for Gemmini's Timeloop description (`tstack map` on
convolutions: tests/integration/test_cli_mapping.py)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from tstack.errors import SpecError
from tstack.mapping.conv.cost import evaluate_conv
from tstack.mapping.conv.loopnest import ConvMapping, ConvShape
from tstack.mapping.conv.mappers import conv_mapspace
from tstack.mapping.timeloop.mapping_io import conv_from_timeloop, conv_to_timeloop, names_conv_dims
from tstack.spec.hardware import load_hardware

CONV3 = ConvShape(1, 64, 64, 14, 14, 3, 3)  # a 3x3 conv, ResNet-like, small enough to enumerate


@pytest.fixture(scope="module")
def hw():
    return load_hardware("gemmini-baseline")


def test_round_trip_keeps_the_mapping_and_its_cost(hw) -> None:
    """Every sampled valid mapping reads back with the same tiles and order; where the C and K tiles are multiples
    of the array side, the explicit unrolling read back is the whole array, so the cost is identical."""
    space = conv_mapspace(CONV3, hw)
    pick = np.random.default_rng(0).integers(0, len(space), 300)
    same_cost = 0
    for i in pick:
        mapping = space.mapping(int(i))
        doc = yaml.safe_load(yaml.safe_dump(conv_to_timeloop(mapping, CONV3, hw), sort_keys=False))
        assert names_conv_dims(doc)
        back = conv_from_timeloop(doc, CONV3, hw)
        assert back.tiles == mapping.tiles and back.order == mapping.order
        if mapping.tile("C") % hw.pe.rows == 0 and mapping.tile("K") % hw.pe.cols == 0:
            assert evaluate_conv(CONV3, back, hw) == evaluate_conv(CONV3, mapping, hw)
            same_cost += 1
    assert same_cost > 20


def test_conv_mapping_errors_name_the_problem(hw) -> None:
    best = ConvMapping.of(("N", "K", "C", "R", "S", "P", "Q"), N=1, K=64, C=64, P=7, Q=14, R=3, S=3)
    good = conv_to_timeloop(best, CONV3, hw)

    def with_dram(factors: str) -> dict:
        doc = {"mapping": [dict(d) for d in good["mapping"]]}
        next(d for d in doc["mapping"] if d["target"] == "DRAM" and d["type"] == "temporal")["factors"] = factors
        return doc

    with pytest.raises(SpecError, match="the factors of P multiply to 28, but P = 14"):
        conv_from_timeloop(with_dram("R=1 S=1 P=4 Q=1 C=1 K=1 N=1"), CONV3, hw)
    big = ConvShape(1, 512, 512, 14, 14, 3, 3)
    huge = ConvMapping.of(("N", "K", "C", "R", "S", "P", "Q"), N=1, K=512, C=512, P=14, Q=14, R=3, S=3)
    with pytest.raises(SpecError, match="capacity exceeded"):
        conv_from_timeloop(conv_to_timeloop(huge, big, hw), big, hw)
    with pytest.raises(SpecError, match="does not divide"):
        conv_to_timeloop(ConvMapping.of(N=1, K=64, C=64, P=5, Q=14, R=3, S=3), CONV3, hw)
    wrong = {"mapping": [{"target": "Scratchpad", "type": "spatial", "factors": "C=16"}]}
    with pytest.raises(SpecError, match="unrolls only K"):
        conv_from_timeloop(wrong, CONV3, hw)
