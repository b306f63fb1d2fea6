"""How long an encoder whose hub weights are not there takes to fail, offline.

With ``HF_HUB_OFFLINE=1`` and an empty cache, building a hub encoder must fail at once with an
error naming the checkpoint (``vecomp.weights.from_hub``), not after network timeouts. Each
case runs in a fresh subprocess (imports included, as a job would pay them); the baseline,
measured in the same run, is a local checkpoint path that does not exist, which fails before
any library looks for weights. The ratio says what the hub lookup adds.

    python bench/missing_weights.py [--repeats 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CASES = {
    "local path (baseline)": {"type": "timm_grid", "model": "resnet10t", "weights": "/nonexistent"},
    "timm hub": {"type": "timm_grid", "model": "resnet10t", "weights": "hub"},
    "transformers hub": {"type": "hf_patch", "model": "openai/clip-vit-base-patch16"},
    "torchvision hub": {"type": "torchvision_frcnn", "weights": "hub"},
}
SCRIPT = """
import json, sys
from vecomp.encoders.factory import create_encoder
from vecomp.weights import MissingWeightsError
try:
    create_encoder(json.loads(sys.argv[1]))
except MissingWeightsError:
    sys.exit(0)
sys.exit("built an encoder whose weights should be missing")
"""


def time_case(spec: dict, cache: str) -> float:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TORCH_HOME=cache, HF_HOME=cache)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(spec)], env=env, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        seconds = {
            name: statistics.median(time_case(spec, cache) for _ in range(args.repeats))
            for name, spec in CASES.items()
        }
    baseline = seconds["local path (baseline)"]
    print(f"{'case':<24} {'seconds':>8} {'x baseline':>11}")
    for name, value in seconds.items():
        print(f"{name:<24} {value:8.2f} {value / baseline:11.2f}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"seconds": seconds, "baseline": "local path (baseline)"}, out, indent=2)


if __name__ == "__main__":
    main()
