"""The workflow itself: lint, config validation, DVC coverage, and tiny end-to-end runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from vecomp.data.registry import POOLS, TASKS

from .test_provenance import UNHASHED
from .workflow_helpers import ROOT, TINY, copy_project, run, tree_digest


def dvc_outputs(dvc_yaml: Path) -> list[str]:
    """Every path a DVC stage declares as an output (outs, metrics, plots)."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    paths = []
    for stage in stages.values():
        for section in ("outs", "metrics", "plots"):
            for entry in stage.get(section, []):
                paths.append(next(iter(entry)) if isinstance(entry, dict) else entry)
    return paths


def snakemake_outputs(configfile: Path | None = None) -> list[str]:
    args = ["snakemake", "--summary", "--forceall"]
    if configfile:
        args += ["--configfile", str(configfile)]
    lines = run(args, ROOT).stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("output_file"))
    return [line.split("\t")[0] for line in lines[start + 1 :] if line.strip()]


def planned_jobs(dry_run_output: str) -> set[tuple[str, str]]:
    """(rule, wildcards) of every job a `snakemake -n` plans."""
    jobs, rule, wildcards = set(), None, ""
    for line in dry_run_output.splitlines() + ["rule end:"]:
        if line.startswith(("rule ", "localrule ")):
            if rule:
                jobs.add((rule, wildcards))
            rule, wildcards = line.split()[1].rstrip(":"), ""
        elif line.strip().startswith("wildcards:"):
            wildcards = line.split(":", 1)[1].strip()
    return jobs


def test_snakemake_lint_is_clean():
    result = run(["snakemake", "--lint"], ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


@pytest.mark.parametrize("configfile", [None, ROOT / "config" / "paper.yaml"])
def test_every_snakemake_output_lies_under_a_dvc_output(configfile):
    tracked = dvc_outputs(ROOT / "dvc.yaml")
    outputs = snakemake_outputs(configfile)
    assert len(outputs) > 20
    unversioned = [
        o for o in outputs if not any(o == t or o.startswith(t.rstrip("/") + "/") for t in tracked)
    ]
    assert not unversioned, f"outputs no DVC stage versions: {unversioned[:10]}"


SHIPPED_CONFIGS = [*sorted((ROOT / "config").glob("*.yaml")), TINY]


def test_dvc_yaml_paths_name_no_encoder_or_task_of_any_config():
    """A profile that renames encoders or tasks needs no edit of dvc.yaml."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    deps = [d for stage in stages.values() for d in stage["deps"]]
    parts = {part for path in dvc_outputs(ROOT / "dvc.yaml") + deps for part in Path(path).parts}
    for configfile in SHIPPED_CONFIGS:
        config = yaml.safe_load(configfile.read_text())
        if "encoders" not in config:
            continue  # the checksum lock
        named = {Path(p).stem for p in parts} & (set(config["encoders"]) | set(config["tasks"]))
        assert not named, f"dvc.yaml names {named} of {configfile.name}"


def test_the_encoders_stage_leaves_dvc_its_folders_without_pretraining(tmp_path):
    """The paper profile pretrains nothing; DVC still finds the stage's outputs."""
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["encoders"]
    out = run(["snakemake", "-n", "encoders", "--configfile", "config/paper.yaml"], ROOT)
    assert "pretrain_encoder" not in out.stdout
    setup = stage["cmd"].split(" && snakemake")[0]
    subprocess.run(setup, shell=True, cwd=tmp_path, check=True)
    outputs = [next(iter(o)) for o in stage["outs"]] + stage["metrics"]
    assert all((tmp_path / path).is_dir() for path in outputs), outputs


def test_dvc_params_name_keys_that_exist_in_the_default_config():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        for entry in stage.get("params", []):
            for key in entry.get("config/config.yaml", []):
                node = config
                for part in key.split("."):
                    assert isinstance(node, dict) and part in node, f"{name}: {key} not in config"
                    node = node[part]


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"tasks": {"vqa3": {}}}, "unknown task(s) ['vqa3']; valid tasks: vqav2"),
        ({"data": {"sourc": "x"}}, "data: unknown key(s) ['sourc']; allowed:"),
        ({"data": {"synthetic": {"seed": "zero"}}}, "data.synthetic.seed: 'zero' is not of type"),
        ({"data": {"on_bad_records": "ignore"}}, "use one of ['error', 'drop']"),
        (
            {
                "encoders": {
                    "grid": {
                        "type": "timm_grid",
                        "model": "resnet10t",
                        "pretrain": {"objective": "grid", "epoch": 3},
                    }
                }
            },
            "encoders.grid.pretrain: pretraining objective 'grid' has no option(s) ['epoch']",
        ),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, patch, expected):
    work = copy_project(tmp_path / "repo")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(patch))
    result = run(["snakemake", "-n", "--configfile", str(bad)], work, check=False)
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr
    assert not (work / "results" / "synthetic").exists()


