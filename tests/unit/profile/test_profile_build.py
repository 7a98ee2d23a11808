"""The PyTorch builder: the real model has the spec's parameters, and unsupported specs fail with one clear line."""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("torch", reason="profiling needs the torch extra")
pytest.importorskip("transformers", reason="profiling needs the transformers extra")
import torch

from tests.unit.workload.test_profile_models import tiny_bert, tiny_gpt2, tiny_llama
from tstack import load_model
from tstack.errors import SpecError, UnsupportedModelError
from tstack.profile import Arch, Scope, build_torch_model, pick_arch
from tstack.profile.build import check_positions
from tstack.workload import ModelSpec, count_params


@pytest.mark.parametrize(
    ("spec", "arch"),
    [(tiny_bert(), Arch.BERT), (tiny_gpt2(), Arch.GPT2), (tiny_llama(), Arch.LLAMA)],
    ids=["bert", "gpt2", "llama"],
)
def test_built_model_has_the_counted_parameters(spec: ModelSpec, arch: Arch) -> None:
    built = build_torch_model(spec)
    assert built.arch is arch
    # the workload layer counts parameters from the spec; the real model is an independent count
    assert sum(p.numel() for p in built.module.parameters()) == count_params(spec)
    assert built.module.config._attn_implementation == "eager"
    assert not built.module.training


def test_every_scope_label_names_a_real_module_and_all_scopes_occur() -> None:
    built = build_torch_model(tiny_llama())
    names = {n for n, _ in built.module.named_modules()}
    assert all(n in names for n, _ in built.scopes)
    used = {s for _, s in built.scopes}
    assert {Scope.MHA_PROJ, Scope.FFN_PROJ, Scope.ATTN, Scope.NORM, Scope.ACTIVATION, Scope.BLOCK} <= used
    n_proj = sum(1 for _, s in built.scopes if s is Scope.MHA_PROJ)
    assert n_proj == 4 * 2  # q, k, v, o in each of 2 layers


def test_presets_of_record_are_buildable() -> None:
    assert pick_arch(load_model("bert-base")) is Arch.BERT
    assert pick_arch(load_model("gpt2")) is Arch.GPT2
    assert pick_arch(load_model("llama-2-7b")) is Arch.LLAMA


@pytest.mark.parametrize("preset", ["vit-base", "pythia-160m"])
def test_family_without_builder_is_one_clear_error(preset: str) -> None:
    with pytest.raises(UnsupportedModelError, match="no PyTorch builder") as info:
        pick_arch(load_model(preset))
    assert "\n" not in str(info.value)
    assert "Llama-style" in str(info.value)


def test_heterogeneous_layers_have_no_builder() -> None:
    spec = dataclasses.replace(tiny_bert(), heads=(4, 2), kv_heads=(4, 2))
    with pytest.raises(UnsupportedModelError, match="layers differ"):
        pick_arch(spec)


def test_same_seed_same_weights_and_global_rng_untouched() -> None:
    state = torch.random.get_rng_state()
    a = build_torch_model(tiny_gpt2(), seed=3).module
    b = build_torch_model(tiny_gpt2(), seed=3).module
    c = build_torch_model(tiny_gpt2(), seed=4).module
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.h[0].mlp.c_fc.weight, b.h[0].mlp.c_fc.weight)
    assert not torch.equal(a.h[0].mlp.c_fc.weight, c.h[0].mlp.c_fc.weight)


def test_sequence_longer_than_positions_offers_to_extend() -> None:
    spec = tiny_bert(positions=64)
    assert check_positions(spec, 64, extend_positions=False) == 64
    with pytest.raises(SpecError, match="--extend-positions") as info:
        check_positions(spec, 65, extend_positions=False)
    assert "\n" not in str(info.value)
    assert check_positions(spec, 100, extend_positions=True) == 100
    built = build_torch_model(spec, positions=100)
    assert built.module.embeddings.position_embeddings.weight.shape[0] == 100
