"""The SLURM profile (profiles/slurm), checked for real.

The fast tests read the profile against the workflow. The slow one starts a one-node SLURM
cluster on this machine (tests/slurm_cluster.py: Debian's slurm-wlm, slurmdbd, munge and
MariaDB, on loopback) and runs a small config derived from the tiny test config (one task, two
pretrained encoders, both scheduler groups) through snakemake-executor-plugin-slurm. Its
artifacts must be the bytes of the same config reproduced locally with `dvc repro` on the same
machine.
A cluster that cannot start fails the test with the reason. Only a machine that cannot host one
at all (not root: slurmd runs as root) skips it, with that reason in the summary; CI is root.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import yaml

from tests.slurm_cluster import (
    ACCOUNT,
    PROFILE,
    ClusterError,
    LocalSlurmCluster,
    cannot_run_here,
    with_sbin,
)
from tests.workflow_helpers import ROOT, copy_project, run, tool_env, tree_digest

CORES = str(os.cpu_count() or 1)
# What the README adds for a small node: no job or group asks for more cores than the node has
# (--cores caps both on a cluster too), and the short jobs are polled soon and often.
DEMO_OPTIONS = [
    *("--cores", CORES),
    *("--slurm-init-seconds-before-status-checks", "5"),
    *("--seconds-between-status-checks", "2"),
]


def workflow_rules() -> dict[str, str]:
    """{rule name: its source block} of every rule in the workflow."""
    text = "\n".join(p.read_text() for p in sorted((ROOT / "workflow" / "rules").glob("*.smk")))
    text += (ROOT / "Snakefile").read_text()
    blocks = re.split(r"^ *rule ", text, flags=re.M)[1:]  # rules under an `if` are indented
    return {block.split(":", 1)[0]: block for block in blocks}


def test_the_slurm_profile_names_only_rules_of_the_workflow():
    profile = yaml.safe_load(PROFILE.read_text())
    rules = workflow_rules()
    assert profile["executor"] == "slurm"
    assert set(profile["set-resources"]) <= set(rules)
    assert set(profile["groups"]) <= set(rules)
    assert set(profile["group-components"]) <= set(profile["groups"].values())
    assert profile["slurm-keep-successful-logs"] and profile["slurm-logdir"]
    # Snakemake also reads profiles/default as the workflow profile, over this one: its keys
    # must say what this profile says
    local = yaml.safe_load((ROOT / "profiles" / "default" / "config.yaml").read_text())
    assert {key: profile.get(key) for key in local} == local


def test_downloads_run_on_the_submit_host():
    """Compute nodes often have no internet: whatever fetches data is a local rule."""
    rules = workflow_rules()
    assert "localrule: True" in rules["download"]
    heavy = (
        "train_fusion",
        "extract_features",
        "pretrain_encoder",
        "prepare",
        "encode_text",
        "tokenize_text",
    )
    assert not any("localrule: True" in rules[name] for name in heavy)


def test_the_paper_profile_asks_slurm_for_gpus_where_it_trains_and_extracts(tmp_path):
    work = copy_project(tmp_path / "work")  # not ROOT: a run there may hold incomplete files
    dry = run(
        ["snakemake", "-n", "--profile", "profiles/slurm", "--configfile", "config/paper.yaml"],
        work,
    )
    jobs = re.findall(r"rule (\w+):\n(?:    .*\n)*?    resources: (.*)", dry.stdout)
    resources = {rule: res for rule, res in jobs}
    for rule in ("extract_features", "train_fusion", "analyse_task"):
        assert "gpu=1" in resources[rule], rule
    assert "tokenize_text" in resources and "encode_text" not in resources  # model.init


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = cannot_run_here()
    if reason:  # the user's environment, not the cluster: visible in the summary (-ra)
        pytest.skip(reason)
    try:
        started = LocalSlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    except ClusterError as error:
        pytest.fail(f"the one-node SLURM cluster did not start: {error}", pytrace=False)
    yield started
    started.stop()


def slurm_jobs(cluster) -> list[dict]:
    """Every job the cluster ran, from its accounting database (what `sacct` shows)."""
    out = subprocess.run(
        [
            "sacct",
            "-X",
            "-n",
            "-P",
            "-a",
            "--starttime=2000-01-01",
            "--format=JobID,State,Account,Comment",
        ],
        capture_output=True,
        text=True,
        env=cluster.env,
        check=True,
    ).stdout
    keys = ("id", "state", "account", "comment")
    return [dict(zip(keys, line.split("|"), strict=True)) for line in out.splitlines()]


@pytest.mark.slow
@pytest.mark.slurm
def test_a_small_config_runs_on_slurm_to_the_local_results(cluster, small_run, tmp_path):
    # a fresh clone with the small config (workflow_helpers.small_config)
    work = copy_project(tmp_path / "work", small_run / "config" / "config.yaml")
    env = tool_env()  # the venv first on PATH: the jobs inherit it (sbatch --export=ALL)
    env.update(SLURM_CONF=str(cluster.config), PATH=with_sbin(env["PATH"]))
    command = ["snakemake", "--profile", "profiles/slurm", *DEMO_OPTIONS]
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    jobs = slurm_jobs(cluster)
    rules = {re.sub(r"_wildcards.*", "", job["comment"]) for job in jobs}
    assert {"rule_pretrain_encoder", "rule_extract_features", "rule_train_fusion"} <= rules
    assert "rule_download" not in rules  # local rules never leave the submit host
    assert {job["state"] for job in jobs} == {"COMPLETED"}
    assert {job["account"] for job in jobs} == {ACCOUNT}
    runs = list((work / "results" / "runs").glob("*/*/*/metrics.json"))
    assert len(runs) == 3 and len(jobs) > len(runs)  # every run its own job
    logs = work / "logs" / "slurm"  # every job's sbatch log is kept, grouped ones too
    assert len(list(logs.rglob("*.log"))) == len(jobs)
    for group in ("prepare", "report"):  # the profile's groups: one job each
        assert len(list(logs.glob(f"group_{group}_*/*.log"))) == 1, group

    # the same bytes as the same config reproduced locally with `dvc repro` on this machine
    expected, scheduled = tree_digest(small_run / "results"), tree_digest(work / "results")
    assert scheduled.keys() == expected.keys()
    differ = sorted(path for path, digest in scheduled.items() if expected[path] != digest)
    assert not differ, f"the SLURM run's {differ[:10]} differ from dvc repro's"
    assert "Nothing to be done" in run(["snakemake", "-n"], work).stdout


def test_the_test_cluster_never_replaces_a_slurm_configuration_of_the_machine(tmp_path):
    link = tmp_path / "etc-slurm" / "slurm.conf"
    cluster = LocalSlurmCluster(tmp_path / "cluster", system_config=link)
    (tmp_path / "cluster" / "etc").mkdir(parents=True)
    cluster.write_configs()
    link.parent.mkdir()
    link.write_text("ClusterName=theirs\n")
    with pytest.raises(ClusterError, match="configuration of its own"):
        cluster.link_system_config()
    assert link.read_text() == "ClusterName=theirs\n"

    link.unlink()
    stale = LocalSlurmCluster(tmp_path / "killed", system_config=link)
    (tmp_path / "killed" / "etc").mkdir(parents=True)
    stale.write_configs()
    stale.link_system_config()  # a test run killed before it could stop
    cluster.link_system_config()  # replaces the stale link
    assert link.resolve() == cluster.config
    stale.stop()  # not its link: left alone
    assert link.is_symlink()
    cluster.stop()
    assert not link.exists() and not link.is_symlink()
