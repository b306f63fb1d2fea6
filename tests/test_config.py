"""Config validation: defaults filled in, every bad key named with the allowed values."""

from __future__ import annotations

import copy
import re
import subprocess
import sys

import pytest
import yaml

from vecomp.config import ConfigError, validate_config
from vecomp.data.registry import TASKS
from vecomp.settings import SCHEMA

from .workflow_helpers import ROOT


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


def python(code: str, *args) -> str:
    """What a fresh interpreter prints running ``code`` with ``args``."""
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml", "validation.yaml"])
def test_shipped_configs_are_valid(name):
    validate_config(load(name), SCHEMA)


def test_defaults_are_filled_in():
    config = validate_config({"tasks": {"vqav2": {}}, "data": {}}, SCHEMA)
    assert config["tasks"]["vqav2"]["min_answer_count"] == 9
    assert config["data"]["source"] == "synthetic"
    assert config["data"]["download"] == {"retries": 4, "timeout_s": 60}


def test_schema_describes_every_task_the_registry_knows():
    schema = yaml.safe_load(SCHEMA.read_text())
    assert set(schema["properties"]["tasks"]["properties"]) == set(TASKS)


def _schema_keys_without_description(node, path=""):
    if not isinstance(node, dict):
        return []
    missing = []
    for key, sub in node.get("properties", {}).items():
        if isinstance(sub, dict) and "description" not in sub:
            missing.append(f"{path}{key}")
        missing += _schema_keys_without_description(sub, f"{path}{key}.")
    return missing


def test_every_schema_key_has_a_description():
    assert _schema_keys_without_description(yaml.safe_load(SCHEMA.read_text())) == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c.update(taks={}),
            "(top level): unknown key(s) ['taks']; allowed: analysis, data, encoders, features,",
        ),
        (lambda c: c["tasks"].update(vqa={}), "unknown task(s) ['vqa']; valid tasks: vqav2, gqa"),
        (
            lambda c: c["tasks"].update(gqa={"min_answer_count": 3}),
            "tasks.gqa: unknown key(s) ['min_answer_count']",
        ),
        (lambda c: c["data"].update(source="web"), "data.source: 'web' is not allowed"),
        (lambda c: c["data"]["synthetic"].update(image_size=8), "data.synthetic.image_size: 8"),
        (
            lambda c: c["encoders"]["grid"]["pretrain"].update(epoch=3),
            "encoders.grid.pretrain: pretraining objective 'grid' has no option(s) ['epoch']",
        ),
        (
            lambda c: c["encoders"]["region"]["pretrain"].update(n_train=0),
            "encoders.region.pretrain: pretrain region: n_train must be a positive integer",
        ),
        (
            lambda c: c["data"]["synthetic"]["images"]["coco"].update(train2015=1),
            "data.synthetic.images.coco: 'train2015' is not allowed",
        ),
        (lambda c: c["data"].update(mirror="http://m"), "the synthetic suite is its own mirror"),
        (lambda c: c.update(tasks={}), "tasks: {} should be non-empty"),
        (
            lambda c: c.update(task_train={"nlvr2x": {"epochs": 2}}),
            "task_train: ['nlvr2x'] not in tasks; configured tasks: vqav2, gqa",
        ),
        (
            lambda c: c.update(task_train={"gqa": {"epoch": 2}}),
            "task_train.gqa: unknown key(s) ['epoch']",
        ),
        (
            lambda c: c["tasks"].update(gqa={"train": {"epochs": 2}}),
            "tasks.gqa.train: a task's training settings live in task_train.gqa; move them there",
        ),
        (
            lambda c: c["encoders"]["grid"].update(type="timm_gird"),
            "encoders.grid: unknown encoder type 'timm_gird'; valid types: attribute_probe, "
            "hf_patch",
        ),
        (
            lambda c: c["encoders"]["grid"].update(depth=2),
            "encoders.grid: encoder type 'timm_grid' has no option(s) ['depth']",
        ),
        (lambda c: c["encoders"]["grid"].update(weights="x"), "has both pretrain and weights"),
        (
            lambda c: c["sweep"].update(matched=[{"task": "nlvr", "encoder": "grid"}]),
            "sweep.matched[0]: task 'nlvr' is not configured",
        ),
        (
            lambda c: c["sweep"].update(matched=[{"task": "gqa", "encoder": "dino"}]),
            "sweep.matched[0]: encoder 'dino' is not configured; use one of",
        ),
        (
            lambda c: c["encoders"]["grid"]["pretrain"].update(objective="mae"),
            "encoders.grid.pretrain.objective: 'mae' is not allowed",
        ),
        (
            lambda c: c["encoders"]["grid"]["pretrain"].update(threads=0),
            "encoders.grid.pretrain.threads: 0 is less than the minimum of 1",
        ),
        (lambda c: c["features"].update(on_bad_images="drop"), "features.on_bad_images"),
    ],
)
def test_bad_configs_name_the_key(edit, message):
    config = copy.deepcopy(load("config.yaml"))
    edit(config)
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA)
    assert message in str(err.value)


