"""The planted-complementarity validation, end to end (``config/validation.yaml``).

Three probe encoders see colour, shape or position only; each task asks two fixed questions that
need exactly two of them. The pipeline runs as a researcher runs it (`snakemake --cores 2`), and
its own analysis tables must recover the plant: a single encoder can answer only half of a
task's questions, the planted pair answers all of them.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from .workflow_helpers import ROOT, copy_project, run

CONFIG = ROOT / "config" / "validation.yaml"
MARGIN = 10.0  # points; a single encoder misses about half of the questions (~25 points)
NEEDED = 8.0  # masking a needed encoder costs at least this (VQA's soft scores compress it)
UNNEEDED = 3.0  # masking an encoder the task does not need costs at most this


def planted() -> dict[str, set[str]]:
    """task -> the encoders its probe questions need (from the config itself)."""
    config = yaml.safe_load(CONFIG.read_text())
    sees = {name: spec["sees"] for name, spec in config["encoders"].items()}
    probes = config["data"]["synthetic"]["probes"]
    return {
        task: {e for e, seen in sees.items() if seen in kinds} for task, kinds in probes.items()
    }


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    work = copy_project(tmp_path_factory.mktemp("validation"), CONFIG)
    run(["snakemake", "--cores", "2"], work)
    folder = work / "results" / "analysis"
    return {
        name: pd.read_csv(folder / f"{name}.csv")
        for name in ("results", "gains", "necessity", "attention")
    }


@pytest.mark.slow
def test_the_planted_pair_beats_every_single_encoder_by_a_clear_margin(analysis):
    results = analysis["results"].set_index(["task", "encoders"])["mean"]
    gains = analysis["gains"].set_index(["task", "encoders"])
    for task, needed in planted().items():
        pair = "+".join(sorted(needed))
        for single in sorted({"color", "shape", "position"}):
            assert results[(task, pair)] >= results[(task, single)] + MARGIN, (task, single)
        assert gains.loc[(task, pair), "low"] >= MARGIN / 2, task  # every seed gains


@pytest.mark.slow
def test_masking_an_encoder_hurts_exactly_the_tasks_that_need_it(analysis):
    necessity = analysis["necessity"]
    full = necessity[(necessity.encoders == "color+position+shape") & (necessity.ve_dropout == 0)]
    drop = full.set_index(["task", "encoder"])["necessity"]
    for task, needed in planted().items():
        for encoder in ("color", "shape", "position"):
            if encoder in needed:
                assert drop[(task, encoder)] >= NEEDED, (task, encoder)
            else:
                assert drop[(task, encoder)] <= UNNEEDED, (task, encoder)


@pytest.mark.slow
def test_the_text_attends_to_the_needed_encoders_more_than_to_the_unneeded_one(analysis):
    attention = analysis["attention"]
    text = attention[
        (attention.encoders == "color+position+shape")
        & (attention.ve_dropout == 0)
        & (attention["query"] == "text")
    ]
    per_block = text.groupby(["task", "block"])["per_token"].mean()  # over layers
    for task, needed in planted().items():
        (unneeded,) = {"color", "shape", "position"} - needed
        for encoder in needed:
            assert per_block[(task, encoder)] > per_block[(task, unneeded)], (task, encoder)
