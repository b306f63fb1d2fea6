# Config validation and shared helpers: the tasks, files and pools this run needs, derived
# from the dataset registry (src/vecomp/data/registry.py).

import json
import os
import re
from pathlib import Path

from vecomp import provenance
from vecomp.analysis import TASK_TABLES
from vecomp.analysis.analyse import ANALYSES
from vecomp.analysis.figures import FIGURES
from vecomp.config import validate_config
from vecomp.data import registry
from vecomp.fusion.sweep import (
    MATCHED_FOLDER,
    MATCHED_LOG,
    RUN_FILES,
    RUN_FOLDER,
    RUN_LOG,
    matched_folders,
    model_settings,
    run_folders,
    scheduling,
    sweep_table,
    train_settings,
)
from vecomp.kinds import get_kind

# Against src/vecomp/config.schema.yaml. A cluster job reads this file again: the run's main
# process has checked the config, the job only fills in the defaults.
validate_config(config, cross_checks=workflow.is_main_process)

# What this run uses (the config's names); the registries (registry.TASKS, registry.FILES, ...)
# hold everything vecomp knows.
DATA = config["data"]
TASK_NAMES = list(config["tasks"])
POOL_NAMES = registry.pools_for(TASK_NAMES)
ENCODER_SPECS = config["encoders"]
# Published feature files that precomputed encoders import: downloaded like dataset files.
FEATURE_FILE_KEYS = [
    key
    for spec in ENCODER_SPECS.values()
    if spec["type"] == "precomputed"
    for pool in POOL_NAMES
    for key in spec["files"][pool]
    if key in registry.FEATURE_FILES
]
FILE_KEYS = registry.files_for(TASK_NAMES) + sorted(set(FEATURE_FILE_KEYS))
ARCHIVES = {registry.get_file(k).stem: k for k in FILE_KEYS if registry.get_file(k).is_archive}
SYNTHETIC = DATA["source"] == "synthetic"
PRETRAINED = [name for name, spec in ENCODER_SPECS.items() if "pretrain" in spec]
FEATURES = config["features"]
MIRROR = "results/synthetic/mirror"
TEXT = config["text"]
MODEL = config["model"]
TRAIN = config["train"]
SWEEP = sweep_table(TASK_NAMES, ENCODER_SPECS, config["sweep"]) if ENCODER_SPECS else None
RUNS = run_folders(SWEEP) if ENCODER_SPECS else []
MATCHED = matched_folders(TASK_NAMES, ENCODER_SPECS, config["sweep"]) if ENCODER_SPECS else []


# The package code each rule's command runs (its import closure: vecomp/provenance.py). Its
# content hash is a param of the rule, so editing a module reruns exactly the jobs whose commands
# import it (Snakemake's params trigger), while a fresh clone or a `dvc checkout` with unchanged
# code reruns nothing (no mtimes involved). Downloads and archive extraction have none: their
# results are pinned by checksums, and refetching is expensive.
def code_hash(command):
    """Content hash of the package code behind ``vecomp <command>`` in this checkout."""
    return provenance.code_hash(command, Path(workflow.basedir) / "src" / "vecomp")


def alternatives(names):
    """A wildcard regex matching exactly these names."""
    return "|".join(re.escape(n) for n in sorted(names)) or "(?!)"


def raw_path(key):
    """Where a file's contents are read from: its extracted folder, or the download itself."""
    file = registry.get_file(key)
    return f"results/raw/{file.stem}" if file.is_archive else f"results/downloads/{key}"


def prepared(task):
    return [f"results/prepared/{task}/{name}" for name in PREPARED_FILES]


PREPARED_FILES = [
    "train.parquet",
    "dev.parquet",
    "test.parquet",
    "labels.json",
    "report.json",
]


# Targets of each phase: `snakemake <phase rule>` runs one phase (DVC stages do exactly that).
def synthetic_targets():
    return rules.generate_synthetic.output if SYNTHETIC else []


