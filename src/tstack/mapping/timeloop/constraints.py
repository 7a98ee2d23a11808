"""Timeloop mapspace constraints for Gemmini's hierarchy, read into `tstack.mapping.nest.matmul.NestConstraints`, so the
nest sampler (`tstack mapspace --constraints`) draws from the mapspace a Timeloop constraints file describes.

The file is what Timeloop's mapper reads beside the architecture: v0.3's top-level `mapspace_constraints:` list (the
form of Gemmini's `modeling/timeloop/mapspace/mapspace.yaml` and of DOSA's Gemmini mapspaces), v0.4's
`constraints: {targets: [...]}`, or a bare list of directives. Each directive has a `target` (DRAM, Scratchpad,
Accumulator, Registers), a `type` and:
* temporal: `factors` ("C=1 K<=16 ...", a string or a list: `=` fixes a factor, `<=` caps it, a dim not named is
  free) and `permutation` (inner to outer and possibly partial: the named dims innermost in that order, the others
  outside them in any order, Timeloop's "user prefix");
* spatial: Gemmini's array unrolls K (output columns) over the PE columns at the Scratchpad and C (the reduction) over
  the rows at the Accumulator, nothing else, so those are the only factors there that may exceed 1 (free up to the
  array side when not named); the spatial `permutation` only sets Timeloop's X/Y split and is read past;
* bypass: must keep what Gemmini keeps (Registers: Weights; Accumulator: Outputs; Scratchpad: Inputs and Weights;
  DRAM: all), as the nest model is that hierarchy.
A matmul runs as Gemmini's conv-layer problem (P = M, C = K, K = N); R, S, Q and N have bound 1, so a factor on them
other than 1 is an error and their place in a permutation does not matter. Other top-level keys (a `mapper:`
section, as DOSA's files carry) are ignored. Anything else wrong is one line naming the directive. Presets and files are
read at the boundary (`tstack.spec.timeloop.load_nest_constraints`); this module reads the parsed document.
"""

from __future__ import annotations

from typing import Any

from tstack.errors import SpecError
from tstack.mapping.matmul.loopnest import DIMS, ORDERS
from tstack.mapping.nest.matmul import LEVELS, SLOTS, SPATIAL_SLOT, NestConstraints
from tstack.mapping.timeloop.mapping_io import (
    GEMMINI_KEEPS,
    GEMMINI_PROBLEM_DIMS,
    GEMMINI_SPATIAL,
    GEMMINI_TARGETS,
    NEST_TO_GEMMINI,
)

_MATMUL = {g: DIMS.index(d) for d, g in NEST_TO_GEMMINI.items()}  # Gemmini dim name -> nest dim index


def _directives(data: Any, origin: str) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        if isinstance(data.get("mapspace_constraints"), list):
            return list(data["mapspace_constraints"])
        mapspace = data.get("mapspace")
        if isinstance(mapspace, dict) and isinstance(mapspace.get("constraints"), list):
            return list(mapspace["constraints"])
        constraints = data.get("constraints")
        if isinstance(constraints, dict) and isinstance(constraints.get("targets"), list):
            return list(constraints["targets"])
    raise SpecError(
        f"{origin}: expected Timeloop mapspace constraints: a 'mapspace_constraints:' list, 'constraints: targets:' "
        "or a list of directives"
    )


def _parse_factors(text: Any, where: str) -> dict[str, tuple[str, int]]:
    """{dim: ('=' | '<=', value)} from "C=1 K<=16" (or a list of such terms)."""
    terms = text.split() if isinstance(text, str) else text if isinstance(text, list) else None
    if terms is None:
        raise SpecError(f"{where}: factors must be a string like 'C=1 K<=16' or a list of such terms")
    out: dict[str, tuple[str, int]] = {}
    for term in map(str, terms):
        op = "<=" if "<=" in term else "=" if "=" in term else ""
        name, _, value = term.partition(op) if op else (term, "", "")
        if name not in GEMMINI_PROBLEM_DIMS or not value.isdigit() or int(value) <= 0:
            raise SpecError(
                f"{where}: bad factor {term!r}; write DIM=N or DIM<=N with DIM one of "
                f"{', '.join(GEMMINI_PROBLEM_DIMS)} and N a positive integer"
            )
        out[name] = (op, int(value))
    return out