@pytest.mark.slow
def test_tiny_run_prepares_every_task_and_extracts_every_store(tiny_run):
    results = tiny_run / "results"
    for task in TASKS:
        report = json.loads((results / "prepared" / task / "report.json").read_text())
        assert report["dropped"] == {}
        assert all(n > 0 for n in report["samples"].values())
    mirror = tree_digest(results / "synthetic" / "mirror")
    downloads = tree_digest(results / "downloads")
    assert downloads == {k: v for k, v in mirror.items() if k != "SHA256SUMS"}
    config = yaml.safe_load(TINY.read_text())
    for encoder in config["encoders"]:
        assert json.loads((results / "metrics" / "pretrain" / f"{encoder}.json").read_text())
        for pool in POOLS:
            manifest = json.loads(
                (results / "features" / encoder / pool / "manifest.json").read_text()
            )
            assert manifest["n_images"] > 0 and manifest["info"]["encoder"] == encoder
    baselines = json.loads((results / "metrics" / "baselines.json").read_text())
    assert set(baselines) == set(TASKS)
    for task, spec in TASKS.items():  # retrieval: a random ranking's rSum, nothing text-only
        assert ("text_only" in baselines[task]) == (spec.kind != "retrieval"), task
        assert 0 < baselines[task]["chance"] < 600, task
    assert "Nothing to be done" in run(["snakemake", "-n"], tiny_run).stdout


@pytest.mark.slow
def test_tiny_run_trains_the_whole_sweep_and_collects_it(tiny_run):
    results = tiny_run / "results"
    runs = sorted(results.glob("runs/*/*/*/metrics.json"))
    assert len(runs) == len(TASKS) * (7 + 1) + 1  # 7 subsets, VE-dropout on all three, matched
    assert not list(results.glob("runs/**/resume.pt"))
    table = pd.read_csv(results / "tables" / "runs.csv")
    assert set(table.task) == set(TASKS) and table.encoders.nunique() == 7
    full = table[(table.encoders == "grid+patch+region") & (table.split == "test")]
    assert full.groupby(["task", "seed", "ve_dropout"]).kept.nunique().eq(7).all()
    summary = json.loads((results / "metrics" / "sweep.json").read_text())
    assert set(summary) == set(TASKS)
    assert summary["coco_retrieval"]["grid"]["rsum"]["seeds"] == 1


@pytest.mark.slow
def test_tiny_run_ends_with_the_analyses_figures_and_a_report(tiny_run, tmp_path):
    from vecomp.analysis.analyse import ACROSS_TASKS, ANALYSES
    from vecomp.analysis.complementarity import SIGNALS
    from vecomp.analysis.figures import FIGURES

    results = tiny_run / "results"
    for name in ANALYSES:
        assert len(pd.read_csv(results / "analysis" / f"{name}.csv")), name
    for name in FIGURES:
        assert (results / "figures" / f"{name}.png").exists(), name
        assert (results / "figures" / f"{name}.pdf").exists(), name
    metrics = json.loads((results / "metrics" / "analysis.json").read_text())
    assert set(metrics) == {*TASKS, ACROSS_TASKS}
    encoders = yaml.safe_load(TINY.read_text())["encoders"]
    for task in TASKS:  # the sweep has every subset and baselines.json every task
        assert "best" in metrics[task], task
        assert {f"shapley_{e}" for e in encoders} <= set(metrics[task]), task
    assert set(metrics[ACROSS_TASKS]) == {f"synergy_rho_{signal}" for signal in SIGNALS}
    assert "**" in (results / "analysis" / "results.md").read_text()  # the best marked
    report = tmp_path / "report.html"
    run(["snakemake", "--report", str(report)], tiny_run)
    assert report.stat().st_size > 100_000 and "attention_per_layer.png" in report.read_text()


