#!/usr/bin/env bash
# The device check for a lent GPU machine, in one call (see bench/README.md): install, run the
# GPU tests, then the GPU benchmarks. Writes its report to $OUT (or ./gpu_check) as text files.
set -euo pipefail
out="${OUT:-gpu_check}"
mkdir -p "$out"
export HF_HUB_OFFLINE=1 DVC_NO_ANALYTICS=1
python3 -m venv .venv && . .venv/bin/activate
pip install -q -e '.[test]' 2>&1 | tail -2
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$out/device.txt"
pytest -m gpu -q 2>&1 | tail -15 | tee "$out/gpu_tests.txt"
python bench/gpu_train.py 2>&1 | tee "$out/gpu_train.txt"
python bench/gpu_extract.py 2>&1 | tee "$out/gpu_extract.txt"
