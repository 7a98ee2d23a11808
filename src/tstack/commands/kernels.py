"""`tstack kernels` (integer-kernel error vs. input precision, op counts) and `tstack quantize MODEL_PATH --calib FILE`
(integer-only forward of a real model vs. its float forward). Registered on the main app by `register`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tstack.commands.common import emit_json, json_option, parse_names, path_option
from tstack.errors import TstackError
from tstack.fileio import output_dir

_out = Console()
_err = Console(stderr=True)


_parse_list = parse_names


def _parse_bits(text: str | None) -> tuple[int, ...]:
    from tstack.kernels.accuracy import DEFAULT_BITS

    out = []
    for part in _parse_list(text, "bits", tuple(str(b) for b in DEFAULT_BITS)):
        try:
            out.append(int(part))
        except ValueError:
            raise TstackError(f"--bits expects integers such as 8,16,32; got {part!r}") from None
    return tuple(out)


def _kernels_document(
    kernels: tuple[str, ...], variants: tuple[str, ...], bits: tuple[int, ...], row_length: int
) -> dict[str, Any]:
    """Measure the error rows, count the operations per row, and build the `tstack.kernels/1` document."""
    from tstack.kernels.accuracy import error_table
    from tstack.kernels.opcount import op_counts
    from tstack.report.kernels_doc import kernels_document

    errors = error_table(kernels, bits, variants)
    counted = [k for k in kernels if k != "exp"] + (["exp"] if "exp" in kernels else [])
    counts = [op_counts(kernel, row_length, variant) for kernel in counted for variant in variants]
    return kernels_document(errors, counts, bits, variants, row_length)


def kernels(
    kernel: Annotated[
        str | None, typer.Option("--kernel", help="Kernels, comma-separated: gelu,exp,softmax,layernorm [all].")
    ] = None,
    variant: Annotated[str | None, typer.Option(help="Variants, comma-separated: ibert,gemmini [both].")] = None,
    bits: Annotated[str | None, typer.Option(help="Input bit widths, comma-separated [8,12,16,20,24,32].")] = None,
    row: Annotated[int, typer.Option(help="Row length for the operation counts (d_model or seq_len).")] = 768,
    as_json: Annotated[bool, json_option("tstack.kernels/1")] = False,
    plot: Annotated[Path | None, path_option("--plot", "Write kernel-errors.png (error vs. input bits) here.")] = None,
) -> None:
    """Integer-only kernels (I-BERT i-GELU, i-exp, i-Softmax, i-LayerNorm): error vs. input precision, op counts."""
    ks = _parse_list(kernel, "kernel", ("gelu", "exp", "softmax", "layernorm"))
    vs = _parse_list(variant, "variant", ("ibert", "gemmini"))
    for v in vs:
        if v not in {"ibert", "gemmini"}:
            raise TstackError(f"unknown --variant {v!r}; choose ibert or gemmini")
    if row < 1:
        raise TstackError(f"--row must be ≥ 1; got {row}")
    if row > 2**20:
        raise TstackError(f"--row must be at most 2^20 (1,048,576); got {row}")
    if plot is not None:
        output_dir(plot, "--plot")
    doc = _kernels_document(ks, vs, _parse_bits(bits), row)
    if plot is not None:
        from tstack.report.kernels_plots import kernel_errors_plot

        written = kernel_errors_plot(doc, plot)
        _err.print(f"wrote {written}")
    if as_json:
        emit_json(doc)
        return
    table = Table(title="integer kernel error vs. input precision", title_justify="left")
    for col in ("kernel", "variant", "bits", "max |err|", "mean |err|", "inputs"):
        table.add_column(col, justify="right" if col in {"bits", "max |err|", "mean |err|"} else "left")
    for e in doc["errors"]:
        table.add_row(
            e["kernel"],
            e["variant"],
            str(e["bits"]),
            f"{e['max_abs_error']:.4g}",
            f"{e['mean_abs_error']:.3g}",
            e["inputs"],
        )
    _out.print(table)
    ops = Table(title=f"integer operations per row of {row}", title_justify="left")
    for col in ("kernel", "variant", "add", "mul", "shift", "cmp", "div", "fp mul", "passes", "per elem"):
        ops.add_column(col, justify="left" if col in {"kernel", "variant"} else "right")
    for c in doc["op_counts"]:
        ops.add_row(
            c["kernel"],
            c["variant"],
            *(
                str(c[k])
                for k in ("adds", "multiplies", "shifts", "comparisons", "divisions", "float_multiplies", "passes")
            ),
            f"{c['per_element']:.1f}",
        )
    _out.print(ops)


def quantize(
    model_path: Annotated[Path, typer.Argument(help="A Hugging Face BertModel folder (config.json, safetensors).")],
    calib: Annotated[Path, typer.Option("--calib", help="Plain-text file: calibration (and evaluation) sentences.")],
    eval_file: Annotated[
        Path | None, typer.Option("--eval", help="Evaluation text [the --calib file after the calibration sentences].")
    ] = None,
    n_calib: Annotated[int, typer.Option("--n-calib", help="Calibration sentences.")] = 64,
    n_eval: Annotated[int, typer.Option("--n-eval", help="Evaluation sentences.")] = 192,
    batch: Annotated[int, typer.Option(help="Sentences per batch.")] = 32,
    max_tokens: Annotated[int, typer.Option(help="Truncate sentences to this many tokens.")] = 64,
    as_json: Annotated[bool, json_option("tstack.quantize/1")] = False,
) -> None:
    """Integer-only forward of a real BERT-family model vs. its float forward (cosine of sentence embeddings)."""
    from tstack.kernels.corpus import load_sentences
    from tstack.kernels.encoder_weights import BitWidths
    from tstack.kernels.evaluate import evaluate_integer_model
    from tstack.report.kernels_doc import quantize_document
    from tstack.spec import load_model
    from tstack.workload.model import ModelSpec

    if n_calib < 1 or n_eval < 2 or batch < 1 or max_tokens < 2:
        raise TstackError("--n-calib ≥ 1, --n-eval ≥ 2, --batch ≥ 1 and --max-tokens ≥ 2 are required")
    if not model_path.is_dir():
        raise TstackError(f"{model_path} is not a folder; give a Hugging Face BertModel folder (config.json, weights)")
    sentences = load_sentences(calib)
    calib_s = sentences[:n_calib]
    if eval_file is None:
        eval_s = sentences[n_calib : n_calib + n_eval]
        if len(eval_s) < 2:
            raise TstackError(
                f"{calib} has {len(sentences)} sentences: too few to evaluate after {n_calib} calibration "
                "sentences; pass --eval FILE or lower --n-calib"
            )
    else:
        eval_s = load_sentences(eval_file)[:n_eval]
    model = load_model(model_path)  # the one Hugging Face config parser
    if not isinstance(model, ModelSpec):
        raise TstackError(f"{model_path} does not hold a Transformer config.json; give a BertModel folder")
    status = _err.status("calibrating, then comparing integer-only and float forwards", spinner="dots")
    with contextlib.nullcontext() if as_json else status:
        report = evaluate_integer_model(
            model_path, model, calib_s, eval_s, batch_size=batch, max_tokens=max_tokens
        ).report
    doc = quantize_document(report, BitWidths())
    if as_json:
        emit_json(doc)
        return
    table = Table(title=f"integer-only vs. float forward: {model_path.name}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("calibration / evaluation sentences", f"{report.n_calib} / {report.n_eval}")
    table.add_row("cosine of sentence embeddings, mean", f"{report.cosine_mean:.4f}")
    table.add_row("cosine, min", f"{report.cosine_min:.4f}")
    table.add_row("Spearman of pairwise similarities", f"{report.spearman_pairwise:.4f}")
    table.add_row("nearest-neighbour top-1 agreement", f"{report.nn_top1_agreement:.3f}")
    table.add_row("time float / integer (s)", f"{report.float_seconds:.2f} / {report.int_seconds:.2f}")
    _out.print(table)


def register(app: typer.Typer) -> None:
    """Add `kernels` and `quantize` to the tstack app."""
    app.command("kernels")(kernels)
    app.command("quantize")(quantize)
