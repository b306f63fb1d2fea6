"""The study's figures: each a function from the analysis tables to a matplotlib Figure.

Plot functions only draw; ``vecomp figures`` (the Snakemake rule) reads the tables written by
``vecomp analyse`` and saves every figure in ``FIGURES`` as PNG and PDF. One style for all: the
Okabe-Ito colour-blind-safe palette, one colour per encoder throughout, sizes that read at the
width of a paper's column (small multiples span the page), and axes labelled with their units.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import VecompError
from ..io import atomic_path
from ..settings import existing_path
from .complementarity import SIGNALS
from .stats import headline_metric

if TYPE_CHECKING:
    from matplotlib.figure import Figure

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"]
BLOCK_COLOURS = {"text": "#000000", "cls": "#999999"}
STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 150,
    "savefig.bbox": "tight",
}
COLUMN, PAGE = 3.4, 7.0  # inches


def pyplot():
    """matplotlib's pyplot on the Agg backend, imported where a figure is drawn: Snakemake reads
    ``FIGURES`` at every start (on a cluster, in every job) and need not import it (0.2-0.4 s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def unit(task: str) -> str:
    return {"rsum": "rSum", "accuracy": "acc., %"}[headline_metric(task)]


def encoder_colours(names) -> dict[str, str]:
    """A fixed colour per encoder (alphabetical), the same in every figure."""
    return {name: OKABE_ITO[i % len(OKABE_ITO)] for i, name in enumerate(sorted(set(names)))}


def _facets(tasks, height: float = 2.0):
    """One panel per task, three to a row (or a note when there is nothing to draw)."""
    tasks = list(tasks)
    if not tasks:  # e.g. no multi-encoder model, or no VE-dropout run in the sweep
        figure, ax = pyplot().subplots(figsize=(COLUMN, 0.8), squeeze=False)
        ax[0, 0].axis("off")
        ax[0, 0].text(0.5, 0.5, "no runs of this kind in the sweep", ha="center", va="center")
        return figure, ax
    cols = min(3, len(tasks))
    rows = int(np.ceil(len(tasks) / cols))
    figure, axes = pyplot().subplots(rows, cols, figsize=(PAGE, height * rows), squeeze=False)
    for ax in axes.flat[len(tasks) :]:
        ax.set_visible(False)
    return figure, axes


def _largest(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of each task's model with the most encoders (VE-dropout 0)."""
    frame = frame[frame["ve_dropout"] == 0]
    size = frame["encoders"].str.count(r"\+")
    return frame[size == size.groupby(frame["task"]).transform("max")]


# ------------------------------------------------------------------ the figures
def results_heatmap(results: pd.DataFrame) -> Figure:
    """Task x encoder subset: each cell's mean test score, coloured relative to the task's
    worst (0) and best (1) subset, since tasks use different metrics."""
    table = results.pivot(index="encoders", columns="task", values="mean")
    order = results.sort_values(["n_encoders", "encoders"])["encoders"].unique()
    table = table.loc[order]
    low, high = table.min(), table.max()
    relative = (table - low) / (high - low).replace(0, 1)
    figure, ax = pyplot().subplots(figsize=(PAGE, 0.35 * len(table) + 1.2))
    image = ax.imshow(relative.to_numpy(), cmap="cividis", aspect="auto", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(table.to_numpy()):
        colour = "black" if relative.iloc[i, j] > 0.5 else "white"
        ax.text(j, i, f"{value:.1f}", ha="center", va="center", color=colour, fontsize=7)
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=20, ha="right")
    ax.set_yticks(range(table.shape[0]), table.index)
    ax.set_xlabel("task (VQA accuracy, accuracy or rSum)")
    ax.set_ylabel("encoder subset")
    figure.colorbar(image, ax=ax, label="score relative to the task's worst and best subset")
    return figure


def gain_over_best_single(gains: pd.DataFrame) -> Figure:
    """Per task, each multi-encoder subset's gain over the best single encoder in it."""
    figure, axes = _facets(gains["task"].unique())
    for ax, (task, rows) in zip(axes.flat, gains.groupby("task"), strict=False):
        y = np.arange(len(rows))
        error = [rows["gain"] - rows["low"], rows["high"] - rows["gain"]]
        colours = ["#009E73" if g > 0 else "#D55E00" for g in rows["gain"]]
        ax.barh(y, rows["gain"], xerr=error, color=colours, capsize=2)
        ax.set_yticks(
            y,
            [f"{s}\n(vs {b})" for s, b in zip(rows["encoders"], rows["best_single"], strict=True)],
        )
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(task)
        ax.set_xlabel(f"gain ({unit(task)} points)")
    figure.suptitle(
        "Multi-encoder subset minus its best single encoder (mean over seeds, 95% t-interval; "
        f"{_seed_counts(gains)})"
    )
    figure.tight_layout()
    return figure


def necessity_vs_capacity(necessity: pd.DataFrame) -> Figure:
    """Per task, for the model with every encoder: each encoder's necessity (the drop when it is
    masked) against its capacity (its score alone)."""
    rows = _largest(necessity)
    rows = rows[rows["n_masked"] == 1]
    colours = encoder_colours(rows["masked"])
    figure, axes = _facets(rows["task"].unique())
    for ax, (task, task_rows) in zip(axes.flat, rows.groupby("task"), strict=False):
        for row in task_rows.itertuples(index=False):
            ax.errorbar(
                row.capacity,
                row.necessity,
                yerr=row.necessity_std,
                fmt="o",
                color=colours[row.masked],
                label=row.masked,
                capsize=2,
            )
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.set_title(task)
        ax.set_xlabel(f"capacity: score alone ({unit(task)})")
        ax.set_ylabel("necessity: drop when masked")
    _legend(figure, axes)
    figure.tight_layout()
    return figure


def shapley_values(shapley: pd.DataFrame) -> Figure:
    """Per task, each encoder's Shapley value in the retraining game (solid) and in the masking
    game of the model with every encoder (hatched), with 95% t-intervals over seeds."""
    rows = shapley[shapley["ve_dropout"] == 0]
    colours = encoder_colours(rows["encoder"])
    figure, axes = _facets(rows["task"].unique())
    for ax, (task, task_rows) in zip(axes.flat, rows.groupby("task"), strict=False):
        encoders = sorted(task_rows["encoder"].unique())
        for offset, (game, hatch) in zip((-0.2, 0.2), GAME_HATCHES.items(), strict=True):
            game_rows = task_rows[task_rows["game"] == game].set_index("encoder").reindex(encoders)
            error = _error(game_rows["shapley"], game_rows["low"], game_rows["high"])
            ax.bar(
                np.arange(len(encoders)) + offset,
                game_rows["shapley"].fillna(0),
                width=0.4,
                yerr=error,
                color=[colours[e] for e in encoders],
                hatch=hatch,
                edgecolor="black",
                linewidth=0.4,
                capsize=2,
                label=game,
            )
            _note_undefined(ax, game_rows["note"])
        ax.set_xticks(range(len(encoders)), encoders)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_title(task)
        ax.set_ylabel(f"Shapley value ({unit(task)} points)")
    _legend(figure, axes, title=f"Shapley value by game (95% t-intervals; {_seed_counts(rows)})")
    figure.tight_layout()
    return figure


def synergy_matrix(synergy: pd.DataFrame) -> Figure:
    """Per task, each pair's Shapley interaction index: above the diagonal from retraining,
    below it from masking the model with every encoder (positive: complementary)."""
    rows = synergy[
        (synergy["ve_dropout"] == 0) & synergy["pair"].astype(str).str.contains("+", regex=False)
    ]
    figure, axes = _facets(rows["task"].unique(), height=2.4)
    for ax, (task, task_rows) in zip(axes.flat, rows.groupby("task"), strict=False):
        encoders = sorted({e for pair in task_rows["pair"] for e in pair.split("+")})
        index = {e: k for k, e in enumerate(encoders)}
        matrix = np.full((len(encoders), len(encoders)), np.nan)
        for row in task_rows.itertuples(index=False):
            i, j = sorted(index[e] for e in row.pair.split("+"))
            matrix[(i, j) if row.game == "retraining" else (j, i)] = row.synergy
        limit = np.nanmax(np.abs(matrix)) if np.isfinite(matrix).any() else 1.0
        image = ax.imshow(matrix, cmap="PuOr_r", vmin=-limit, vmax=limit)
        for (i, j), value in np.ndenumerate(matrix):
            if np.isfinite(value):
                colour = "white" if abs(value) > 0.6 * limit else "black"
                text = f"{round(value, 1) + 0.0:+.1f}"  # + 0.0: no "-0.0"
                ax.text(j, i, text, ha="center", va="center", color=colour)
        _note_undefined(ax, task_rows.loc[task_rows["synergy"].isna(), "note"])
        ax.set_xticks(range(len(encoders)), encoders)
        ax.set_yticks(range(len(encoders)), encoders)
        ax.set_title(task)
        figure.colorbar(image, ax=ax, label=f"{unit(task)} points", shrink=0.8)
    figure.suptitle(
        "Pairwise synergy, Shapley interaction index (above the diagonal: retraining; below: "
        f"masking; {_seed_counts(rows)})"
    )
    figure.tight_layout()
    return figure


def similarity_vs_synergy(signals: pd.DataFrame) -> Figure:
    """One panel per cheap signal (``complementarity.SIGNALS``): each pair of encoders on each
    task, the signal against the pair's synergy as a share of the full model's gain over the
    empty subset."""
    names = list(SIGNALS)
    if signals.empty:  # a sweep of one encoder: no pair
        return _facets([])[0]
    figure, axes = pyplot().subplots(1, len(names), figsize=(PAGE, 2.0), squeeze=False, sharey=True)
    colours = dict(zip(sorted(signals["task"].unique()), OKABE_ITO * 2, strict=False))
    for ax, name in zip(axes.flat, names, strict=True):
        for task, rows in signals.groupby("task"):
            ax.scatter(rows[name], rows["synergy_share"], color=colours[task], label=task, s=14)
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.set_xlabel(name.replace("_", " "))
    axes[0, 0].set_ylabel("synergy / full model's gain")
    _legend(
        figure,
        axes,
        title="Can a cheap signal pick the complementary pair? (Spearman: predictors.csv)",
    )
    figure.tight_layout()
    return figure


GAME_HATCHES = {"retraining": "", "masking": "////"}


def _error(mean: pd.Series, low: pd.Series, high: pd.Series) -> np.ndarray:
    """Asymmetric error bars; none where the interval is undefined (one seed)."""
    return np.nan_to_num(np.vstack([mean - low, high - mean]), nan=0.0)


def _note_undefined(ax, notes: pd.Series) -> None:
    note = next((n for n in notes.dropna() if n), "")
    if note:
        ax.text(0.5, 0.5, f"undefined: {note}", transform=ax.transAxes, ha="center", fontsize=6)


def _seed_counts(rows: pd.DataFrame) -> str:
    counts = sorted(set(rows["seeds"].astype(int)))
    return "seeds: " + ", ".join(map(str, counts)) if counts else "no seeds"


def masking_vs_retraining(table: pd.DataFrame) -> Figure:
    """Per task: a model evaluated with encoders masked against the model retrained on the kept
    encoders; points under the diagonal lose more by masking than by retraining."""
    rows = table[table["ve_dropout"] == 0]
    colours = encoder_colours(rows["kept"])
    figure, axes = _facets(rows["task"].unique())
    for ax, (task, task_rows) in zip(axes.flat, rows.groupby("task"), strict=False):
        for row in task_rows.itertuples(index=False):
            ax.scatter(row.retrained, row.masked, color=colours[row.kept], label=row.kept, s=14)
        limits = [
            task_rows[["masked", "retrained"]].min().min(),
            task_rows[["masked", "retrained"]].max().max(),
        ]
        ax.plot(limits, limits, color="grey", linewidth=0.6, linestyle="--")
        ax.set_title(task)
        ax.set_xlabel(f"retrained on kept ({unit(task)})")
        ax.set_ylabel("masked at inference")
    _legend(figure, axes, title="kept encoders")
    figure.tight_layout()
    return figure


def attention_per_layer(attention: pd.DataFrame) -> Figure:
    """Per task, for the model with every encoder: the attention mass that the text queries put
    on each block, per layer; raw (top) and per token (bottom)."""
    rows = _largest(attention)
    rows = rows[rows["query"] == "text"]
    colours = encoder_colours(b for b in rows["block"] if b not in BLOCK_COLOURS) | BLOCK_COLOURS
    tasks = rows["task"].unique()
    if not len(tasks):
        return _facets(tasks)[0]
    figure, axes = pyplot().subplots(2, len(tasks), figsize=(PAGE, 3.6), squeeze=False, sharex=True)
    for j, (task, task_rows) in enumerate(rows.groupby("task")):
        for i, value in enumerate(("mass", "per_token")):
            ax = axes[i, j]
            for block, block_rows in task_rows.groupby("block"):
                ax.plot(
                    block_rows["layer"],
                    block_rows[value],
                    marker="o",
                    markersize=3,
                    color=colours[block],
                    label=block,
                )
            ax.set_title(task if i == 0 else "")
            ax.set_xticks(sorted(task_rows["layer"].unique()))
        axes[1, j].set_xlabel("layer")
    axes[0, 0].set_ylabel("attention mass (share)")
    axes[1, 0].set_ylabel("mass per token")
    _legend(figure, axes, title="block")
    figure.tight_layout()
    return figure


def ensemble_vs_fusion(table: pd.DataFrame) -> Figure:
    """Per task and multi-encoder subset: the fusion model against the average of its single-
    encoder models (mean ± std over seeds)."""
    figure, axes = _facets(table["task"].unique())
    for ax, (task, rows) in zip(axes.flat, table.groupby("task"), strict=False):
        y = np.arange(len(rows))
        ax.barh(
            y - 0.2,
            rows["mean_fusion"],
            0.4,
            xerr=rows["std_fusion"],
            label="fusion",
            color=OKABE_ITO[0],
            capsize=2,
        )
        ax.barh(
            y + 0.2,
            rows["mean_ensemble"],
            0.4,
            xerr=rows["std_ensemble"],
            label="ensemble of single-encoder models",
            color=OKABE_ITO[1],
            capsize=2,
        )
        ax.set_yticks(y, rows["encoders"])
        ax.set_title(task)
        ax.set_xlabel(f"test score ({unit(task)})")
        low = min(rows["mean_fusion"].min(), rows["mean_ensemble"].min())
        ax.set_xlim(left=low * 0.8)
    _legend(figure, axes)
    figure.tight_layout()
    return figure


def training_dropout(masked: pd.DataFrame) -> Figure:
    """Per task: models trained with VE-dropout p > 0 against p = 0 (same subsets), evaluated with
    every subset of their encoders kept."""
    trained = masked[masked["ve_dropout"] > 0][["task", "encoders"]].drop_duplicates()
    rows = masked.merge(trained, on=["task", "encoders"])
    probabilities = sorted(rows["ve_dropout"].unique())
    colours = dict(zip(probabilities, OKABE_ITO, strict=False))
    figure, axes = _facets(rows["task"].unique())
    for ax, (task, task_rows) in zip(axes.flat, rows.groupby("task"), strict=False):
        task_rows = task_rows[task_rows["encoders"] == task_rows["encoders"].iloc[0]]
        kept = sorted(task_rows["kept"].unique(), key=lambda k: (-k.count("+"), k))
        width = 0.8 / len(probabilities)
        for k, p in enumerate(probabilities):
            values = task_rows[task_rows["ve_dropout"] == p].set_index("kept").loc[kept]
            ax.barh(
                np.arange(len(kept)) + k * width,
                values["mean"],
                width,
                xerr=values["std"],
                color=colours[p],
                label=f"trained with p = {p:g}",
                capsize=2,
            )
        ax.set_yticks(np.arange(len(kept)) + width * (len(probabilities) - 1) / 2, kept)
        ax.set_title(task)
        ax.set_xlabel(f"kept at test ({unit(task)})")
    _legend(figure, axes)
    figure.tight_layout()
    return figure


def parameter_control(table: pd.DataFrame) -> Figure:
    """Per task with a widened single-encoder model: every model's score against its parameter
    count; stars are single encoders widened to the count of the model with every encoder."""
    figure, axes = _facets(table["task"].unique())
    for ax, (task, rows) in zip(axes.flat, table.groupby("task"), strict=False):
        for row in rows.itertuples(index=False):
            style = (
                {"marker": "*", "markersize": 9, "color": OKABE_ITO[5]}
                if row.matched
                else {"marker": "o", "markersize": 4, "color": OKABE_ITO[0]}
            )
            ax.errorbar(
                row.parameters / 1e3,
                row.mean,
                yerr=row.std,
                capsize=2,
                label="widened single encoder" if row.matched else "sweep model",
                **style,
            )
            label = f"{row.encoders} (wide)" if row.matched else row.encoders
            ax.annotate(
                label,
                (row.parameters / 1e3, row.mean),
                fontsize=6,
                xytext=(3, 2),
                textcoords="offset points",
            )
        ax.set_title(task)
        ax.set_xlabel("parameters (thousands)")
        ax.set_ylabel(f"test score ({unit(task)})")
    _legend(figure, axes)
    figure.tight_layout()
    return figure


def _legend(figure, axes, title=None) -> None:
    handles = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if not handles:
        return
    figure.legend(
        handles.values(),
        handles.keys(),
        loc="lower center",
        ncol=min(4, len(handles)),
        title=title,
        bbox_to_anchor=(0.5, 1.0),
        frameon=False,
    )


# name -> (plot function, the analysis table it draws)
FIGURES = {
    "results_heatmap": (results_heatmap, "results"),
    "gain_over_best_single": (gain_over_best_single, "gains"),
    "necessity_vs_capacity": (necessity_vs_capacity, "necessity"),
    "shapley_values": (shapley_values, "shapley"),
    "synergy_matrix": (synergy_matrix, "synergy"),
    "similarity_vs_synergy": (similarity_vs_synergy, "pair_signals"),
    "masking_vs_retraining": (masking_vs_retraining, "masking_vs_retraining"),
    "attention_per_layer": (attention_per_layer, "attention"),
    "ensemble_vs_fusion": (ensemble_vs_fusion, "ensemble"),
    "training_dropout": (training_dropout, "masked"),
    "parameter_control": (parameter_control, "parameters"),
}


def save(figure: Figure, stem: Path) -> None:
    """PNG and PDF, each written atomically; PDFs without a creation date (reproducible)."""
    for suffix, extra in ((".png", {}), (".pdf", {"metadata": {"CreationDate": None}})):
        with atomic_path(stem.with_suffix(suffix)) as tmp:
            figure.savefig(tmp, format=suffix[1:], **extra)
    pyplot().close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecomp figures", description=__doc__)
    parser.add_argument(
        "--analysis", type=existing_path, required=True, help="`vecomp analyse` folder"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the figures")
    parser.add_argument("--only", nargs="*", choices=sorted(FIGURES), help="default: all")
    args = parser.parse_args(argv)
    names = args.only or list(FIGURES)
    missing = sorted({f"{FIGURES[name][1]}.csv" for name in names} - _files(args.analysis))
    if missing:
        raise VecompError(
            f"{args.analysis} lacks the analysis tables {', '.join(missing)}: pass the folder "
            "`vecomp analyse --out` wrote, or run `snakemake analysis` first"
        )
    pyplot().rcParams.update(STYLE)
    for name in names:
        plot, table = FIGURES[name]
        frame = pd.read_csv(args.analysis / f"{table}.csv", dtype={"kept": str})
        save(plot(frame), args.out / name)
    print(f"wrote {len(names)} figures to {args.out}")
    return 0


def _files(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir()} if folder.is_dir() else set()
