#!/usr/bin/env bash
# The device check for a lent GPU machine, in one call (see bench/README.md): the GPU tests, then
# the GPU benchmarks. Writes its report to $OUT (or ./gpu_check) as text files.
#
# On a machine with a package registry it installs the project into a fresh venv. On one without
# (an image that already holds torch, timm and transformers), it uses that python with src/ on the
# path and installs only the missing pure dependencies from wheels carried in .whl/.
set -euo pipefail
out="${OUT:-gpu_check}"
mkdir -p "$out"
export HF_HUB_OFFLINE=1 DVC_NO_ANALYTICS=1 PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD/src:$PWD"
else
  python3 -m venv .venv && . .venv/bin/activate
  pip install -q -e '.[test]' 2>&1 | tail -2
fi
python3 -c 'import torch, timm, transformers; print("torch", torch.__version__, "timm", timm.__version__, "transformers", transformers.__version__)' | tee "$out/device.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$out/device.txt"
python3 -m pytest -p no:cacheprovider -m gpu -q $(grep -rl "mark.gpu" tests) 2>&1 | tail -15 | tee "$out/gpu_tests.txt"
python3 bench/gpu_train.py 2>&1 | tee "$out/gpu_train.txt"
python3 bench/gpu_train.py --batch-size 128 2>&1 | tail -9 | tee -a "$out/gpu_train.txt"
python3 bench/gpu_train.py --batch-size 128 --fused --compile --subsets grid+patch+region,grid 2>&1 | tee -a "$out/gpu_train.txt"
python3 bench/attention.py --device cuda --batch 64 --tokens 303 --width 768 --heads 12 --calls 20 2>&1 | tee "$out/attention.txt"
python3 bench/gpu_extract.py 2>&1 | tee "$out/gpu_extract.txt"
python3 bench/gpu_feed.py 2>&1 | tee "$out/gpu_feed.txt"
