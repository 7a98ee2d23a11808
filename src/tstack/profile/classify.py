"""Attribution of profiled op self time to tstack's op classes, from the model structure and each op's shapes.

While profiling, every labelled module (see `build.Scope`) runs inside a `record_function` range named
``tstack::<scope>``. Each aten op is attributed to the innermost such range around it, and a rule per scope says
which ops belong there: inside a projection only matmuls and the bias add; inside the attention core batched
(3-D or 4-D) matmuls are the act-to-act matmuls, softmax is softmax and elementwise arithmetic (score scaling,
mask add, rotary embedding) is elementwise; everything inside a norm or activation module is that class; a
residual add is an add in a block outside its children. Tensor plumbing called by the model code (views, copies,
concatenation into the KV cache) is `data_movement` wherever it runs; an op inside another aten op counts to the
class of the op the model code called. An op that no rule accepts is `unclassified` and reported by name,
scope and shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tstack.profile.build import Scope, TorchModel

LABEL_PREFIX = "tstack::"

# Measured classes: tstack's op classes of a Transformer, plus tensor plumbing and what no rule accepts.
# "residual" holds every elementwise add/mul that is not part of a norm or activation (residual adds, score
# scaling, mask add, rotary embedding), as the "residual/elementwise" class.
MEASURED_CLASSES = (
    "mha_proj",
    "mha_act",
    "ffn_proj",
    "softmax",
    "norm",
    "activation",
    "residual",
    "data_movement",
    "other",
    "unclassified",
)
MATMUL_CLASSES = ("mha_proj", "mha_act", "ffn_proj")

_MATMUL = frozenset(
    {"addmm", "mm", "bmm", "baddbmm", "matmul", "linear", "_addmm_activation", "einsum", "mv", "dot", "addmv"}
)
_SOFTMAX = frozenset({"softmax", "_softmax", "_safe_softmax", "log_softmax", "_log_softmax"})
_FUSED_ATTENTION = frozenset(
    {
        "scaled_dot_product_attention",
        "_scaled_dot_product_flash_attention_for_cpu",
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
    }
)
_ELEMENTWISE = frozenset(
    {
        "add",
        "add_",
        "sub",
        "sub_",
        "rsub",
        "mul",
        "mul_",
        "div",
        "div_",
        "neg",
        "where",
        "masked_fill",
        "masked_fill_",
        "pow",
        "sqrt",
        "rsqrt",
        "exp",
        "tanh",
        "sin",
        "cos",
    }
)
_DATA_MOVEMENT = frozenset(
    {
        "view",
        "reshape",
        "_reshape_alias",
        "_unsafe_view",
        "transpose",
        "permute",
        "t",
        "expand",
        "expand_as",
        "contiguous",
        "clone",
        "copy_",
        "to",
        "_to_copy",
        "empty",
        "empty_like",
        "empty_strided",
        "new_empty",
        "new_empty_strided",
        "as_strided",
        "slice",
        "select",
        "unsqueeze",
        "squeeze",
        "split",
        "split_with_sizes",
        "chunk",
        "unbind",
        "narrow",
        "cat",
        "stack",
        "detach",
        "detach_",
        "alias",
        "unflatten",
        "flatten",
        "lift_fresh",
        "resolve_conj",
        "resolve_neg",
        "dropout",
        "feature_dropout",
        "zeros",
        "zero_",
        "fill_",
        "repeat_interleave",
        "index_copy_",
        "_local_scalar_dense",
        "item",
    }
)


def _short(name: str) -> str:
    return name.removeprefix("aten::").removesuffix(".default")


def classify_op(name: str, scope: str | None, shapes: Sequence[Sequence[int]]) -> str:
    """The measured class of one aten op `name` run in `scope` with input `shapes` (see the module docstring)."""
    op = _short(name)
    if op in _DATA_MOVEMENT:
        return "data_movement"
    if scope is None:
        return "unclassified"
    if scope in (Scope.NORM, Scope.ACTIVATION):
        return str(scope)
    if scope in (Scope.EMBED, Scope.HEAD, Scope.ROPE, Scope.MODEL):
        return "other"
    if scope in (Scope.MHA_PROJ, Scope.FFN_PROJ):
        return str(scope) if op in _MATMUL or op in _ELEMENTWISE else "unclassified"
    if scope == Scope.ATTN:
        if op in _FUSED_ATTENTION:
            return "mha_act"
        if op in _MATMUL:
            # act-to-act matmuls are batched over heads; a 2-D matmul here would be a projection we did not label
            batched = [s for s in shapes if len(s) >= 3]
            return "mha_act" if batched else "unclassified"
        if op in _SOFTMAX:
            return "softmax"
        return "residual" if op in _ELEMENTWISE else "unclassified"
    if scope == Scope.MLP:
        return "activation" if op in _ELEMENTWISE else "unclassified"  # SwiGLU's silu(gate) * up
    if scope == Scope.BLOCK:
        return "residual" if op in ("add", "add_") else "unclassified"
    return "unclassified"


@dataclass(frozen=True, slots=True)
class OpTiming:
    """One aten op (by name, scope and input shapes), its measured class and its self time per run."""

    name: str
    scope: str
    shapes: str
    op_class: str
    time_s: float
    calls: int


@contextmanager
def scoped(model: TorchModel) -> Iterator[None]:
    """Run the model's labelled modules inside ``tstack::<scope>`` profiler ranges (hooks removed on exit)."""
    import torch

    modules = dict(model.module.named_modules())
    handles: list[Any] = []
    stack: list[Any] = []

    def pre(label: str) -> Callable[..., None]:
        def hook(_m: Any, _args: Any) -> None:
            rf: Any = torch.profiler.record_function(label)
            rf.__enter__()
            stack.append(rf)

        return hook

    def post(_m: Any, _args: Any, _out: Any) -> None:
        if stack:
            stack.pop().__exit__(None, None, None)

    try:
        for name, scope in model.scopes:
            mod = modules[name]
            handles.append(mod.register_forward_pre_hook(pre(LABEL_PREFIX + str(scope))))
            handles.append(mod.register_forward_hook(post))
        yield
    finally:
        for h in handles:
            h.remove()
        while stack:
            stack.pop().__exit__(None, None, None)


