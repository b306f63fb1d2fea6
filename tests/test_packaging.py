"""Packaging facts users rely on: the CLI, the conda env, the README's two commands."""

from __future__ import annotations

import re
import tomllib

import yaml

from vecomp import cli

from .workflow_helpers import ROOT


def test_cli_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in cli.COMMANDS)


def test_cli_unknown_command_fails_with_the_list(capsys):
    assert cli.main(["nope"]) == 2
    assert "unknown command 'nope'" in capsys.readouterr().err


def test_every_command_module_has_a_main():
    import importlib

    for target, _ in cli.COMMANDS.values():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function or "main")), target


def test_conda_env_has_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "envs" / "vecomp.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {d for d in pip if not d.startswith("-")} == set(project["dependencies"])


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in first_block.splitlines() if line and not line.startswith("#")]


def test_readme_starts_with_exactly_two_commands_and_ci_runs_the_second():
    run_command, test_command = _readme_commands()
    assert "snakemake --cores 2" in run_command
    assert "pytest" in test_command
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci.splitlines()


def test_cli_prints_user_errors_without_a_traceback(tmp_path, capsys):
    status = cli.main(["download", "--file", "gqa/nope.zip", "--out", str(tmp_path / "x")])
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith("vecomp download: error: unknown file 'gqa/nope.zip'")
    assert "Traceback" not in err
