"""The device check for a lent GPU machine: the GPU tests and every GPU benchmark, in one call.

A session is lent a GPU rarely and for minutes, so one broken or slow step must not cost the
others their figures: each step runs in its own process group under its own time limit and
within an overall budget, writes its output to ``<out>/<step>.txt``, and the check goes on after
a failure or an overrun. ``<out>/summary.txt`` says how each step ended and how long it took;
the exit status is 1 when any step did not end well.

    bash bench/gpu_check.sh                 # on the lent machine: installs, then runs this
    python bench/gpu_check.py --smoke       # every step's small CPU version: proves the wiring

The steps run in the order of what issue 17's unmeasured targets need: extraction (targets 1, 2),
training fed from the stores (3), training with fused AdamW and ``torch.compile`` (4) and the
sweep's projection (5); then the eager baselines of the last GPU run and the attention timing.
``--smoke`` appends each step's small-size options (argparse keeps an option's last value), so
the suite runs the very commands a GPU session will (``tests/test_gpu_benchmarks.py``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
DEVICE_REPORT = (
    "import torch, timm, transformers; "
    "print('torch', torch.__version__, 'timm', timm.__version__, "
    "'transformers', transformers.__version__); "
    "cuda = torch.cuda.is_available(); "
    "print(torch.cuda.get_device_name() if cuda else 'no CUDA device', 'CUDA', torch.version.cuda, "
    "f'{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB' if cuda else '')"
)
PAPER_ATTENTION = ["--batch", "64", "--tokens", "303", "--width", "768", "--heads", "12"]
MIN_STEP_S = 5  # a step is not started with less of the budget left
TINY_TRAIN = ("--tiny", "--device", "cpu", "--steps", "1", "--batch-size", "4")


@dataclass(frozen=True)
class Step:
    name: str  # also its report's file name
    command: list[str]  # run from the repository root
    limit_s: int
    smoke: tuple[str, ...] = ()  # appended under --smoke


def gpu_test_files() -> list[str]:
    tests = sorted((ROOT / "tests").glob("test_*.py"))
    return [str(path.relative_to(ROOT)) for path in tests if "mark.gpu" in path.read_text()]


def bench(script: str, *args: str) -> list[str]:
    return [PYTHON, f"bench/{script}", *args]


def steps() -> list[Step]:
    pytest = [PYTHON, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=-ra", "-m", "gpu"]
    train = ["--batch-size", "128", "--fused"]
    return [
        Step("device", [PYTHON, "-c", DEVICE_REPORT], 30),
        Step("gpu_tests", [*pytest, "-q", *gpu_test_files()], 120),
        Step("gpu_extract", bench("gpu_extract.py"), 150, ("--tiny",)),
        Step(
            "gpu_feed", bench("gpu_feed.py"), 120, ("--tiny", "--device", "cpu", "--workers", "1")
        ),
        Step("gpu_train_fused", bench("gpu_train.py", *train), 90, TINY_TRAIN),
        Step(
            "gpu_train_compiled",
            bench("gpu_train.py", *train, "--compile", "--subsets", "grid+patch+region,grid"),
            180,
            (*TINY_TRAIN, "--subsets", "grid"),
        ),
        Step("gpu_train_eager", bench("gpu_train.py"), 60, TINY_TRAIN),
        Step(
            "attention",
            bench("attention.py", "--device", "cuda", *PAPER_ATTENTION, "--calls", "20"),
            30,
            ("--device", "cpu", "--batch", "4", "--tokens", "20", "--width", "32", "--heads", "4"),
        ),
    ]


def run_step(step: Step, out: Path, limit_s: float, smoke: bool) -> str:
    """Run one step with its output in ``out/<name>.txt``; how it ended, in words."""
    command = [*step.command, *(step.smoke if smoke else ())]
    with open(out / f"{step.name}.txt", "w") as report:
        report.write(f"$ {' '.join(command)}\n")
        report.flush()
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=report,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = process.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its DataLoader workers too
            process.wait()
            return f"timed out after {limit_s:.1f} s"
    return "ok" if code == 0 else f"failed (exit {code})"


def run_all(all_steps: list[Step], out: Path, budget_s: float, smoke: bool) -> bool:
    """Run the steps in order within the budget; True when all ended well. The summary is
    rewritten after every step, so a check stopped from outside still says how far it got."""
    out.mkdir(parents=True, exist_ok=True)
    started, lines, all_ok = time.monotonic(), [], True
    for step in all_steps:
        left = budget_s - (time.monotonic() - started)
        if left < MIN_STEP_S:
            lines.append(f"{step.name:<20} not run: the budget of {budget_s:g} s is spent")
            all_ok = False
        else:
            began = time.monotonic()
            outcome = run_step(step, out, min(step.limit_s, left), smoke)
            all_ok &= outcome == "ok"
            lines.append(f"{step.name:<20} {outcome:<28} {time.monotonic() - began:6.1f} s")
            print(lines[-1], tail(out / f"{step.name}.txt"), sep="\n", flush=True)
        (out / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(["", "summary:", *lines]))
    return all_ok


def tail(report: Path, lines: int = 14) -> str:
    return "\n".join("    " + line for line in report.read_text().splitlines()[-lines:])


def child_environment() -> dict[str, str]:
    paths = [str(ROOT / "src"), str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")]
    return {
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "HF_HUB_OFFLINE": "1",
        "DVC_NO_ANALYTICS": "1",
        "PYTHONUNBUFFERED": "1",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu_check")))
    parser.add_argument("--budget", type=float, default=450, help="seconds for all steps")
    parser.add_argument("--smoke", action="store_true", help="small CPU versions of every step")
    args = parser.parse_args()
    if args.budget <= 0:
        parser.error(f"--budget must be a positive number of seconds, not {args.budget}")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file: give a folder for the reports (or set OUT)")
    os.environ.update(child_environment())
    sys.exit(0 if run_all(steps(), args.out, args.budget, args.smoke) else 1)


if __name__ == "__main__":
    main()
