"""Where each setting's default lives, and the command-line options that mirror config keys.

One home per default:

- the pipeline's own settings (``data``, ``features``, ``text``, ``sweep``, ``analysis``,
  ``tasks``): the ``default:`` of their key in ``config.schema.yaml`` (beside this file), which
  config validation fills in and every ``vecomp`` option mirroring a key reads (``add_setting``);
- the fusion model and its training (``model``, ``train``): ``FusionConfig`` and
  ``TrainConfig`` (``fusion/model.py``, ``fusion/train.py``);
- the synthetic suite (``data.synthetic``): ``SuiteSpec`` (``demo/synthetic/generate.py``);
- a demo encoder's pretraining (``encoders.<name>.pretrain``): its objective's ``DEFAULTS``
  (``demo/pretrain/<objective>.py``).

The schema gives those last three their types and ranges but no defaults.

The schema also checks every command-line value that stands for a config key, so a bad value is
refused the same way on the command line as in a config: ``add_setting`` checks an option's
value, ``json_setting`` a JSON option (``--train``, ``--model``, ...) as the key it stands for.
``existing_path`` refuses an input that is not there before a command starts.
"""

from __future__ import annotations

import argparse
import json
from functools import cache
from pathlib import Path

import yaml
from jsonschema import Draft7Validator

SCHEMA = Path(__file__).with_name("config.schema.yaml")


@cache
def schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def schema_entry(key: str) -> dict:
    """The schema of a dotted config key, e.g. ``features.batch_size``."""
    entry = schema()
    for part in key.split("."):
        if "$ref" in entry:
            entry = _resolve(entry["$ref"])
        properties = entry.get("properties", {})
        if part not in properties:
            raise KeyError(f"the config schema has no key {key!r}")
        entry = properties[part]
    return entry


def _resolve(reference: str) -> dict:
    entry = schema()
    for part in reference.removeprefix("#/").split("/"):
        entry = entry[part]
    return entry


def schema_default(key: str):
    entry = schema_entry(key)
    if "default" not in entry:
        raise KeyError(f"the config schema gives {key!r} no default")
    return entry["default"]


def describe_error(error, root: str = "") -> str:
    """One line for a schema violation: the dotted key, then what is wrong and what is allowed."""
    path = [str(p) for p in error.absolute_path]
    where = ".".join(([root] if root else []) + path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        return f"{where}: unknown key(s) {unknown}; allowed: {', '.join(allowed)}"
    if error.validator == "enum":
        return f"{where}: {error.instance!r} is not allowed; use one of {error.validator_value}"
    return f"{where}: {error.message}"


def setting_problems(key: str, value) -> list[str]:
    """What the schema of config key ``key`` finds wrong with ``value`` (nothing: ``[]``)."""
    entry = {**schema_entry(key), "definitions": schema().get("definitions", {})}
    errors = sorted(Draft7Validator(entry).iter_errors(value), key=lambda e: list(e.path))
    return [describe_error(error, key) for error in errors]


def _checked(convert, key: str):
    """An argparse type: ``convert`` the text, then refuse what the schema of ``key`` refuses."""

    def parse(text: str):
        value = convert(text)
        problems = setting_problems(key, str(value) if isinstance(value, Path) else value)
        if problems:
            raise argparse.ArgumentTypeError("; ".join(problems))
        return value

    parse.__name__ = getattr(convert, "__name__", "value")  # argparse's "invalid int value"
    return parse


def json_object(text: str) -> dict:
    """An argparse type: a JSON object (a bad one is refused with what is wrong and where)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(
            f"not JSON ({err.msg}, column {err.colno}): {text!r}; give an object, e.g. "
            """'{"epochs": 2}' in single quotes"""
        ) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"a JSON object ({{...}}) is needed, got {text!r}")
    return value


json_object.__name__ = "JSON"


def json_setting(key: str):
    """An argparse type for a JSON option standing for config key ``key`` (e.g. ``train``)."""
    return _checked(json_object, key)


def existing_path(text: str) -> Path:
    """An argparse type: an input file or folder that must exist."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(
            f"{text} does not exist; check the path (the step that writes it may not have run)"
        )
    return path


existing_path.__name__ = "path"


def add_setting(parser: argparse.ArgumentParser, option: str, key: str, **kwargs) -> None:
    """An option mirroring config key ``key``: its default, help and checks come from the schema."""
    entry = schema_entry(key)
    description = " ".join(entry.get("description", "").split()).replace("%", "%%")
    kwargs.setdefault("default", schema_default(key))
    kwargs["type"] = _checked(kwargs.get("type", str), key)
    if "enum" in entry:
        kwargs.setdefault("choices", entry["enum"])
    parser.add_argument(
        option, help=f"{description} (config: {key}; default: %(default)s)", **kwargs
    )
