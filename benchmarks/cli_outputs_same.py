"""Behaviour unchanged: the same `tstack` command lines under two source trees give the same stdout, stderr, exit code
and files (issue 17's check for moving commands and renderers).

The baseline tree is a git revision (extracted with `git archive` into a temporary folder, the repository is not
touched) or a folder holding a `tstack` package; the other is this working tree's `src/`. Each command runs in a fresh
empty folder with `COLUMNS=200`; the files it leaves are compared by name and content.

    .venv/bin/python benchmarks/cli_outputs_same.py --base HEAD
    .venv/bin/python benchmarks/cli_outputs_same.py --base /tmp/old/src --only mapspace
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The README tour's commands and their JSON documents, plus the refusals whose wording must not drift.
COMMANDS: list[str] = [
    "analyze --json",
    "analyze bert-base gpt2 --seq 128,512",
    "analyze llama-2-7b --seq 128 --json --ops",
    "models --json",
    "models",
    "devices --json",
    "hardware --json",
    "hardware",
    "simulate bert-base --hw gemmini-baseline --seq 512 --json --ops",
    "simulate bert-base --hw gemmini-ibert --seq 512 --ops",
    "simulate resnet50 --hw gemmini-baseline --mapper exhaustive --json",
    "compare bert-base --hw gemmini-baseline,gemmini-ibert --json",
    "compare bert-base --hw gemmini-baseline,gemmini-ibert",
    "sweep bert-base --hw gemmini-baseline --set accumulator=64K,128K --set scratchpad=128K,256K --json",
    "sweep bert-base --hw gemmini-baseline --set accumulator=64K,128K",
    "map bert-base --hw gemmini-baseline --json",
    "map bert-base --hw gemmini-baseline",
    "map resnet50 --hw gemmini-baseline --json",
    "mapspace --samples 500 --json",
    "mapspace --samples 500",
    "mapspace --samples 300 --semantics nest --json",
    "mapspace --samples 300 --semantics timeloop --sampler timeloop-ids --json",
    "mapspace --samples 300 --constraints gemmini --json",
    "mapspace --samples 300 --semantics nest-free --ops bert-base-ffn --json",
    "fusion --json",
    "fusion",
    "map bert-base --hw gemmini-baseline --op layer0.ffn.up --export best.yaml",
    "mapspace --samples 100 --semantics nest --ops bert-base-ffn --export nests --json",
    "simulate bert-base --hw gemmini-baseline --plot plots --json",
    "analyze bert-base --seq 128,512 --plot plots",
    "mapspace --samples 0",
    "simulate nope --hw gemmini-baseline",
    "map bert-base --hw gemmini-baseline --export x.yaml",
    "mapspace --semantics bogus",
    "nas report --storage nope.journal",
]


def run(src: Path, command: str) -> tuple[int, str, str, dict[str, bytes]]:
    """Exit code, stdout, stderr and the files left behind of `tstack COMMAND` with `src` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(src), "COLUMNS": "200"}
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run(
            [sys.executable, "-m", "tstack.cli", *command.split()], cwd=cwd, env=env, capture_output=True, text=True
        )
        files = {str(p.relative_to(cwd)): p.read_bytes() for p in Path(cwd).rglob("*") if p.is_file()}
    return proc.returncode, proc.stdout, proc.stderr, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="a git revision, or a folder holding the tstack package")
    parser.add_argument("--only", default=None, help="run the commands that contain this text")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.base)
        if not (base / "tstack").is_dir():
            archive = subprocess.run(["git", "archive", args.base, "src"], cwd=ROOT, capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
            base = Path(tmp) / "src"
        differ = 0
        for command in COMMANDS:
            if args.only and args.only not in command:
                continue
            same = run(base, command) == run(ROOT / "src", command)
            differ += not same
            print(f"{'same' if same else 'DIFFERENT':<9} tstack {command}")
    print(f"{differ} of the commands differ")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
