"""Measure the dynamic RISC-V instruction counts of the Gemmini baseline's host kernels (kernels.c) under qemu-user.

Regenerates ``src/tstack/presets/host/rocket-kernels.json``, the data `tstack.simulate.host_model` prices:

    .venv/bin/python benchmarks/host_kernels/measure.py            # print the table
    .venv/bin/python benchmarks/host_kernels/measure.py --write    # and rewrite the JSON

Needs Debian's cross compiler and user-mode emulator (``apt-get install gcc-riscv64-linux-gnu qemu-user``); without
them it says so and exits 0 (the measured counts are in the JSON already).

Two counting methods, one per qemu mode, must agree instruction for instruction:

* ``singlestep``: ``qemu-riscv64 -singlestep -d in_asm,exec,nochain`` translates one instruction per block and logs
  every execution, so the log is the dynamic instruction trace (the `exec` lines give the PCs, the `in_asm` lines the
  disassembly of each PC). Counts by class, dependence distances and branch outcomes come from this trace.
* ``blocks``: ``qemu-riscv64 -d in_asm,exec,nochain`` with ordinary translation blocks: every block execution is
  logged, and each block's length is its instruction count in the `in_asm` listing; the region's total is the sum of
  the lengths of the blocks executed between the two markers.

The kernel under test is bracketed by calls to ``region_begin`` / ``region_end`` (kernels.c); only instructions
executed between them count, including those inside libm (expf, erff, ...), attributed to that function by symbol.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATA = REPO / "src" / "tstack" / "presets" / "host" / "rocket-kernels.json"
CC = "riscv64-linux-gnu-gcc"
QEMU = "qemu-riscv64"
NM = "riscv64-linux-gnu-nm"
# the flags of gemmini-rocc-tests' Makefile (transformers/Makefile: -O2, -march=rv64gc), linked statically
CFLAGS = ["-O2", "-march=rv64gc", "-mabi=lp64d", "-static"]

# kernel -> (rows, row length) measured; BERT-Base at l = 512: softmax rows are 512 long, hidden rows 768 long.
SIZES: dict[str, tuple[int, int]] = {
    "softmax": (4, 512),
    "layernorm": (4, 768),
    "gelu": (4, 768),
    "gelu_tanh": (4, 768),
    "resadd": (4, 768),
    "dequantize": (4, 768),
    "requantize": (4, 768),
}
MAX_DISTANCE = 64  # dependence distances recorded up to here (longer ones never stall an in-order core here)

_REG = re.compile(
    r"^(zero|ra|sp|gp|tp|t[0-6]|s[0-9]|s1[01]|a[0-7]|ft[0-9]|ft1[01]|fs[0-9]|fs1[01]|fa[0-7]|x[0-9]+|f[0-9]+)$"
)
_ROUNDING = {"dyn", "rne", "rtz", "rdn", "rup", "rmm"}
_MEM = re.compile(r"^-?\d*\((\w+)\)$")
_BRANCHES = {
    "beq",
    "bne",
    "blt",
    "bge",
    "bltu",
    "bgeu",
    "beqz",
    "bnez",
    "blez",
    "bgez",
    "bltz",
    "bgtz",
    "bgt",
    "ble",
    "bgtu",
    "bleu",
}
_JUMPS = {"j", "jal", "jalr", "ret", "jr", "call", "tail"}
_INT_LOADS = {"lb", "lh", "lw", "ld", "lbu", "lhu", "lwu"}
_INT_MUL = {"mul", "mulh", "mulhu", "mulhsu", "mulw"}
_INT_DIV = {"div", "divu", "rem", "remu", "divw", "divuw", "remw", "remuw"}
# Rocket's iterative (unpipelined) units: the FPU's divide/square-root unit, the integer multiply/divide unit
_UNITS = {"fp_divsqrt_s": "fdiv", "fp_divsqrt_d": "fdiv", "int_mul": "muldiv", "int_div": "muldiv"}
_FMA = {"fadd", "fsub", "fmul", "fmadd", "fmsub", "fnmadd", "fnmsub"}


def classify(mnemonic: str) -> str:
    """The timing class of one RISC-V mnemonic (qemu's disassembly spelling)."""
    m = mnemonic.removeprefix("c.")
    base, _, suffix = m.partition(".")
    if m in _BRANCHES:
        return "branch"
    if m in _JUMPS:
        return "jump"
    if m in _INT_LOADS:
        return "load_byte" if m in ("lb", "lbu", "lh", "lhu") else "load"
    if m in ("flw", "fld"):
        return "fp_load"
    if m in ("sb", "sh", "sw", "sd", "fsw", "fsd"):
        return "store"
    if m in _INT_MUL:
        return "int_mul"
    if m in _INT_DIV:
        return "int_div"
    if base in _FMA:
        return "fp_fma_d" if suffix.startswith("d") else "fp_fma_s"
    if base in ("fdiv", "fsqrt"):
        return "fp_divsqrt_d" if suffix.startswith("d") else "fp_divsqrt_s"
    if base in ("feq", "flt", "fle", "fclass") or m.startswith(("fmv.x.", "fcvt.w.", "fcvt.l.", "fcvt.wu.")):
        return "fp_to_int"
    if m.startswith(("fcvt.lu.",)):
        return "fp_to_int"
    if m.startswith(("fmv.w.x", "fmv.d.x")) or re.match(r"fcvt\.[sd]\.(w|wu|l|lu)$", m):
        return "int_to_fp"
    if base.startswith("f") and base not in ("fence",):
        return "fp_misc"  # sign injection, moves, min/max, single<->double conversion (Rocket's FPToFP unit)
    if base in ("fence", "ecall", "ebreak", "csrr", "csrw", "csrrw", "csrrs", "csrrc", "frflags", "fsflags"):
        return "other"
    return "int_alu"


def registers(mnemonic: str, operands: str) -> tuple[str | None, tuple[str, ...]]:
    """(destination register, source registers) of one instruction from its disassembled operands."""
    m = mnemonic.removeprefix("c.")
    regs: list[str] = []
    for tok in (t.strip() for t in operands.split("#")[0].split(",")):
        if tok in _ROUNDING:
            continue  # qemu prints an FP op's rounding mode first ("fadd.s dyn,fa5,fa5,fa4")
        mem = _MEM.match(tok)
        if mem:
            regs.append("@" + mem.group(1))  # base register of an address: a source
        elif _REG.match(tok):
            regs.append(tok)
        else:
            regs.append("")
    kind = classify(m)
    if kind in ("store", "branch") or m in ("j", "jr", "ret", "tail"):
        dst = None
        srcs = regs
    elif m in ("jal", "jalr", "call"):
        dst, srcs = "ra" if len(regs) <= 1 else regs[0], regs[1:]
    else:
        dst, srcs = (regs[0] if regs else None), regs[1:]
    if m == "ret":
        srcs = ["ra"]
    clean = tuple(sorted({s.lstrip("@") for s in srcs if s and s.lstrip("@") not in ("zero", "x0")}))
    if dst in ("zero", "x0", ""):
        dst = None
    return dst, clean


def _symbols(binary: Path) -> list[tuple[int, str]]:
    out = subprocess.run([NM, "-n", str(binary)], capture_output=True, text=True, check=True).stdout
    names: dict[int, list[str]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TtWw":
            names.setdefault(int(parts[0], 16), []).append(parts[2])
    # one name per address: the plain C name (expf, not __expf or expf32)
    return [
        (a, min(ns, key=lambda s: (s.startswith("_"), any(c.isdigit() for c in s), len(s))))
        for a, ns in sorted(names.items())
    ]


def _function_of(pc: int, syms: list[tuple[int, str]]) -> str:
    lo, hi = 0, len(syms) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if syms[mid][0] <= pc:
            lo = mid
        else:
            hi = mid - 1
    return syms[lo][1]


_IN = re.compile(r"^0x([0-9a-f]+):\s+([0-9a-f]+)\s+(\S+)\s*(.*)$")
_EXEC = re.compile(r"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/")


def _run_log(binary: Path, args: list[str], single: bool, log: Path) -> str:
    cmd = [QEMU, *(["-singlestep"] if single else []), "-d", "in_asm,exec,nochain", "-D", str(log), str(binary)]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, check=True).stdout.strip()


def _parse(log: Path) -> tuple[dict[int, tuple[str, str, int]], dict[int, int], list[int]]:
    """(pc -> (mnemonic, operands, bytes), block start pc -> instruction count, executed block start PCs in order)."""
    insns: dict[int, tuple[str, str, int]] = {}
    blocks: dict[int, int] = {}
    executed: list[int] = []
    current: int | None = None
    with log.open() as fh:
        for line in fh:
            if line.startswith("IN:"):
                current = None
                continue
            m = _IN.match(line)
            if m:
                pc = int(m.group(1), 16)
                insns[pc] = (m.group(3), m.group(4).strip(), len(m.group(2)) // 2)
                if current is None:
                    current = pc
                    blocks[pc] = 0
                blocks[current] += 1
                continue
            e = _EXEC.match(line)
            if e:
                current = None
                executed.append(int(e.group(1), 16))
    return insns, blocks, executed


def _region(executed: list[int], begin: int, end: int) -> list[int]:
    start = executed.index(begin)
    stop = executed.index(end, start)
    return executed[start + 1 : stop]


def measure_kernel(binary: Path, kernel: str, rows: int, n: int, workdir: Path) -> dict[str, object]:
    """Counts of one kernel run: by class, by libm function, dependence pairs, branch transitions, both methods."""
    syms = _symbols(binary)
    addr = {name: a for a, name in syms}
    begin, end = addr["region_begin"], addr["region_end"]
    # method 1: one instruction per translation block -> the dynamic trace
    log1 = workdir / f"{kernel}.single.log"
    checksum = _run_log(binary, [kernel, str(rows), str(n)], True, log1)
    insns, _, executed = _parse(log1)
    trace = _region(executed, begin, end)
    log1.unlink()
    # method 2: ordinary translation blocks, counted by block length
    log2 = workdir / f"{kernel}.blocks.log"
    _run_log(binary, [kernel, str(rows), str(n)], False, log2)
    _, blocks, executed_blocks = _parse(log2)
    region_blocks = _region(executed_blocks, begin, end)
    log2.unlink()
    block_total = sum(blocks[pc] for pc in region_blocks)

    classes: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    last_writer: dict[str, tuple[int, str]] = {}
    last_outcome: dict[int, bool] = {}
    last_unit_use: dict[str, tuple[int, str]] = {}
    transitions = 0
    for i, pc in enumerate(trace):
        mnemonic, operands, size = insns[pc]
        kind = classify(mnemonic)
        classes[kind] += 1
        by_function[_function_of(pc, syms)] += 1
        if mnemonic.removeprefix("c.") in ("jal", "call") and i + 1 < len(trace):
            callee = _function_of(trace[i + 1], syms)
            calls[callee] += 1
        dst, srcs = registers(mnemonic, operands)
        deps = []
        for s in srcs:
            if s in last_writer:
                j, producer = last_writer[s]
                if i - j <= MAX_DISTANCE:
                    deps.append(f"{producer}:{i - j}")
        unit = _UNITS.get(kind)
        if unit is not None:
            if unit in last_unit_use and i - last_unit_use[unit][0] <= MAX_DISTANCE:
                j, previous = last_unit_use[unit]
                deps.append(f"busy-{previous}:{i - j}")  # an iterative unit still busy with an earlier operation
            last_unit_use[unit] = (i, kind)
        if deps:
            pairs["|".join(sorted(set(deps)))] += 1
        if dst is not None:
            last_writer[dst] = (i, kind)
        if kind == "branch" and i + 1 < len(trace):
            taken = trace[i + 1] != pc + size
            if pc in last_outcome and last_outcome[pc] != taken:
                transitions += 1
            last_outcome[pc] = taken
    elements = rows * n
    return {
        "rows": rows,
        "row_length": n,
        "elements": elements,
        "checksum": checksum,
        "instructions": len(trace),
        "instructions_blocks_method": block_total,
        "by_class": dict(sorted(classes.items())),
        "by_function": dict(sorted(by_function.items())),
        "calls": dict(sorted(calls.items())),
        "branch_transitions": transitions,
        "dependences": dict(sorted(pairs.items())),
    }


def tools_missing() -> list[str]:
    return [t for t in (CC, QEMU, NM) if shutil.which(t) is None]


def build(workdir: Path) -> Path:
    binary = workdir / "host_kernels"
    subprocess.run([CC, *CFLAGS, "-o", str(binary), str(HERE / "kernels.c"), "-lm"], check=True)
    return binary


def tool_versions() -> dict[str, str]:
    out = {}
    for tool in (CC, QEMU):
        first = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout.splitlines()
        out[tool] = first[0] if first else "?"
    libc = subprocess.run(["dpkg-query", "-W", "libc6-dev-riscv64-cross"], capture_output=True, text=True)
    out["libc6-dev-riscv64-cross"] = libc.stdout.strip() or "?"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite {DATA.relative_to(REPO)}")
    parser.add_argument("--kernel", action="append", help="measure only this kernel (repeatable)")
    args = parser.parse_args(argv)
    missing = tools_missing()
    if missing:
        print(
            f"skipped: {', '.join(missing)} not found; apt-get install gcc-riscv64-linux-gnu qemu-user "
            f"(the measured counts stay in {DATA.relative_to(REPO)})"
        )
        return 0
    kernels = args.kernel or list(SIZES)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        binary = build(workdir)
        results = {}
        for k in kernels:
            rows, n = SIZES[k]
            r = measure_kernel(binary, k, rows, n, workdir)
            results[k] = r
            per = r["instructions"] / r["elements"]  # type: ignore[operator]
            agree = "agree" if r["instructions"] == r["instructions_blocks_method"] else "DISAGREE"
            print(
                f"{k:11s} {rows}x{n}: {r['instructions']:>8} instructions ({per:6.2f}/element), "
                f"block method {agree}; calls {r['calls']}"
            )
    if args.write:
        data = json.loads(DATA.read_text()) if DATA.exists() else {}
        data.setdefault("kernels", {}).update(results)
        data["provenance"] = {
            "command": "python benchmarks/host_kernels/measure.py --write",
            "source": "benchmarks/host_kernels/kernels.c",
            "compile": " ".join([CC, *CFLAGS, "kernels.c", "-lm"]),
            "tools": tool_versions(),
            "methods": "instructions: qemu -singlestep -d in_asm,exec,nochain trace between region_begin and "
            "region_end; instructions_blocks_method: the same region counted by translation-block lengths",
        }
        DATA.parent.mkdir(parents=True, exist_ok=True)
        DATA.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"wrote {DATA.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
