"""``vecomp <command>``: one entry point for every pipeline step.

Each command is a module with ``main(argv) -> int`` (or ``module:function``); Snakemake rules,
DVC stages and tests call the same commands. Modules load only when their command runs, so
``vecomp --help`` is instant; before one loads, the CPU kernels are pinned (``cpu_kernels.py``),
so that its bytes do not depend on the machine's CPU.
"""

from __future__ import annotations

import importlib
import sys

from .cpu_kernels import pin_cpu_kernels
from .errors import VecompError

COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("vecomp.demo.synthetic.generate", "generate the synthetic scene suite (a mirror)"),
    "download": ("vecomp.data.download", "fetch one registry file, verified"),
    "unpack": ("vecomp.data.unpack", "unpack a downloaded archive safely"),
    "index-pool": ("vecomp.data.index_pool", "index and check the images of an image pool"),
    "prepare": ("vecomp.data.prepare", "parse a task's official files into tables"),
    "baselines": ("vecomp.data.baselines", "chance, majority and text-only baselines"),
    "pretrain": ("vecomp.demo.pretrain", "pretrain a mini encoder on synthetic scenes"),
    "extract-features": ("vecomp.features.extract", "encode an image pool into a feature store"),
    "encode-text": ("vecomp.fusion.text", "cache a task's texts through the language encoder"),
    "tokenize-text": ("vecomp.fusion.text:tokenize_main", "cache a task's texts as token ids"),
    "train": ("vecomp.fusion.train", "train and evaluate one fusion run of the sweep"),
    "collect": ("vecomp.analysis.collect", "gather the sweep's runs into tables"),
    "analyse-task": ("vecomp.analysis.analyse_task", "attention mass and ensembles of one task"),
    "analyse": ("vecomp.analysis.analyse", "every analysis table, the results table, metrics"),
    "figures": ("vecomp.analysis.figures", "draw the study's figures (PNG and PDF)"),
    "settle-times": ("vecomp.settle_times", "mark artifacts restored by DVC as up to date"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "usage: vecomp <command> [options]\n\ncommands:\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"vecomp: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, _, function = COMMANDS[name][0].partition(":")
    try:
        pin_cpu_kernels()  # before the command loads torch
        command = getattr(importlib.import_module(module_name), function or "main")
        return command(rest)
    except VecompError as err:
        print(f"vecomp {name}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