@pytest.mark.slow
def test_changing_one_task_training_setting_reruns_only_its_runs(tiny_run, tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config.setdefault("task_train", {})["gqa"] = {"epochs": 1}
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    planned = planned_jobs(run(["snakemake", "-n", "--configfile", str(changed)], tiny_run).stdout)
    trained = {w for rule, w in planned if rule == "train_fusion"}
    assert len(trained) == 8 and all(w.startswith("task=gqa,") for w in trained)
    downstream = {job for job in planned if job[0] != "train_fusion"}
    assert downstream == {
        ("collect_runs", ""),
        ("analyse_task", "task=gqa"),
        ("analyse", ""),
        ("figures", ""),
        ("all", ""),
        ("train_matched", "task=gqa, subset=grid, seed=0"),
    }


@pytest.mark.slow
def test_changing_one_task_setting_reruns_only_that_task(tiny_run, tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["tasks"]["vqav2"]["min_answer_count"] = 3
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    result = run(["snakemake", "-n", "--configfile", str(changed)], tiny_run)
    planned = planned_jobs(result.stdout)
    assert {job for job in planned if job[0] != "train_fusion"} == {
        ("prepare", "task=vqav2"),
        ("baselines", ""),
        ("encode_text", "task=vqav2"),
        ("collect_runs", ""),
        ("analyse_task", "task=vqav2"),
        ("analyse", ""),
        ("figures", ""),
        ("all", ""),
    }
    trained = {w for rule, w in planned if rule == "train_fusion"}
    assert len(trained) == 8 and all(w.startswith("task=vqav2,") for w in trained)


# Results of the jobs the small config shares with the tiny one it is cut from: the same rules on
# the same inputs with the same settings. The sweep's tables, analyses and figures cover other
# runs, so they differ.
SHARED_JOBS = (
    "synthetic/",
    "downloads/",
    "raw/",
    "prepared/",
    "encoders/",
    "metrics/pretrain/",
    "features/",
    "text/",
    "runs/",
)


@pytest.mark.slow
def test_dvc_repro_matches_snakemake_byte_for_byte(small_run, tiny_run):
    """`dvc repro` of the small config against `snakemake --cores 2` of the tiny config: every
    artifact of a job the two share has the same bytes (the SLURM test compares the small
    config's whole tree with a run on the cluster)."""
    reproduced = tree_digest(small_run / "results")
    shared = {path: digest for path, digest in reproduced.items() if path.startswith(SHARED_JOBS)}
    assert {path.split("/")[0] + "/" for path in shared} == {
        prefix.split("/")[0] + "/" for prefix in SHARED_JOBS
    }
    expected = tree_digest(tiny_run / "results")
    differ = sorted(path for path, digest in shared.items() if expected.get(path) != digest)
    assert not differ, f"dvc repro's {differ[:10]} differ from snakemake's"
    assert "up to date" in run(["dvc", "status"], small_run).stdout
    assert "Nothing to be done" in run(["snakemake", "-n"], small_run).stdout


@pytest.mark.slow
def test_dvc_records_restores_and_shares_a_snakemake_run(tiny_run, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(tiny_run, work, symlinks=True)
    run(["dvc", "commit", "-f"], work)  # records every artifact, recomputes nothing
    assert "up to date" in run(["dvc", "status"], work).stdout
    digest = tree_digest(work / "results" / "runs")

    shutil.rmtree(work / "results")  # restore from the cache: nothing to redo
    run(["dvc", "checkout"], work)
    run(["vecomp", "settle-times"], work)
    assert tree_digest(work / "results" / "runs") == digest
    assert "Nothing to be done" in run(["snakemake", "-n"], work).stdout

    run(["dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote")], work)
    run(["dvc", "push"], work)
    run(["git", "add", "-A"], work)
    run(["git", "commit", "-qm", "results recorded"], work)
    clone = tmp_path / "clone"  # a collaborator: a fresh clone, no cache, no Snakemake state
    run(["git", "clone", "-q", str(work), str(clone)], tmp_path)
    run(["dvc", "pull"], clone)
    run(["vecomp", "settle-times"], clone)
    assert tree_digest(clone / "results" / "runs") == digest
    assert "Nothing to be done" in run(["snakemake", "-n"], clone).stdout

    shutil.rmtree(clone / "results" / "figures")  # regenerate the figures, and only them
    run(["snakemake", "--cores", "2", "analysis"], clone)
    assert "Nothing to be done" in run(["snakemake", "-n"], clone).stdout
    assert tree_digest(clone / "results" / "figures") == tree_digest(work / "results" / "figures")


@pytest.mark.slow
def test_a_dvc_experiment_reruns_only_what_its_parameter_touches(tiny_run, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(tiny_run, work, symlinks=True)
    run(["dvc", "commit", "-f"], work)
    run(["git", "add", "-A"], work)
    run(["git", "commit", "-qm", "baseline"], work)
    logs = work / ".snakemake" / "log"
    before = set(logs.glob("*.log"))
    setting = "config/config.yaml:+task_train.gqa.epochs=1"  # + adds a key the file lacks
    result = run(["dvc", "exp", "run", "-S", setting], work)
    for stage in ("synthetic", "download", "prepare", "encoders", "features", "text"):
        assert f"Stage '{stage}' didn't change, skipping" in result.stdout, stage
    # what Snakemake did inside the stages DVC ran, from its own logs (one per invocation)
    invocations = [p.read_text() for p in sorted(set(logs.glob("*.log")) - before)]
    jobs = set().union(*(planned_jobs(text) for text in invocations))
    trained = {w for rule, w in jobs if rule.startswith("train_")}
    assert len(trained) == 8 + 1 and all(w.startswith("task=gqa,") for w in trained)
    assert not {rule for rule, _ in jobs} & {"prepare", "extract_features", "encode_text"}
    assert "task_train.gqa.epochs" in run(["dvc", "params", "diff"], work).stdout
    assert "gqa" in run(["dvc", "metrics", "diff"], work).stdout
    run(["dvc", "plots", "diff", "--out", str(tmp_path / "plots")], work)
    assert (tmp_path / "plots" / "index.html").exists()


def code_changed_rules(summary: str) -> set[str]:
    """The rules whose outputs `snakemake --summary` marks "params changed" (the code hash is a
    param), as opposed to those that only follow an updated input (a dry run names only the
    first reason of each job, which hides the second)."""
    lines = [line.split("\t") for line in summary.splitlines() if "\t" in line]
    header = next(i for i, cells in enumerate(lines) if cells[0] == "output_file")
    status = lines[header].index("status")
    return {cells[2] for cells in lines[header + 1 :] if cells[status] == "params changed"}


@pytest.fixture(scope="module")
def edited_run(tiny_run, tmp_path_factory) -> Path:
    """A copy of the tiny run whose sources the next test edits (and restores) in place, so the
    tests that read the tiny run meanwhile never see an edit."""
    work = tmp_path_factory.mktemp("edited") / "work"
    shutil.copytree(tiny_run, work, symlinks=True)
    return work


@pytest.mark.slow
@pytest.mark.parametrize(
    "module",  # one phase's helper, the demo's, a registry every phase reads, the last phase's
    ["data/baselines.py", "demo/probe.py", "kinds.py", "analysis/figures.py"],
)
def test_editing_package_code_reruns_exactly_the_jobs_that_run_it(edited_run, module):
    """The rules whose code changed are those whose command's import closure holds the module
    (computed here from the copy's own sources), and nothing else."""
    from vecomp.provenance import command_code

    from .test_provenance import rule_commands

    source = edited_run / "src" / "vecomp"
    path = source / module
    expected = {
        rule
        for rule, command in rule_commands().items()
        if path in command_code(command, source) and command not in UNHASHED
    }
    original = path.read_text()
    try:
        path.write_text(original + "\n# an edit\n")
        summary = run(["snakemake", "--summary"], edited_run).stdout
        assert code_changed_rules(summary) == expected
    finally:
        path.write_text(original)
    assert "Nothing to be done" in run(["snakemake", "-n"], edited_run).stdout


@pytest.mark.slow
def test_an_lm_initialised_sweep_tokenises_trains_and_analyses(tiny_run, tmp_path):
    """tests/config/pretrained.yaml (MiniLM continued over the joint sequence) on the tiny
    run's data and stores: the texts are tokenised, never encoded, and every later phase runs."""
    work = tmp_path / "work"
    shutil.copytree(tiny_run, work, symlinks=True)
    shutil.copy2(ROOT / "tests" / "config" / "pretrained.yaml", work / "config" / "config.yaml")
    planned = planned_jobs(run(["snakemake", "-n"], work).stdout)
    rules = {rule for rule, _ in planned}
    assert "tokenize_text" in rules and "encode_text" not in rules
    assert not rules & {"extract_features", "prepare", "pretrain_encoder"}  # reused as they are
    run(["snakemake", "--cores", "2"], work)
    config = yaml.safe_load((work / "config" / "config.yaml").read_text())
    for task in config["tasks"]:
        info = json.loads((work / "results" / "text" / task / "info.json").read_text())
        assert info["content"] == "token_ids", task
        metrics = json.loads(
            (work / f"results/runs/{task}/grid+patch/seed0-vedrop0/metrics.json").read_text()
        )
        assert metrics["parameters"] > 22_000_000, task  # MiniLM's layers are in every model
    attention = pd.read_csv(work / "results" / "analysis" / "tasks" / "vqav2" / "attention.csv")
    assert set(attention.layer) == set(range(1, 7))  # MiniLM's six layers
    assert "Nothing to be done" in run(["snakemake", "-n"], work).stdout


@pytest.mark.slow
def test_the_fusion_designs_benchmark_runs_on_a_finished_run(tiny_run, tmp_path):
    """bench/fusion_designs.py on the tiny run's results, so that the benchmark cannot rot."""
    out = tmp_path / "designs.json"
    run(
        [
            sys.executable,
            "bench/fusion_designs.py",
            "--tasks",
            "gqa",
            "--subset",
            "grid",
            "--init-epochs",
            "1",
            "--json",
            str(out),
        ],
        tiny_run,
    )
    rows = json.loads(out.read_text())
    assert [(r["design"], r["seed"]) for r in rows] == [("from scratch", 0), ("model.init", 0)]
    assert rows[1]["parameters"] > 22_000_000 > rows[0]["parameters"]
