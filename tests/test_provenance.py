"""Which code each job runs: import closures, the rules' code hashes and DVC's stage deps."""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from vecomp.cli import COMMANDS
from vecomp.provenance import closure, code_hash, command_code, dependency_paths

from .workflow_helpers import ROOT, tool_env

SOURCE = ROOT / "src" / "vecomp"


def write_package(root: Path, files: dict[str, str]) -> Path:
    """A throw-away ``vecomp`` package: {relative path: source}."""
    source = root / "src" / "vecomp"
    for name, text in files.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text)
    return source


def names(paths, source: Path) -> list[str]:
    return [p.relative_to(source).as_posix() for p in paths]


def test_the_closure_follows_every_form_of_import_and_runs_parent_packages(tmp_path):
    source = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "cmd/__init__.py": "",
            "cmd/main.py": "from .helper import x\nfrom ..shared import util\n"
            "def late():\n    import vecomp.lazy\n",
            "cmd/helper.py": "from . import sibling\nimport json\nx = 1\n",
            "cmd/sibling.py": "",
            "shared/__init__.py": "from .inner import y\n",
            "shared/inner.py": "",
            "shared/util.py": "",
            "lazy.py": "from vecomp.shared import inner\n",
            "unused.py": "",
        },
    )
    found = names(closure("vecomp.cmd.main", source), source)
    assert found == [
        "__init__.py",
        "cmd/__init__.py",
        "cmd/helper.py",
        "cmd/main.py",
        "cmd/sibling.py",
        "lazy.py",
        "shared/__init__.py",
        "shared/inner.py",
        "shared/util.py",
    ]


def test_the_hash_changes_with_the_bytes_of_an_imported_file_only(tmp_path, monkeypatch):
    source = write_package(
        tmp_path,
        {"__init__.py": "", "a.py": "from . import b\n", "b.py": "x = 1\n", "c.py": "y = 1\n"},
    )
    monkeypatch.setitem(COMMANDS, "run-a", ("vecomp.a", "a command"))
    hashes = {}
    for edit in (None, "b.py", "c.py"):
        if edit:
            (source / edit).write_text((source / edit).read_text() + "# an edit\n")
        hashes[edit] = code_hash("run-a", source)
    assert hashes[None] != hashes["b.py"] == hashes["c.py"]


def test_the_demo_stays_out_of_the_study_s_text_training_and_analysis_code():
    for command in ("encode-text", "train", "collect", "analyse", "figures", "prepare"):
        code = names(command_code(command), SOURCE)
        assert not [f for f in code if f.startswith("demo/")], (command, code)
    assert "demo/probe.py" not in names(command_code("pretrain"), SOURCE)  # only extraction
    assert "demo/probe.py" in names(command_code("extract-features"), SOURCE)


def test_the_analyses_do_not_run_the_fusion_model_s_code():
    code = names(command_code("figures"), SOURCE) + names(command_code("analyse"), SOURCE)
    assert not [f for f in code if f.startswith(("fusion/", "features/", "encoders/"))], code


def test_every_command_has_a_hash_and_an_unknown_one_is_named():
    assert len({code_hash(c) for c in COMMANDS}) > 1
    with pytest.raises(KeyError, match="no vecomp command 'trian'"):
        code_hash("trian")


# ------------------------------------------------------------------ the rules
def rule_blocks() -> dict[str, str]:
    """{rule name: its text} for every rule in workflow/rules/*.smk."""
    blocks = {}
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        parts = re.split(r"^\s*rule (\w+):\n", smk.read_text(), flags=re.M)
        blocks.update(zip(parts[1::2], parts[2::2], strict=True))
    return blocks


def rule_commands() -> dict[str, str]:
    """{rule: the vecomp command its shell runs}."""
    found = {}
    for rule, text in rule_blocks().items():
        match = re.search(r'"vecomp ([a-z-]+)', text)
        if match:
            found[rule] = match.group(1)
    return found


UNHASHED = {"download", "unpack"}  # pinned by checksums (see common.smk)


def test_each_rule_hashes_the_code_of_the_command_its_shell_runs():
    for rule, text in rule_blocks().items():
        hashed = re.findall(r'code=code_hash\("([a-z-]+)"\)', text)
        command = rule_commands().get(rule)
        if command is None or command in UNHASHED:
            assert not hashed, rule
        else:
            assert hashed == [command], f"rule {rule} runs vecomp {command} but hashes {hashed}"


# ------------------------------------------------------------------ DVC stages
def phase_rules(phase: str) -> set[str]:
    """The rules ``snakemake <phase>`` runs on a fresh checkout (its upstream phases' too)."""
    result = subprocess.run(
        ["snakemake", "--forceall", "-n", phase],
        cwd=ROOT,
        env=tool_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    table = result.stdout.split("Job stats:")[1].split("\n\n")[0].splitlines()[3:]
    return {line.split()[0] for line in table} - {"total", phase}


def upstream_stages(stages: dict) -> dict[str, set[str]]:
    """{stage: every stage whose outputs it reads, directly or through others}."""
    outs = {
        name: [next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])]
        for name, stage in stages.items()
    }

    def reads(name, other):
        return any(
            d == o or d.startswith(o + "/") for d in stages[name]["deps"] for o in outs[other]
        )

    direct = {n: {o for o in stages if o != n and reads(n, o)} for n in stages}
    found = {}
    for name in stages:
        todo, seen = list(direct[name]), set()
        while todo:
            other = todo.pop()
            if other not in seen:
                seen.add(other)
                todo.extend(direct[other])
        found[name] = seen
    return found


def stages_own_rules(stages: dict) -> dict[str, set[str]]:
    """{stage: the rules only its phase runs} (its phase's less its upstream stages')."""
    phases = [stage["cmd"].split()[-1] for stage in stages.values()]
    with ThreadPoolExecutor(max_workers=4) as pool:  # dry runs, each a separate process
        rules = dict(zip(stages, pool.map(phase_rules, phases), strict=True))
    upstream = upstream_stages(stages)
    return {n: rules[n] - set().union(*(rules[u] for u in upstream[n])) for n in stages}


@pytest.mark.slow  # eight dry runs (~40 s on two cores): kept out of the inner loop
def test_each_dvc_stage_depends_on_exactly_the_code_its_jobs_run():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    commands_of = rule_commands()
    wrong = []
    for name, rules in stages_own_rules(stages).items():
        commands = sorted({commands_of[r] for r in rules if r in commands_of})
        declared = sorted(d for d in stages[name]["deps"] if d.startswith("src/"))
        expected = dependency_paths(commands)
        if declared != expected:
            listing = "\n".join(f"      - {p}" for p in expected)
            wrong.append(f"stage {name} ({' '.join(commands)}) should list:\n{listing}")
    assert not wrong, "dvc.yaml deps differ from the commands' code:\n" + "\n".join(wrong)


def test_the_deps_printer_lists_a_stage_s_code_and_names_an_unknown_command(capsys):
    from vecomp.provenance import main

    assert main(["encode-text"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"- {p}" for p in dependency_paths(["encode-text"])
    ]
    with pytest.raises(SystemExit):
        main(["trian"])
    assert "invalid choice: 'trian'" in capsys.readouterr().err
