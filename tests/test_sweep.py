"""The sweep table, per-task training settings, and collecting runs into tables."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from vecomp.analysis.collect import collect
from vecomp.errors import VecompError
from vecomp.fusion.sweep import (
    encoder_subsets,
    model_settings,
    run_folders,
    scheduling,
    subset_name,
    sweep_table,
    train_settings,
)

ENCODERS = {"region": {}, "grid": {}, "patch": {}}
TASKS = ["vqav2", "gqa", "nlvr2", "snli_ve", "flickr30k_retrieval", "coco_retrieval"]


def test_every_non_empty_subset_once_singles_first_names_sorted():
    subsets = encoder_subsets(ENCODERS)
    assert len(subsets) == 7 and len(set(subsets)) == 7
    assert subsets[:3] == [("grid",), ("patch",), ("region",)]
    assert subsets[-1] == ("grid", "patch", "region")
    assert subset_name(subsets[-1]) == "grid+patch+region"
    assert encoder_subsets(dict(reversed(ENCODERS.items()))) == subsets


@pytest.mark.parametrize(
    ("sweep", "runs"),
    [
        ({"seeds": [0, 1]}, 6 * 7 * 2),
        ({"seeds": [0, 1], "ve_dropout": [0.3], "ve_dropout_on": "full"}, 6 * 8 * 2),
        ({"seeds": [0], "ve_dropout": [0.1, 0.5], "ve_dropout_on": "multi"}, 6 * (7 + 2 * 4)),
    ],
)
def test_the_sweep_table_has_one_row_per_run(sweep, runs):
    table = sweep_table(TASKS, ENCODERS, sweep)
    assert len(table) == runs
    assert not table.duplicated().any()
    assert set(table[table.vedrop != "0"].subset.str.count(r"\+")) <= {1, 2}  # never a single


def test_run_folders_name_task_subset_seed_and_dropout():
    table = sweep_table(["gqa"], {"grid": {}}, {"seeds": [3], "ve_dropout": [0.25]})
    assert run_folders(table) == ["results/runs/gqa/grid/seed3-vedrop0"]
    table = sweep_table(["gqa"], ENCODERS, {"seeds": [3], "ve_dropout": [0.25]})
    assert "results/runs/gqa/grid+patch+region/seed3-vedrop0.25" in run_folders(table)


def test_a_task_override_changes_only_that_task():
    config = {
        "train": {"epochs": 8, "lr": 0.003, "gpus": 1, "threads": 2, "rerank_top_k": 10},
        "task_train": {"gqa": {"epochs": 3, "threads": 4}},
        "tasks": {"gqa": {}, "vqav2": {"min_answer_count": 9}, "coco_retrieval": {}},
    }
    assert train_settings(config, "gqa") == {"epochs": 3, "lr": 0.003, "threads": 4}
    assert train_settings(config, "vqav2") == {"epochs": 8, "lr": 0.003, "threads": 2}
    assert train_settings(config, "coco_retrieval")["rerank_top_k"] == 10  # retrieval reads it
    assert scheduling(config, "gqa") == {"threads": 4, "gpus": 1}
    assert scheduling(config, "vqav2") == {"threads": 2, "gpus": 1}
    config["task_train"]["vqav2"] = {"loader_workers": 3}  # a job asks for its loader's cores
    assert scheduling(config, "vqav2") == {"threads": 5, "gpus": 1}


def test_a_run_reads_the_pooling_of_its_own_encoders_only():
    model = {"width": 64, "pool_grid": {"grid": 2, "patch": 4}}
    assert model_settings(model, "grid+region")["pool_grid"] == {"grid": 2}
    assert model_settings(model, "region")["pool_grid"] == {}


def _fake_run(folder, task, encoders, seed, value):
    folder.mkdir(parents=True)
    metrics = {
        "task": task,
        "encoders": encoders,
        "seed": seed,
        "ve_dropout": 0.0,
        "dev": {"accuracy": value + 1},
        "test": {"accuracy": value},
        "selected_epoch": 2,
        "parameters": 10,
        "history": [{"epoch": e, "loss": 1.0 / e, "dev": value + e} for e in (1, 2)],
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    row = {k: metrics[k] for k in ("task", "encoders", "seed", "ve_dropout")}
    masked = row | {"kept": encoders, "masked": "", "metric": "accuracy", "value": value}
    pd.DataFrame([masked]).to_csv(folder / "masked.csv", index=False)
    return folder


def test_collect_writes_tidy_tables_and_seed_statistics(tmp_path):
    folders = [
        _fake_run(tmp_path / "a", "gqa", "grid", 0, 50.0),
        _fake_run(tmp_path / "b", "gqa", "grid", 1, 60.0),
        _fake_run(tmp_path / "c", "gqa", "patch", 0, 40.0),
    ]
    collect(folders, tmp_path / "tables", tmp_path / "summary.json")
    runs = pd.read_csv(tmp_path / "tables" / "runs.csv")
    assert len(runs) == 6 and set(runs.split) == {"dev", "test"}
    assert (runs.kept == runs.encoders).all()  # dev rows keep everything; so does this test row
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["gqa"]["grid"]["accuracy"] == {"mean": 55.0, "std": 7.0711, "seeds": 2}
    assert summary["gqa"]["patch"]["accuracy"]["std"] == 0.0
    assert not (tmp_path / "tables" / "masked.csv").exists()  # one table holds everything
    curve = pd.read_csv(tmp_path / "tables" / "curves" / "gqa.csv")  # first seed's curve
    assert curve.to_dict("list") == {"epoch": [1, 2], "loss": [1.0, 0.5], "dev": [51.0, 52.0]}


def test_collect_keeps_every_masked_evaluation_in_the_one_table(tmp_path):
    folder = _fake_run(tmp_path / "a", "gqa", "grid+patch", 0, 50.0)
    masked = pd.DataFrame(
        {
            "task": "gqa",
            "encoders": "grid+patch",
            "seed": 0,
            "ve_dropout": 0.0,
            "kept": ["grid+patch", "grid", "patch"],
            "masked": ["", "patch", "grid"],
            "metric": "accuracy",
            "value": [50.0, 45.0, 30.0],
        }
    )
    masked.to_csv(folder / "masked.csv", index=False)
    collect([folder], tmp_path / "tables", tmp_path / "summary.json")
    runs = pd.read_csv(tmp_path / "tables" / "runs.csv")
    test = runs[runs.split == "test"].set_index("kept")["value"]
    assert test.to_dict() == {"grid": 45.0, "grid+patch": 50.0, "patch": 30.0}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["gqa"]["grid+patch"]["accuracy"]["mean"] == 50.0  # the unmasked score only


def test_collect_names_an_unfinished_run(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(VecompError, match="has no metrics.json: the run did not finish"):
        collect([tmp_path / "run"], tmp_path / "tables", tmp_path / "summary.json")
    assert not (tmp_path / "tables").exists()
