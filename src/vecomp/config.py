"""Config validation: the JSON schema, defaults filled in, and names checked against registries.

Errors are collected, not stopped at the first: the message lists every bad key with its dotted
path and, for unknown keys or values, the allowed ones. Snakemake calls :func:`validate_config`
before any job starts, so a typo never costs a half-run pipeline.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from jsonschema import Draft7Validator, validators

from .data.registry import TASKS
from .errors import VecompError
from .settings import SCHEMA, describe_error


class ConfigError(VecompError, ValueError):
    pass


def _with_defaults(validator_class):
    """A validator that also writes each property's ``default`` into the instance."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for name, sub in props.items():
                if "default" in sub and name not in instance:
                    instance[name] = sub["default"]
        yield from check_properties(validator, props, instance, schema)

    return validators.extend(validator_class, {"properties": properties})


_Validator = _with_defaults(Draft7Validator)


def _cross_checks(config: dict) -> list[str]:
    problems = []
    unknown = sorted(set(config.get("tasks", {})) - set(TASKS))
    if unknown:
        problems.append(f"tasks: unknown task(s) {unknown}; valid tasks: {', '.join(TASKS)}")
    for task, settings in (config.get("tasks") or {}).items():
        if isinstance(settings, dict) and "train" in settings:
            problems.append(
                f"tasks.{task}.train: a task's training settings live in task_train.{task}; "
                "move them there"
            )
    untrained = sorted(set(config.get("task_train") or {}) - set(config.get("tasks", {})))
    if untrained:
        problems.append(
            f"task_train: {untrained} not in tasks; configured tasks: "
            f"{', '.join(config.get('tasks', {}))}"
        )
    problems += _encoder_checks(config.get("encoders") or {})
    problems += _precomputed_checks(config)
    problems += _model_checks(config.get("model") or {}, config.get("encoders") or {})
    problems += _matched_checks(config)
    problems += _init_checks(config)
    data = config.get("data", {})
    if data.get("source") == "synthetic" and data.get("mirror"):
        problems.append(
            "data.mirror: the synthetic suite is its own mirror; remove data.mirror or set "
            "data.source: official"
        )
    return problems


def _init_checks(config: dict) -> list[str]:
    """model.init fixes the model's sizes and the text model, and cannot be widened."""
    model = config.get("model") or {}
    init = model.get("init")
    if not init:
        return []
    problems = []
    sized = sorted({"width", "layers", "heads", "ffn"} & set(model))
    if sized:
        problems.append(f"model: {sized} are fixed by model.init ({init}); remove them")
    text_model = (config.get("text") or {}).get("model")
    if text_model != init:
        problems.append(
            f"text.model: {text_model!r} differs from model.init {init!r}; the texts are "
            "tokenised for the model that continues them: set both to the same model"
        )
    if (config.get("sweep") or {}).get("matched"):
        problems.append(
            "sweep.matched: the parameter-count control widens a model trained from scratch; "
            "with model.init the width is the pretrained model's: remove sweep.matched or "
            "model.init"
        )
    return problems


def _model_checks(model: dict, encoders: dict) -> list[str]:
    problems = []
    unknown = sorted(set(model.get("pool_grid") or {}) - set(encoders))
    if unknown:
        problems.append(
            f"model.pool_grid: {unknown} are not configured encoders; use one of {sorted(encoders)}"
        )
    width, heads = model.get("width"), model.get("heads")
    if isinstance(width, int) and isinstance(heads, int) and heads > 0 and width % heads:
        problems.append(f"model.heads: {heads} heads do not divide model.width {width}")
    return problems


def _matched_checks(config: dict) -> list[str]:
    """Each parameter-matched run names a configured task and encoder, beside other encoders."""
    tasks, encoders = set(config.get("tasks") or {}), set(config.get("encoders") or {})
    problems = []
    for i, entry in enumerate((config.get("sweep") or {}).get("matched") or []):
        where = f"sweep.matched[{i}]"
        if entry.get("task") not in tasks:
            problems.append(
                f"{where}: task {entry.get('task')!r} is not configured; use one of {sorted(tasks)}"
            )
        if entry.get("encoder") not in encoders:
            problems.append(
                f"{where}: encoder {entry.get('encoder')!r} is not configured; use "
                f"one of {sorted(encoders)}"
            )
        elif len(encoders) < 2:
            problems.append(f"{where}: matching a larger model needs two or more encoders")
    return problems


