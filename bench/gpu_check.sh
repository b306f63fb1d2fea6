#!/usr/bin/env bash
# The device check for a lent GPU machine, in one call (see bench/README.md): installs what the
# machine lacks, then bench/gpu_check.py runs the GPU tests and benchmarks, each under a time
# limit, and writes their reports to $OUT (or ./gpu_check).
#
# On a machine with a package registry it installs the project into a fresh venv. On one without
# (an image that already holds torch, timm and transformers), it uses that python with src/ on the
# path and installs only the missing pure dependencies from wheels carried in .whl/. With --smoke
# it installs nothing and runs every step's small CPU version with the python on PATH.
set -euo pipefail
export HF_HUB_OFFLINE=1 DVC_NO_ANALYTICS=1 PYTHONUNBUFFERED=1
if [ "${1:-}" != "--smoke" ]; then
  if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
  else
    python3 -m venv .venv && . .venv/bin/activate
    pip install -q -e '.[test]' 2>&1 | tail -2
  fi
fi
exec python3 bench/gpu_check.py "$@"