def test_a_cluster_job_s_schema_only_check_fills_defaults_and_skips_the_registry_checks():
    config = copy.deepcopy(load("config.yaml"))
    config["encoders"]["grid"]["levle"] = -2  # an option of no encoder type: a cross-check
    del config["data"]["download"]
    checked = validate_config(copy.deepcopy(config), SCHEMA, cross_checks=False)
    assert checked["data"]["download"] == {"retries": 4, "timeout_s": 60}  # the defaults
    with pytest.raises(ConfigError, match=r"encoders.grid: .*no option\(s\) \['levle'\]"):
        validate_config(config, SCHEMA)
    config["data"]["on_bad_records"] = "skip"  # the schema's own checks stay
    with pytest.raises(ConfigError, match="data.on_bad_records"):
        validate_config(config, SCHEMA, cross_checks=False)


# What checking a config may import: Snakemake checks it at every start, and a cluster job
# reads the Snakefile again (the libraries below took 7 of its 9 s before they were imported
# where they are used)
HEAVY = ("torchvision", "timm", "transformers", "matplotlib", "safetensors")
IMPORTED = (
    "import sys, yaml\n"
    "from vecomp.config import validate_config\n"
    "validate_config(yaml.safe_load(open(sys.argv[1])), cross_checks=sys.argv[2] == 'all')\n"
    "print(' '.join(sorted(sys.modules)))"
)


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml", "validation.yaml"])
def test_checking_a_config_imports_no_model_library(name):
    imported = {
        checks: set(python(IMPORTED, ROOT / "config" / name, checks).split())
        for checks in ("all", "schema")
    }
    assert not imported["all"] & set(HEAVY), "import these where they are used"
    assert "torch" in imported["all"]  # the encoder classes are torch modules
    assert "torch" not in imported["schema"]


def test_the_workflow_s_imports_load_no_plotting_or_model_library():
    """Snakemake runs these at every start, and on a cluster in every job."""
    rules = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
    statements = [
        statement
        for path in rules
        for statement in re.findall(
            r"^(?:from|import) [^\n(]*(?:\([^)]*\))?", path.read_text(), re.M
        )
    ]
    assert any("FIGURES" in statement for statement in statements)  # the registries are read
    imported = python("\n".join([*statements, "import sys", "print(' '.join(sys.modules))"]))
    assert not set(imported.split()) & set(HEAVY), "import these where they are used"


def test_all_problems_are_reported_at_once():
    config = load("config.yaml")
    config["data"]["on_bad_records"] = "skip"
    config["data"]["synthetic"]["seed"] = "x"
    message = str(pytest.raises(ConfigError, validate_config, config, SCHEMA).value)
    assert "data.on_bad_records" in message and "data.synthetic.seed" in message


def _leaf_defaults(entry: dict, key: str) -> list[str]:
    """Dotted keys under ``entry`` whose schema gives a default (the object itself aside)."""
    found = []
    for name, sub in (entry.get("properties") or {}).items():
        if "default" in sub and sub.get("type") != "object":
            found.append(f"{key}.{name}")
        found += _leaf_defaults(sub, f"{key}.{name}")
    return found


@pytest.mark.parametrize(
    ("key", "home"),
    [
        ("data.synthetic", "SuiteSpec"),
        ("model", "FusionConfig"),
        ("train", "TrainConfig"),
        ("encoders.*.pretrain", "each objective's DEFAULTS"),
    ],
)
def test_settings_whose_home_is_code_have_no_second_default_in_the_schema(key, home):
    """One home per default (vecomp/settings.py): the schema types these, code defaults them."""
    schema = yaml.safe_load(SCHEMA.read_text())
    entry = schema
    for part in key.split("."):
        entry = entry["additionalProperties"] if part == "*" else entry["properties"][part]
        if "$ref" in entry:
            entry = schema["definitions"][entry["$ref"].split("/")[-1]]
    assert _leaf_defaults(entry, key) == [], f"{key} takes its defaults from {home}"


def test_an_empty_synthetic_spec_is_suite_spec_s_defaults():
    from vecomp.demo.synthetic.generate import SuiteSpec

    filled = validate_config({"tasks": {"gqa": {}}, "data": {}}, SCHEMA)["data"]["synthetic"]
    assert filled == {} and SuiteSpec.from_dict(filled) == SuiteSpec()


# Every `vecomp` option that mirrors a config key, by command (vecomp/settings.add_setting).
MIRRORED = {
    "extract-features": [
        "features.batch_size",
        "features.workers",
        "features.images_per_shard",
        "features.device",
        "features.decode",
        "features.on_bad_images",
    ],
    "encode-text": ["text.max_length", "text.batch_size", "text.layer"],
    "tokenize-text": ["text.max_length"],
    "analyse-task": ["analysis.attention_samples"],
    "prepare": ["data.on_bad_records"],
    "download": [
        "data.manual_dir",
        "data.checksum_lock",
        "data.download.retries",
        "data.download.timeout_s",
    ],
}


@pytest.mark.parametrize("command", sorted(MIRRORED))
def test_options_mirroring_a_config_key_take_the_schema_s_default(command, capsys):
    from vecomp import cli
    from vecomp.settings import schema_default

    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    mirrored = re.findall(r"\(config: ([\w.]+); default: ([^)]*)\)", help_text)
    assert [key for key, _ in mirrored] == MIRRORED[command]
    for key, shown in mirrored:
        assert shown == str(schema_default(key)), (key, shown)