def _allowed_orders(permutation: Any, where: str) -> tuple[int, ...]:
    letters = list(permutation) if isinstance(permutation, list) else list(str(permutation).replace(" ", ""))
    unknown = [c for c in letters if c not in GEMMINI_PROBLEM_DIMS]
    if unknown or len(set(letters)) != len(letters):
        raise SpecError(
            f"{where}: a permutation lists each of {', '.join(GEMMINI_PROBLEM_DIMS)} at most once, inner to outer; "
            f"got {permutation!r}"
        )
    innermost = tuple(DIMS[_MATMUL[c]] for c in letters if c in _MATMUL)
    return tuple(i for i, order in enumerate(ORDERS) if tuple(reversed(order))[: len(innermost)] == innermost)


def _check_keeps(directive: dict[str, Any], target: str, where: str) -> None:
    keep = directive.get("keep")
    bypass = directive.get("bypass") or []
    for field, value in (("keep", keep), ("bypass", bypass)):
        if value is not None and not isinstance(value, list):
            raise SpecError(f"{where}: {field} must be a list of dataspaces (Inputs, Weights, Outputs), got {value!r}")
    wanted = set(GEMMINI_KEEPS[target])
    kept = set(map(str, keep)) if isinstance(keep, list) else wanted
    if kept != wanted or wanted & set(map(str, bypass)):
        raise SpecError(
            f"{where}: the nest model is Gemmini's hierarchy, where the {target} keeps {', '.join(sorted(wanted))}; "
            f"this directive keeps {', '.join(sorted(kept - set(map(str, bypass)))) or 'nothing'}"
        )


def read_nest_constraints(data: Any, name: str = "constraints", origin: str = "constraints") -> NestConstraints:
    """The nest mapspace a Timeloop constraints document describes (module docstring)."""
    fixed = [[0, 0, 0] for _ in range(SLOTS)]
    maximum = [[0, 0, 0] for _ in range(SLOTS)]
    fixed[SPATIAL_SLOT][DIMS.index("m")] = 1
    orders: list[tuple[int, ...]] = [tuple(range(len(ORDERS)))] * len(LEVELS)
    targets = {t.lower(): lv for lv, t in enumerate(GEMMINI_TARGETS)}
    for i, d in enumerate(_directives(data, origin)):
        where = f"{origin}: directive {i + 1}"
        if not isinstance(d, dict):
            raise SpecError(f"{where}: each directive needs a target and a type")
        target, kind = str(d.get("target", "")), str(d.get("type", ""))
        if target.lower() not in targets:
            raise SpecError(f"{where}: unknown target {target!r}; Gemmini's levels are {', '.join(GEMMINI_TARGETS)}")
        lv = targets[target.lower()]
        target = GEMMINI_TARGETS[lv]
        if kind == "bypass":
            _check_keeps(d, target, where)
            continue
        if kind not in ("temporal", "spatial"):
            raise SpecError(f"{where}: type must be temporal, spatial or bypass, got {kind!r}")
        factors = _parse_factors(d.get("factors", ""), where)
        if kind == "temporal":
            slot, unrollable = lv, set(_MATMUL)
            if "permutation" in d:
                orders[lv] = _allowed_orders(d["permutation"], where)
        else:
            slot = SPATIAL_SLOT
            dim = GEMMINI_SPATIAL.get(target)
            unrollable = {NEST_TO_GEMMINI[dim]} if dim else set()
        for g, (op, value) in factors.items():
            if g not in unrollable:
                if value != 1 and (g in _MATMUL or op == "="):
                    raise SpecError(f"{where}: {_why_not(g, target)}; set {g}=1")
                continue
            j = _MATMUL[g]
            if op == "=":
                fixed[slot][j] = value
            else:
                maximum[slot][j] = value
    return NestConstraints(
        tuple((a, b, c) for a, b, c in fixed),
        tuple((a, b, c) for a, b, c in maximum),
        tuple(orders),
        name=name,
    )


def _why_not(dim: str, target: str) -> str:
    if dim not in _MATMUL:
        return f"a matmul has no {dim} loop (P = M, C = K, K = N)"
    return (
        f"Gemmini unrolls only K (output columns) at the Scratchpad and C (the reduction) at the Accumulator, not "
        f"{dim} at the {target}"
    )