def _encoder_checks(encoders: dict) -> list[str]:
    """Encoder types and options exist (checked before any job, not in the job that uses them)."""
    from .encoders.factory import check_spec
    from .encoders.registry import EncoderSpecError

    problems = []
    for name, spec in encoders.items():
        if not isinstance(spec, dict):
            continue  # the schema reports it
        options = {k: v for k, v in spec.items() if k != "pretrain"}
        try:
            check_spec(options)
        except EncoderSpecError as err:
            problems.append(f"encoders.{name}: {err}")
        problems += _pretrain_problems(name, spec.get("pretrain"))
        if "pretrain" in spec and "weights" in spec:
            problems.append(
                f"encoders.{name}: has both pretrain and weights; a pretrained encoder's weights "
                f"are results/encoders/{name} (drop `weights`, or drop `pretrain`)"
            )
    return problems


def _pretrain_problems(name: str, pretrain) -> list[str]:
    """A demo encoder's pretraining options exist and are in range (the objective's DEFAULTS)."""
    if not isinstance(pretrain, dict):
        return []  # absent, or the schema reports it
    from .demo.pretrain import DEFAULTS
    from .demo.pretrain.data import PretrainSpecError, resolve_spec

    objective = pretrain.get("objective")
    if objective not in DEFAULTS:
        return []  # the schema reports it
    options = {k: v for k, v in pretrain.items() if k != "objective"}
    try:
        resolve_spec(objective, DEFAULTS[objective], options)
    except PretrainSpecError as err:
        return [f"encoders.{name}.pretrain: {err}"]
    return []


def _precomputed_checks(config: dict) -> list[str]:
    """A precomputed encoder names files for every pool the tasks use: registry keys (not in
    the synthetic suite) or existing local paths."""
    from .data.registry import pools_for

    tasks = [t for t in config.get("tasks") or {} if t in TASKS]
    synthetic = (config.get("data") or {}).get("source") == "synthetic"
    problems = []
    for name, spec in (config.get("encoders") or {}).items():
        if not isinstance(spec, dict) or spec.get("type") != "precomputed":
            continue
        files = spec.get("files") if isinstance(spec.get("files"), dict) else {}
        for pool in pools_for(tasks):
            where = f"encoders.{name}.files.{pool}"
            if pool not in files:
                problems.append(
                    f"{where}: missing; the tasks use image pool {pool!r}: list its feature "
                    "files (registry keys or paths)"
                )
            problems += [
                f"{where}: {p}" for p in _feature_file_problems(files.get(pool), synthetic)
            ]
    return problems


def _feature_file_problems(entries: list | None, synthetic: bool) -> list[str]:
    from .data.registry import FEATURE_FILES

    problems = []
    for entry in entries or []:
        if entry in FEATURE_FILES and synthetic:
            problems.append(
                f"{entry} is a published file, not part of the synthetic suite; use "
                "data.source: official or list local TSV paths"
            )
        elif entry not in FEATURE_FILES and not Path(str(entry)).exists():
            problems.append(
                f"{entry!r} is neither a registry key ({', '.join(FEATURE_FILES)}) nor an "
                "existing path"
            )
    return problems


def validate_config(
    config: dict, schema_path: str | Path = SCHEMA, cross_checks: bool = True
) -> dict:
    """Validate ``config`` in place (defaults filled in) and return it; raise ConfigError.

    ``cross_checks=False`` checks the schema only: for a cluster job, which re-reads a config
    its workflow's main process has checked (the encoder checks import torch: 2 s a job)."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = sorted(_Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    problems = [describe_error(e) for e in errors]
    if cross_checks:
        problems = _cross_checks(config) + problems  # after the schema has filled the defaults
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
    return config
