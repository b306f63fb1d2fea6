"""The analyses on hand-computed tables, the model-based analyses on small models, the figures
and the results table."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pandas as pd
import pytest
import torch

from tests.cli_args import vecomp_args
from tests.fusion_fixtures import toy_task
from tests.test_fusion_model import _batch, _config
from vecomp import cli
from vecomp.analysis import TASK_TABLES, analyse_task, complementarity, stats, tables
from vecomp.analysis.analyse import ANALYSES, analyse, compute
from vecomp.analysis.analyse_task import Ensemble, attention_mass
from vecomp.analysis.collect import standard
from vecomp.analysis.figures import FIGURES
from vecomp.fusion.data import TaskData
from vecomp.fusion.heads import build_task_model
from vecomp.fusion.train import Run, TrainConfig, train_run

# gqa test accuracy per (encoders, kept) and seed: grid 50/52, patch 40/44, and grid+patch
# 55/58, which scores 45/47 with patch masked and 30/34 with grid masked.
SCORES = {
    ("grid", "grid"): (50, 52),
    ("patch", "patch"): (40, 44),
    ("grid+patch", "grid+patch"): (55, 58),
    ("grid+patch", "grid"): (45, 47),
    ("grid+patch", "patch"): (30, 34),
}
PARAMETERS = {"grid": 100, "patch": 90, "grid+patch": 150}
WIDENED = {"grid": (51, 53)}  # grid alone, widened to 150 parameters: no better than narrow


def _runs(extra: dict | None = None) -> pd.DataFrame:
    rows = []
    widened = {(e, e, True): v for e, v in WIDENED.items()}
    plain_runs = {(e, k, False): v for (e, k), v in {**SCORES, **(extra or {})}.items()}
    for (encoders, kept, matched), values in {**plain_runs, **widened}.items():
        for seed, value in enumerate(values):
            parameters = 150 if matched else PARAMETERS[encoders]
            common = {
                "task": "gqa",
                "encoders": encoders,
                "seed": seed,
                "ve_dropout": 0.0,
                "matched": matched,
                "parameters": parameters,
                "selected_epoch": 1,
            }
            rows.append(
                common
                | {"split": "test", "kept": kept, "metric": "accuracy", "value": float(value)}
            )
            if kept == encoders:
                rows.append(
                    common
                    | {
                        "split": "dev",
                        "kept": kept,
                        "metric": "accuracy",
                        "value": float(value) + 1,
                    }
                )
    return pd.DataFrame(rows)


def test_results_table_has_seed_statistics_parameters_and_the_best_subset():
    table = stats.results_table(_runs()).set_index("encoders")
    assert table.loc["grid+patch", "mean"] == 56.5
    assert table.loc["grid+patch", "std"] == pytest.approx(2.1213, abs=1e-4)
    assert table.loc["patch", "parameters"] == 90 and table.loc["grid+patch", "n_encoders"] == 2
    assert table["best"].to_dict() == {"grid": False, "grid+patch": True, "patch": False}


def test_gain_is_paired_by_seed_against_the_best_single_encoder_in_the_subset():
    gain = stats.gains(_runs()).iloc[0]
    assert gain["best_single"] == "grid" and gain["gain"] == 5.5  # (55-50 + 58-52) / 2
    # t-interval of [5, 6]: 5.5 -+ t(0.975, 1 df) 12.7062 * 0.70711 / sqrt(2)
    assert gain["low"] == pytest.approx(5.5 - 6.3531, abs=1e-3)
    assert gain["high"] == pytest.approx(5.5 + 6.3531, abs=1e-3)
    assert gain["seeds"] == 2 and gain["verdict"] == "too few seeds"


def test_a_verdict_needs_three_seeds_and_an_interval_that_excludes_zero():
    # [5, 6, 7]: 6 -+ t(0.975, 2 df) 4.3027 * 1 / sqrt(3) = [3.516, 8.484]
    summary = stats.over_seeds([5.0, 6.0, 7.0])
    assert summary["low"] == pytest.approx(3.5159, abs=1e-3) and summary["seeds"] == 3
    assert summary["verdict"] == "positive"
    assert stats.over_seeds([-5.0, -6.0, -7.0])["verdict"] == "negative"
    assert stats.over_seeds([-1.0, 1.0, 2.0])["verdict"] == "not shown"
    assert stats.over_seeds([5.0, 6.0])["verdict"] == "too few seeds"
    one = stats.over_seeds([5.0])
    assert one["mean"] == 5.0 and pd.isna(one["low"]) and one["verdict"] == "too few seeds"
    assert stats.over_seeds([])["verdict"] == "undefined"


def test_a_subset_worse_than_its_best_single_encoder_has_a_negative_gain():
    worse = {("grid+patch", "grid+patch"): (48, 49)}
    assert stats.gains(_runs(worse)).iloc[0]["gain"] == -2.5


def test_necessity_is_the_drop_when_masked_and_capacity_the_score_alone():
    table = stats.necessity(_runs()).set_index("masked")
    assert table.loc["patch", "necessity"] == 10.5  # (55-45 + 58-47) / 2
    assert table.loc["grid", "necessity"] == 24.5  # (55-30 + 58-34) / 2
    assert table.loc["grid", "capacity"] == 51 and table.loc["patch", "capacity"] == 42
    assert set(table["seeds"]) == {2} and set(table["n_masked"]) == {1}


def test_necessity_of_a_group_shows_what_masking_one_twin_at_a_time_hides():
    # a and its twin a2 carry the same information, b carries none: a+a2+b scores 60, 59 with
    # either twin masked, 30 with both masked
    kept = {"a+a2+b": 60, "a2+b": 59, "a+b": 59, "b": 30, "a+a2": 60, "a": 59, "a2": 59}
    runs = pd.DataFrame(
        [
            {"task": "gqa", "encoders": "a+a2+b", "seed": 0, "ve_dropout": 0.0, "matched": False,
             "split": "test", "kept": k, "metric": "accuracy", "value": float(v),
             "parameters": 1, "selected_epoch": 1}
            for k, v in kept.items()
        ]
    )  # fmt: skip
    table = stats.necessity(runs).set_index("masked")["necessity"]
    assert table["a"] == table["a2"] == 1.0 and table["b"] == 0.0
    assert table["a+a2"] == 30.0 and table["a+b"] == 1.0 and table["a2+b"] == 1.0


# by hand, with the empty subset at the text-only 30, per seed (0, 1):
# retraining: grid 50, 52; patch 40, 44; grid+patch 55, 58
#   phi_grid = (50-30)/2 + (55-40)/2 = 17.5, and (22 + 14)/2 = 18    -> 17.75
#   phi_patch = (40-30)/2 + (55-50)/2 = 7.5, and (14 + 6)/2 = 10     -> 8.75
#   synergy = 55-50-40+30 = -5, and 58-52-44+30 = -8                 -> -6.5
# masking grid+patch: grid kept 45, 47; patch kept 30, 34
#   phi_grid = (45-30)/2 + (55-30)/2 = 20, and (17 + 24)/2 = 20.5    -> 20.25
#   phi_patch = (30-30)/2 + (55-45)/2 = 5, and (4 + 11)/2 = 7.5      -> 6.25
#   synergy = 55-45-30+30 = 10, and 58-47-34+30 = 7                  -> 8.5
TEXT_ONLY = {"gqa": {"text_only": 30.0}}


def test_shapley_values_of_both_games_from_the_sweep():
    table = complementarity.shapley(_runs(), TEXT_ONLY).set_index(["game", "encoder"])["shapley"]
    assert table.to_dict() == pytest.approx(
        {
            ("retraining", "grid"): 17.75,
            ("retraining", "patch"): 8.75,
            ("masking", "grid"): 20.25,
            ("masking", "patch"): 6.25,
        }
    )


def test_synergy_of_both_games_from_the_sweep():
    table = complementarity.synergy(_runs(), TEXT_ONLY).set_index(["game", "pair"])
    assert table["synergy"].to_dict() == pytest.approx(
        {("retraining", "grid+patch"): -6.5, ("masking", "grid+patch"): 8.5}
    )
    assert set(table["seeds"]) == {2} and set(table["verdict"]) == {"too few seeds"}


def test_ranking_agreement_compares_the_two_games_orders_of_the_encoders():
    shapley = pd.DataFrame(
        {
            "task": "gqa",
            "ve_dropout": 0.0,
            "game": ["retraining"] * 3 + ["masking"] * 3,
            "encoder": ["a", "b", "c"] * 2,
            "shapley": [3.0, 2.0, 1.0, 1.0, 3.0, 2.0],
        }
    )
    # pairs (a,b) discordant, (a,c) discordant, (b,c) concordant: tau = (1 - 2) / 3
    assert complementarity.ranking_agreement(shapley, "gqa") == pytest.approx(-1 / 3)
    retraining_only = shapley[shapley["game"] == "retraining"]
    assert pd.isna(complementarity.ranking_agreement(retraining_only, "gqa"))


def test_cur_and_ig_are_the_relative_drop_when_masked_and_its_spread():
    # grid+patch scores 55, 58; 30, 34 with grid masked; 45, 47 with patch masked
    table = complementarity.utilization(_runs()).set_index(["measure", "encoder"])["value"]
    grid = (100 * 25 / 55 + 100 * 24 / 58) / 2  # 45.45% and 41.38%
    patch = (100 * 10 / 55 + 100 * 11 / 58) / 2  # 18.18% and 18.97%
    assert table[("CUR", "grid")] == pytest.approx(grid)
    assert table[("CUR", "patch")] == pytest.approx(patch)
    assert table[("IG", "")] == pytest.approx(grid - patch)  # max - min, per seed, then mean


def test_effective_rank_alone_and_in_the_model_with_every_encoder(tmp_path):
    ranks = pd.read_csv(_task_tables(tmp_path / "gqa") / "effective_rank.csv")
    table = complementarity.effective_ranks(ranks).set_index("encoder")
    assert table.loc["grid", "alone"] == 20.5 and table.loc["grid", "joint"] == 22.5
    assert table.loc["patch", "alone"] == 10.5 and table.loc["patch", "joint"] == 8.5
    assert set(table["seeds"]) == {2}


def test_pair_signals_set_each_cheap_signal_beside_the_synergy_share(tmp_path):
    folder = _task_tables(tmp_path / "gqa")
    similarity = pd.read_csv(folder / "similarity.csv")
    ranks = pd.read_csv(folder / "effective_rank.csv")
    measured = complementarity.synergy(_runs(), TEXT_ONLY)
    ranks = complementarity.effective_ranks(ranks)
    signals = complementarity.pair_signals(_runs(), TEXT_ONLY, similarity, measured, ranks)
    (row,) = signals.itertuples()
    # full model 56.5, text-only 30: gain 26.5; synergy -6.5; weaker encoder patch 42
    assert row.synergy == -6.5 and row.synergy_share == pytest.approx(-6.5 / 26.5)
    assert row.capacity == pytest.approx((42 - 30) / 26.5)
    assert row.effective_rank == (20.5 + 10.5) / 2 and row.cka == 0.4


def test_predictors_are_spearman_correlations_undefined_below_three_pairs():
    signals = pd.DataFrame(
        {
            "task": "gqa",
            "pair": ["a+b", "a+c", "b+c", "a+d"],
            "cka": [0.1, 0.2, 0.3, 0.4],
            "mutual_knn": [0.4, 0.3, 0.2, 0.1],
            "capacity": [0.5, 0.5, 0.5, 0.5],
            "effective_rank": [1.0, 2.0, float("nan"), float("nan")],
            "synergy_share": [1.0, 2.0, 4.0, 3.0],
        }
    )
    table = complementarity.predictors(signals).set_index("signal")
    # ranks of the synergy: 1 2 4 3; rho = 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 6*2/60 = 0.8
    assert table.loc["cka", "rho"] == pytest.approx(0.8)
    assert table.loc["mutual_knn", "rho"] == pytest.approx(-0.8)
    assert pd.isna(table.loc["capacity", "rho"]) and "constant" in table.loc["capacity", "note"]
    assert pd.isna(table.loc["effective_rank", "rho"]) and table.loc["effective_rank", "pairs"] == 2


def test_retrieval_values_the_empty_subset_at_a_random_ranking():
    assert (
        complementarity.empty_value({"coco_retrieval": {"chance": 62.2}}, "coco_retrieval") == 62.2
    )
    assert complementarity.empty_value({"gqa": {"chance": 41, "text_only": 42}}, "gqa") == 42
    assert complementarity.empty_value({}, "gqa") is None


def test_game_measures_say_why_they_are_undefined():
    no_baseline = complementarity.shapley(_runs(), {})
    assert no_baseline["shapley"].isna().all() and set(no_baseline["seeds"]) == {0}
    assert set(no_baseline["note"]) == {
        "no text-only baseline values the empty subset (pass --baselines)"
    }
    runs = _runs()
    lacking = runs[runs["encoders"] != "patch"]
    retraining = complementarity.synergy(lacking, TEXT_ONLY).query("game == 'retraining'")
    assert retraining["synergy"].isna().all()
    assert set(retraining["note"]) == {"the sweep lacks patch"}
    alone = complementarity.synergy(runs[runs["encoders"] == "grid"], TEXT_ONLY)
    assert alone["synergy"].isna().all() and set(alone["note"]) == {"one encoder: no pair"}
    single = complementarity.shapley(runs[runs["encoders"] == "grid"], TEXT_ONLY)
    assert single["shapley"].tolist() == [21.0, 21.0]  # 51 - 30, in both games


def test_masking_is_compared_with_the_model_retrained_on_the_kept_encoders():
    table = stats.masking_vs_retraining(_runs()).set_index("kept")
    assert table.loc["grid", "masked"] == 46 and table.loc["grid", "retrained"] == 51
    assert table.loc["patch", "difference"] == 32 - 42


def test_parameter_control_sets_the_widened_model_beside_the_sweep():
    table = stats.parameter_control(_runs()).set_index(["encoders", "matched"])
    assert (
        table.loc[("grid", True), "parameters"] == 150 and table.loc[("grid", True), "mean"] == 52
    )
    assert table.loc[("grid", False), "parameters"] == 100
    assert stats.results_table(standard(_runs())).set_index("encoders").loc["grid", "mean"] == 51


def test_results_table_renders_as_markdown_and_booktabs_latex():
    results = stats.results_table(_runs())
    baselines = {"gqa": {"majority": 41.1, "text_only": 42.2}}
    md = tables.markdown(results, baselines)
    assert "| **56.5 ± 2.1** |" in md and "| text only | 42.2 |" in md
    tex = tables.latex(results, baselines)
    assert r"\toprule" in tex and r"\textbf{56.5 $\pm$ 2.1}" in tex and tex.count(r"\midrule") == 2


def test_attention_mass_sums_to_one_over_blocks_and_ignores_masked_tokens():
    encoders = ("grid", "patch")
    model = build_task_model("classification", _config(encoders), 3).eval()
    batch = _batch(encoders)
    batch["visual"]["patch"]["mask"][:] = False  # patch tokens are all padding
    table = attention_mass(model, batch)
    totals = table.groupby(["layer", "query"])["mass"].sum()
    assert totals.to_numpy() == pytest.approx(1.0, abs=1e-5)
    assert set(table["block"]) == {"cls", "text", "grid", "patch"}
    assert table[table.block == "patch"]["mass"].abs().max() < 1e-6


def test_an_ensemble_averages_its_members_probabilities_on_their_own_encoders():
    grid = build_task_model("classification", _config(("grid",)), 3).eval()
    patch = build_task_model("classification", _config(("patch",)), 3).eval()
    batch = _batch(("grid", "patch"))
    ensemble = Ensemble([grid, patch], "classification", ("grid", "patch"))
    expected = (grid(batch).softmax(-1) + patch(batch).softmax(-1)) / 2
    assert torch.allclose(ensemble(batch), expected)
    keep = torch.tensor([[True, True]]).expand(3, -1)
    assert torch.allclose(ensemble(batch, keep), expected)


@pytest.mark.parametrize("preload", [True, False])
def test_analyse_task_reads_the_features_as_its_runs_were_trained(tmp_path, monkeypatch, preload):
    """The paper profile trains with preload_features: false (its stores, every image of a task
    from three encoders, exceed memory): the analysis must not load them whole either."""
    paths = toy_task(tmp_path, "gqa", "classification")
    stores = {"sees_a": paths["stores"]["sees_a"]}
    data = TaskData("gqa", paths["prepared"], paths["text"], stores, preload=preload)
    train = TrainConfig(epochs=1, batch_size=64, device="cpu", preload_features=preload)
    model = {"width": 16, "layers": 1, "heads": 2, "ffn": 32}
    train_run(Run("gqa", ("sees_a",), 0, 0.0), data, model, train, tmp_path / "run")
    preloads = []

    class Recording(TaskData):
        def __init__(self, *args, preload=True, **kwargs):
            preloads.append(preload)
            super().__init__(*args, preload=preload, **kwargs)

    monkeypatch.setattr(analyse_task, "TaskData", Recording)
    args = vecomp_args(
        "analyse-task",
        task="gqa",
        prepared=paths["prepared"],
        text=paths["text"],
        store=[f"{name}={paths['stores'][name]}" for name in ("sees_a", "sees_b")],
        runs=tmp_path / "run",
        samples=8,
        device="cpu",
        out=tmp_path / "analysis",
    )
    assert cli.main(args) == 0
    assert preloads == [preload]
    assert (tmp_path / "analysis" / "attention.csv").exists()
    similarity = pd.read_csv(tmp_path / "analysis" / "similarity.csv").iloc[0]
    assert similarity["pair"] == "sees_a+sees_b" and similarity["images"] == 8
    assert 0 <= similarity["cka"] <= 1 and similarity["k"] == 7
    (rank,) = pd.read_csv(tmp_path / "analysis" / "effective_rank.csv").itertuples()
    assert rank.encoder == "sees_a" and rank.tokens == 8 * 4  # 8 images x 4 tokens
    assert 1 <= rank.effective_rank <= 16  # at most the model width


def _task_tables(folder):
    folder.mkdir(parents=True)
    attention = pd.DataFrame(
        [
            {
                "task": "gqa",
                "encoders": "grid+patch",
                "seed": s,
                "ve_dropout": 0.0,
                "layer": layer,
                "query": q,
                "block": b,
                "mass": m,
                "per_token": m / 4,
            }
            for s in (0, 1)
            for layer in (1, 2)
            for q in ("text", "pooled")
            for b, m in (("cls", 0.1), ("text", 0.3), ("grid", 0.4), ("patch", 0.2))
        ]
    )
    attention.to_csv(folder / "attention.csv", index=False)
    ensemble = pd.DataFrame(
        {
            "task": "gqa",
            "encoders": "grid+patch",
            "seed": [0, 1],
            "metric": "accuracy",
            "value": [53.0, 54.0],
        }
    )
    ensemble.to_csv(folder / "ensemble.csv", index=False)
    pd.DataFrame(
        [
            {
                "pair": "grid+patch",
                "cka": 0.4,
                "mutual_knn": 0.3,
                "images": 60,
                "k": 10,
                "task": "gqa",
            }
        ]
    ).to_csv(folder / "similarity.csv", index=False)
    pd.DataFrame(
        [
            {"task": "gqa", "encoders": model, "seed": s, "ve_dropout": 0.0, "encoder": e,
             "effective_rank": rank + s, "tokens": 100}
            for s in (0, 1)
            for model, e, rank in (
                ("grid", "grid", 20.0), ("patch", "patch", 10.0),
                ("grid+patch", "grid", 22.0), ("grid+patch", "patch", 8.0),
            )
        ]
    ).to_csv(folder / "effective_rank.csv", index=False)  # fmt: skip
    return folder


def test_analyse_writes_every_table_the_results_table_and_headline_metrics(tmp_path):
    folder = _task_tables(tmp_path / "gqa")
    inputs = {name: pd.read_csv(folder / f"{name}.csv") for name in TASK_TABLES}
    inputs |= {"runs": _runs(), "baselines": TEXT_ONLY}
    analyse(inputs, tmp_path / "out", tmp_path / "metrics.json")
    for name in ANALYSES:
        assert len(pd.read_csv(tmp_path / "out" / f"{name}.csv")), name
    assert (tmp_path / "out" / "results.tex").exists()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["gqa"] == {
        "best": "grid+patch",
        "score": 56.5,
        "gain_over_best_single": 5.5,
        "gain_low": pytest.approx(-0.8531, abs=1e-3),
        "gain_high": pytest.approx(11.8531, abs=1e-3),
        "gain_seeds": 2,
        "gain_verdict": "too few seeds",
        "shapley_grid": 17.75,
        "shapley_patch": 8.75,
        "top_synergy_pair": "grid+patch",
        "top_synergy": -6.5,
        "information_gap": pytest.approx((100 * 15 / 55 + 100 * 13 / 58) / 2, abs=1e-4),
        "shapley_rank_tau": 1.0,  # both games rank grid above patch
        "dominant_last_layer": "grid",
    }
    ensemble = pd.read_csv(tmp_path / "out" / "ensemble.csv").iloc[0]
    assert ensemble["mean_fusion"] == 56.5 and ensemble["mean_ensemble"] == 53.5


def test_every_figure_is_drawn_and_saved_as_png_and_pdf(tmp_path):
    task = _task_tables(tmp_path / "tasks" / "gqa")
    runs = _runs()
    runs.to_csv(tmp_path / "runs.csv", index=False)
    (tmp_path / "baselines.json").write_text(json.dumps(TEXT_ONLY))
    assert (
        cli.main(
            [
                "analyse",
                "--runs",
                str(tmp_path / "runs.csv"),
                "--tasks",
                str(task),
                "--baselines",
                str(tmp_path / "baselines.json"),
                "--out",
                str(tmp_path / "analysis"),
                "--metrics",
                str(tmp_path / "m.json"),
            ]
        )
        == 0
    )
    dropout = pd.read_csv(tmp_path / "analysis" / "masked.csv")  # add a p > 0 model to draw
    extra = dropout[dropout.encoders == "grid+patch"].assign(ve_dropout=0.3)
    pd.concat([dropout, extra]).to_csv(tmp_path / "analysis" / "masked.csv", index=False)
    assert (
        cli.main(
            [
                "figures",
                "--analysis",
                str(tmp_path / "analysis"),
                "--out",
                str(tmp_path / "figures"),
            ]
        )
        == 0
    )
    for name in FIGURES:
        for suffix in (".png", ".pdf"):
            assert (tmp_path / "figures" / f"{name}{suffix}").stat().st_size > 1000, name
    assert not plt.get_fignums()  # every figure closed after saving


def test_analyse_names_a_task_without_its_tables(tmp_path, capsys):
    _runs().to_csv(tmp_path / "runs.csv", index=False)
    (tmp_path / "vqav2").mkdir()
    code = cli.main(
        [
            "analyse",
            "--runs",
            str(tmp_path / "runs.csv"),
            "--tasks",
            str(tmp_path / "vqav2"),
            "--out",
            str(tmp_path / "a"),
            "--metrics",
            str(tmp_path / "m.json"),
        ]
    )
    assert code != 0 and not (tmp_path / "a").exists()
    assert "vqav2 lacks its tables: run `vecomp analyse-task`" in capsys.readouterr().err


def test_figures_of_a_sweep_without_multi_encoder_or_dropout_runs_say_so():
    singles = _runs()[lambda r: r.encoders != "grid+patch"]
    empty, undefined = set(), set()  # the figures that say there is nothing to draw
    tables = compute(
        {
            "runs": singles,
            "attention": pd.DataFrame(
                columns=[
                    "task",
                    "encoders",
                    "seed",
                    "ve_dropout",
                    "layer",
                    "query",
                    "block",
                    "mass",
                    "per_token",
                ]
            ),
            "ensemble": pd.DataFrame(columns=["task", "encoders", "seed", "metric", "value"]),
            "similarity": pd.DataFrame(columns=["task", "pair", "cka", "mutual_knn"]),
            "effective_rank": pd.DataFrame(
                columns=["task", "encoders", "seed", "ve_dropout", "encoder", "effective_rank"]
            ),
            "baselines": TEXT_ONLY,
        }
    )
    for name, (plot, table) in FIGURES.items():
        frame = tables[table]
        figure = plot(frame)
        notes = [t.get_text() for ax in figure.axes for t in ax.texts]
        plt.close(figure)
        if "no runs of this kind in the sweep" in notes:
            empty.add(name)
        if "undefined: the sweep lacks grid+patch" in notes:
            undefined.add(name)
    # everything that masks, combines or drops encoders needs a multi-encoder model; the
    # results heatmap and the parameter control draw single-encoder runs as ever; the game
    # measures name the subset they lack
    assert undefined == {"shapley_values", "synergy_matrix"}
    assert set(FIGURES) - empty - undefined == {"results_heatmap", "parameter_control"}


def test_every_figure_has_a_report_caption():
    from tests.workflow_helpers import ROOT

    captions = ROOT / "workflow" / "report"
    assert {f"{name}.rst" for name in FIGURES} <= {p.name for p in captions.glob("*.rst")}


def test_dvc_declares_every_figure_and_the_training_curves_as_plots():
    import yaml

    from tests.workflow_helpers import ROOT

    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    declared = {next(iter(p)) if isinstance(p, dict) else p for p in plots}
    assert {f"results/figures/{name}.png" for name in FIGURES} | {
        "results/tables/curves"
    } == declared