def download_targets():
    return [raw_path(k) for k in FILE_KEYS]


def encoder_targets():
    return [f"results/metrics/pretrain/{name}.json" for name in PRETRAINED]


def feature_targets():
    return [store_file(e, p) for e in ENCODER_SPECS for p in POOL_NAMES]


def prepare_targets():
    return [p for t in TASK_NAMES for p in prepared(t)] + ["results/metrics/baselines.json"]


def download_source(wildcards):
    """The synthetic mirror's file and manifest, so the suite is generated first."""
    return [f"{MIRROR}/{wildcards.file}", f"{MIRROR}/SHA256SUMS"] if SYNTHETIC else []


def mirror_option():
    """The synthetic suite's own mirror (its sums are its only reference), or data.mirror."""
    if SYNTHETIC:
        return f"--mirror {MIRROR} --synthetic"
    return f"--mirror {DATA['mirror']}" if DATA["mirror"] else ""


def task_files(wildcards):
    return {k: raw_path(k) for k in registry.get_task(wildcards.task).files}


def task_pool_index(wildcards):
    return f"results/prepared/pools/{registry.get_task(wildcards.task).pool}.parquet"


def prepare_options(task):
    """The task settings that prepare reads, as command-line options."""
    if get_kind(registry.get_task(task).kind).target == "answers":
        return f"--vqa '{json.dumps(config['tasks'][task], sort_keys=True)}'"
    return ""


# Encoders and their feature stores.
STORE_FILES = ["manifest.json", "index.parquet", "stats.safetensors"]


def store_folder(encoder, pool):
    return f"results/features/{encoder}/{pool}"


def store_file(encoder, pool, name="manifest.json"):
    return f"{store_folder(encoder, pool)}/{name}"


def task_pool(task):
    return registry.get_task(task).pool


# Text stores and the sweep.
TEXT_FILES = ["texts.safetensors", "texts.parquet", "info.json"]


def text_file(task, name="texts.safetensors"):
    return f"results/text/{task}/{name}"


def pretrained_weights(name):
    return f"results/encoders/{name}"


def encoder_spec(name):
    """The spec that builds the encoder: the config entry, with pipeline-made weights."""
    spec = {k: v for k, v in ENCODER_SPECS[name].items() if k != "pretrain"}
    if name in PRETRAINED:
        spec["weights"] = pretrained_weights(name)
    return spec


def pretrain_spec(name):
    return {k: v for k, v in ENCODER_SPECS[name]["pretrain"].items() if k != "objective"}


def pretrain_threads(wildcards):
    """The CPU threads a pretraining job asks for: those its spec trains with."""
    from vecomp.demo.pretrain.data import SHARED_DEFAULTS  # imports timm: only when asked

    return pretrain_spec(wildcards.encoder).get("threads", SHARED_DEFAULTS["threads"])


def precomputed_sources(wildcards):
    """A precomputed encoder's files for one pool: a registry key's download (or extracted
    folder), or the local path as given. Other encoders read the pool's images instead.
    """
    spec = ENCODER_SPECS[wildcards.encoder]
    if spec["type"] != "precomputed":
        return []
    entries = spec["files"][wildcards.pool]
    return [raw_path(e) if e in registry.FEATURE_FILES else e for e in entries]


def encoder_weights(wildcards):
    """A pretrained encoder's checkpoint, so pretraining runs before extraction."""
    name = wildcards.encoder
    return [pretrained_weights(name)] if name in PRETRAINED else []


# ------------------------------------------------------------------ analysis
ANALYSIS = config["analysis"]
ANALYSIS_FILES = [f"{name}.csv" for name in TASK_TABLES]


def task_runs(task):
    return run_folders(SWEEP[SWEEP.task == task])


def task_evaluation(task):
    """The evaluation options a task's runs used (the retrieval shortlist)."""
    settings = train_settings(config, task)
    return {k: settings[k] for k in ("rerank_top_k",) if k in settings}