def _caller_and_scope(event: Any) -> tuple[Any, str | None]:
    """The outermost aten op around `event` inside its innermost tstack range (the op the model code called,
    e.g. aten::linear around addmm and the copy_ that seeds it with the bias), and that range's scope."""
    caller = event
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith(LABEL_PREFIX):
            return caller, str(parent.name[len(LABEL_PREFIX) :])
        if parent.name.startswith("aten::"):
            caller = parent
        parent = parent.cpu_parent
    return caller, None


def _shapes(event: Any) -> list[list[int]]:
    return [list(s) for s in (event.input_shapes or []) if isinstance(s, (list, tuple))]


class _Event:
    """A profiler event with just what `attribute` reads (the subset of torch's FunctionEvent it uses)."""

    __slots__ = ("cpu_parent", "end_ns", "input_shapes", "name", "self_cpu_time_total", "self_device_time_total")

    def __init__(self, name: str, shapes: Any, duration_ns: int, end_ns: int, parent: _Event | None) -> None:
        self.name = name
        self.input_shapes = shapes
        self.self_cpu_time_total = duration_ns / 1e3  # microseconds, as FunctionEvent
        self.self_device_time_total = 0.0
        self.end_ns = end_ns
        self.cpu_parent = parent


def cpu_events(prof: Any) -> list[_Event]:
    """CPU events of a finished `torch.profiler.profile`, nested by time per thread, with self times.

    Equivalent to `prof.events()` for CPU-only traces, which builds full FunctionEvents and takes minutes for the
    few hundred thousand ops of a generation; this is one sort and one stack sweep.
    """
    import torch

    raw = [e for e in prof.profiler.kineto_results.events() if e.device_type() == torch._C._autograd.DeviceType.CPU]
    raw.sort(key=lambda e: (e.start_thread_id(), e.start_ns(), -e.duration_ns()))
    out: list[_Event] = []
    stack: list[_Event] = []
    thread = None
    for e in raw:
        if e.start_thread_id() != thread:
            thread, stack = e.start_thread_id(), []
        start, dur = e.start_ns(), e.duration_ns()
        while stack and stack[-1].end_ns <= start:
            stack.pop()
        parent = stack[-1] if stack else None
        ev = _Event(e.name(), e.shapes(), dur, start + dur, parent)
        if parent is not None:
            parent.self_cpu_time_total -= dur / 1e3
        stack.append(ev)
        out.append(ev)
    return out


def attribute(events: Iterable[Any], *, device_time: bool, runs: int) -> list[OpTiming]:
    """Self time per run of every aten op in profiler `events`, grouped by (name, scope, shapes), classified.

    An op is classified by the op the model code called around it (its outermost aten ancestor within the
    scope), so the self time of addmm's bias copy_ counts to the projection, not to data movement.

    `device_time` takes each op's self device (GPU kernel) time instead of its self CPU time.
    """
    groups: dict[tuple[str, str, str], list[float]] = {}
    classes: dict[tuple[str, str, str], str] = {}
    for ev in events:
        name = ev.name
        if not name.startswith("aten::"):
            continue  # our ranges, profiler bookkeeping; their self time is Python, not op work
        us = ev.self_device_time_total if device_time else ev.self_cpu_time_total
        caller, scope = _caller_and_scope(ev)
        key = (name, scope or "-", str(_shapes(ev)))
        acc = groups.setdefault(key, [0.0, 0.0])
        acc[0] += float(us)
        acc[1] += 1
        if key not in classes:
            classes[key] = classify_op(caller.name, scope, _shapes(caller))
    out = [
        OpTiming(name, scope, shapes, classes[(name, scope, shapes)], t_us * 1e-6 / runs, int(n) // runs)
        for (name, scope, shapes), (t_us, n) in groups.items()
    ]
    out.sort(key=lambda o: -o.time_s)
    return out
