#!/usr/bin/env bash
# The GPU checks of `tstack profile` (issue 6) in one run, for a machine with an NVIDIA GPU whose python3 already has
# torch and transformers: the profile tests (their CUDA cases run there), the CLI on CUDA, and the full-size
# benchmark (BERT-Base 128/256/512, GPT-2 and a Llama-style decoder generating 128 tokens, prediction vs measurement).
# Packages that python3 lacks can be carried as wheels in .whl/ (installed to /tmp/site, no network).
# Usage: OUT=results-folder bash benchmarks/cuda_profile.sh
set -uo pipefail
OUT=${OUT:-out/cuda}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
status=0
{
    nvidia-smi -L
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, torch.cuda.get_device_name())"
} 2>&1 | tee "$OUT/env.txt"
python3 -m pytest -q -p no:cacheprovider tests/unit/test_profile_classify.py tests/unit/test_profile_build.py \
    tests/unit/test_profile_compare.py tests/integration/test_cli_profile.py 2>&1 | tee "$OUT/pytest.txt" || status=1
python3 -m tstack profile bert-base --seq 128,512 --device cuda --compare --plot "$OUT/plots" 2>&1 | tee "$OUT/cli.txt" \
    || status=1
python3 benchmarks/bench_profile.py --device cuda --rounds 2 --json "$OUT/bench-profile-cuda.json" 2>&1 \
    | tee "$OUT/bench.txt" || status=1
tar czf "$OUT/plots.tgz" -C "$OUT" plots 2>/dev/null && rm -rf "$OUT/plots"
exit $status
