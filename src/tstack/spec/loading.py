"""Where model and device descriptions come from: a preset name, a YAML file, or a Hugging Face config."""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from tstack.errors import SpecError
from tstack.fileio import check_name_length, parse_json, parse_yaml, read_text, read_yaml
from tstack.spec.hf import model_from_hf_config, model_from_hf_dict
from tstack.spec.model_file import model_from_mapping
from tstack.workload.model import AnyModelSpec

_PRESETS = resources.files("tstack.presets")


def _preset_dir(kind: str) -> dict[str, Any]:
    return {
        entry.name.rsplit(".", 1)[0]: entry
        for entry in (_PRESETS / kind).iterdir()
        if entry.name.endswith((".yaml", ".yml"))
    }


def preset_names(kind: str = "models") -> list[str]:
    return sorted(_preset_dir(kind))


def read_preset(kind: str, name: str) -> dict[str, Any]:
    presets = _preset_dir(kind)
    if name not in presets:
        near = difflib.get_close_matches(name, presets, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(near)}?" if near else f"known: {', '.join(sorted(presets))}"
        singular = kind.rstrip("s")
        raise SpecError(f"unknown {singular} preset {name!r}; {hint} (`tstack {kind}` lists them)")
    data = yaml.safe_load(presets[name].read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise SpecError(f"preset {kind}/{name} is not a mapping")
    return data


def read_yaml_file(path: Path, what: str) -> Any:
    """A YAML file's content, or one line saying the file is missing, unreadable, not UTF-8 or not YAML."""
    return read_yaml(path, what)


def yaml_preset_or_file(source: str | Path, presets: Path, what: str) -> tuple[Any, Path]:
    """The YAML of `source`, a .yaml/.yml path or the name of a preset in the folder `presets`, and its path."""
    path = Path(source)
    if path.suffix not in (".yaml", ".yml"):
        names = sorted(p.stem for p in presets.glob("*.yaml"))
        if str(source) not in names:
            raise SpecError(f"unknown {what} {str(source)!r}: give a .yaml file or one of {', '.join(names)}")
        path = presets / f"{source}.yaml"
    return read_yaml_file(path, what), path


def _read_structured(path: Path) -> Any:
    text = read_text(path, "model")
    if path.suffix == ".json":
        return parse_json(text, str(path))
    return parse_yaml(text, str(path))


def load_model(source: Any) -> AnyModelSpec:
    """A model from a preset name, a YAML file, a HF `config.json` (or its folder), or a transformers config."""
    if hasattr(source, "to_dict") and hasattr(source, "model_type"):
        return model_from_hf_config(source)
    if not isinstance(source, (str, Path)):
        raise SpecError(f"cannot load a model from a {type(source).__name__}; pass a preset name or a file path")
    path = check_name_length(Path(source), "model")
    if path.is_dir():
        path = path / "config.json"
        if not path.is_file():
            raise SpecError(f"{source} is a folder without a config.json; point at a Hugging Face model folder")
    looks_like_file = path.suffix in (".json", ".yaml", ".yml") or path.is_file()
    if not looks_like_file:
        return model_from_mapping(read_preset("models", str(source)), f"preset {source}")
    if not path.is_file():
        raise SpecError(f"model file {path} does not exist")
    data = _read_structured(path)
    if path.suffix == ".json":
        return model_from_hf_dict(data, str(path))
    return model_from_mapping(data, str(path))
