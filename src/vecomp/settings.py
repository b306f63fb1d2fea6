"""Where each setting's default lives, and the command-line options that mirror config keys.

One home per default:

- the pipeline's own settings (``data``, ``features``, ``text``, ``sweep``, ``analysis``,
  ``tasks``): the ``default:`` of their key in ``config.schema.yaml`` (beside this file), which
  config validation fills in and every ``vecomp`` option mirroring a key reads (``add_setting``);
- the fusion model and its training (``model``, ``train``): ``FusionConfig`` and
  ``TrainConfig`` (``fusion/model.py``, ``fusion/train.py``);
- the synthetic suite (``data.synthetic``): ``SuiteSpec`` (``demo/synthetic/suite.py``);
- a demo encoder's pretraining (``encoders.<name>.pretrain``): its objective's ``DEFAULTS``
  (``demo/pretrain/<objective>.py``).

The schema gives those last three their types and ranges but no defaults.
"""

from __future__ import annotations

import argparse
from functools import cache
from pathlib import Path

import yaml

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


def add_setting(parser: argparse.ArgumentParser, option: str, key: str, **kwargs) -> None:
    """An option mirroring config key ``key``: its default and help come from the schema."""
    entry = schema_entry(key)
    description = " ".join(entry.get("description", "").split()).replace("%", "%%")
    kwargs.setdefault("default", schema_default(key))
    if "enum" in entry:
        kwargs.setdefault("choices", entry["enum"])
    parser.add_argument(
        option, help=f"{description} (config: {key}; default: %(default)s)", **kwargs
    )
