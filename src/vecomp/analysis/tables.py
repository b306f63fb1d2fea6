"""The results table as Markdown and LaTeX (booktabs): encoder subsets x tasks, mean ± std over
seeds, the best subset per task in bold, and the trivial baselines below a rule."""

from __future__ import annotations

import pandas as pd

from ..data.registry import get_task
from ..kinds import get_kind

BASELINES = {"majority": "majority answer", "text_only": "text only"}


def _cell(mean: float, std: float, best: bool, bold) -> str:
    text = f"{mean:.1f} ± {std:.1f}"
    return bold(text) if best else text


def grid(results: pd.DataFrame, baselines: dict, bold) -> tuple[list[str], list[list[str]], int]:
    """Header, rows (subsets, then baselines) and the number of subset rows."""
    tasks = list(dict.fromkeys(results["task"]))
    order = results.sort_values(["n_encoders", "encoders"])["encoders"].unique()
    cells = results.set_index(["encoders", "task"])
    header = ["encoders", *[f"{get_task(t).name} ({metric_label(t)})" for t in tasks]]
    rows = []
    for subset in order:
        row = [subset]
        for task in tasks:
            if (subset, task) in cells.index:
                c = cells.loc[(subset, task)]
                row.append(_cell(c["mean"], c["std"], bool(c["best"]), bold))
            else:
                row.append("")
        rows.append(row)
    for key, label in BASELINES.items():
        rows.append([label, *[_baseline(baselines, t, key) for t in tasks]])
    return header, rows, len(order)


def metric_label(task: str) -> str:
    return get_kind(get_task(task).kind).headline_label


def _baseline(baselines: dict, task: str, key: str) -> str:
    value = baselines.get(task, {}).get(key)
    return "–" if value is None else f"{value:.1f}"


def markdown(results: pd.DataFrame, baselines: dict) -> str:
    header, rows, _ = grid(results, baselines, lambda text: f"**{text}**")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def latex(results: pd.DataFrame, baselines: dict) -> str:
    header, rows, n_subsets = grid(results, baselines, lambda text: rf"\textbf{{{text}}}")

    def line(cells):
        return " & ".join(c.replace("±", r"$\pm$") for c in cells) + r" \\"

    body = [line(row) for row in rows]
    body.insert(n_subsets, r"\midrule")
    return "\n".join(
        [
            r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
            r"\toprule",
            line(header),
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            "",
        ]
    )
