"""Prepare: parse a task's official files into one table per split, with its label space.

Output folder per task: ``{train,dev,test}.parquet``, ``labels.json`` (the answer vocabulary or
label map) and ``report.json`` (sizes, and every dropped sample counted by reason). Malformed
records, duplicate ids and missing or unreadable images stop the run with the first offenders
listed, unless ``on_bad_records="drop"``, which drops them and counts them in the report.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

from ..errors import VecompError
from ..io import atomic_dir, write_json
from ..kinds import get_kind
from ..metrics.vqa import soft_scores
from ..settings import add_setting, existing_path, json_setting
from .parsers import SPLITS, Parsed, Problem, get_parser
from .registry import Task, get_task

SHOW_OFFENDERS = 10


class BadRecordsError(VecompError, ValueError):
    """Malformed records, duplicate ids or unusable images, listed with a way out."""


def _sample_problem(split: str, sample_id: str, reason: str, kind: str) -> Problem:
    return Problem(split, f"sample {sample_id}", reason, kind, sample_id)


def _image_problems(split: str, records: list[dict], pool: pd.DataFrame) -> list[Problem]:
    """Samples whose image(s) are not in the pool or do not decode."""
    errors = {i: None if pd.isna(e) else e for i, e in zip(pool.image_id, pool.error, strict=True)}
    problems = []
    for r in records:
        for image in (r[c] for c in ("image_id", "image_id_2") if c in r):
            if image not in errors:
                reason, kind = f"image {image!r} is not in the image pool", "missing image"
            elif errors[image] is not None:
                reason, kind = (
                    f"image {image!r} is unreadable ({errors[image]})",
                    "unreadable image",
                )
            else:
                continue
            problems.append(_sample_problem(split, r["sample_id"], reason, kind))
    return problems


def _duplicate_problems(split: str, records: list[dict]) -> list[Problem]:
    counts = Counter(r["sample_id"] for r in records)
    return [
        _sample_problem(split, sid, f"id occurs {n} times in {split}", "duplicate id")
        for sid, n in counts.items()
        if n > 1
    ]


def find_problems(parsed: Parsed, pool: pd.DataFrame) -> list[Problem]:
    problems = list(parsed.problems)
    for split, records in parsed.records.items():
        problems += _duplicate_problems(split, records)
        problems += _image_problems(split, records, pool)
    return problems


def drop_problems(parsed: Parsed, problems: list[Problem]) -> dict:
    """Remove every record a problem names; count dropped samples (not problems) by reason.

    A sample with several problems counts once, under its first; both copies of a duplicated
    id are dropped and counted; malformed records were never parsed and count once each.
    """
    reason_of: dict[tuple[str, str], str] = {}
    dropped: Counter = Counter()
    for p in problems:
        if p.sample_id is None:
            dropped[(p.split, p.kind)] += 1
        else:
            reason_of.setdefault((p.split, p.sample_id), p.kind)
    for split in SPLITS:
        kept = []
        for record in parsed.records[split]:
            reason = reason_of.get((split, record["sample_id"]))
            if reason is None:
                kept.append(record)
            else:
                dropped[(split, reason)] += 1
        parsed.records[split] = kept
    return {f"{split}: {kind}": n for (split, kind), n in sorted(dropped.items())}


def raise_for(task: str, problems: list[Problem]) -> None:
    shown = "\n".join(f"  [{p.split}] {p}" for p in problems[:SHOW_OFFENDERS])
    more = f"\n  ... and {len(problems) - SHOW_OFFENDERS} more" if len(problems) > 10 else ""
    raise BadRecordsError(
        f"task {task}: {len(problems)} bad record(s); first offenders:\n{shown}{more}\n"
        "Fix the input files, or set data.on_bad_records: drop to drop these samples and count "
        "them in the task's report.json."
    )


VOCABULARY_SPLITS = ("train", "dev")  # never test: its answers would shape the label space


@dataclass(frozen=True)
class VqaSettings:
    """A VQA task's settings (``tasks.<task>`` in the config, whose schema holds the defaults):
    the answer vocabulary's recipe, and the one documented departure from the official metric,
    recorded in ``labels.json`` so that every later scoring of the task applies it."""

    min_answer_count: int = 9
    vocabulary_splits: tuple[str, ...] = ("train",)
    normalise_unanimous: bool = False

    def metric_options(self) -> dict:
        return {"normalise_unanimous": self.normalise_unanimous}


def vqa_vocabulary(
    tables: dict[str, pd.DataFrame], splits: tuple[str, ...], min_count: int
) -> list[str]:
    """Labels (normalised ``multiple_choice_answer``) seen at least ``min_count`` times over
    ``splits``, most frequent first: the literature's recipe (3,129 classes from train2014 +
    val2014 at 9; here val2014 holds the test half, so only train and dev may count)."""
    leaking = sorted(set(splits) - set(VOCABULARY_SPLITS))
    if leaking or not splits:
        raise VecompError(
            f"the VQA answer vocabulary counts {list(splits)}: use one or both of "
            f"{list(VOCABULARY_SPLITS)} (counting test answers would leak them into the labels)"
        )
    counts = Counter(a for split in splits for a in tables[split]["answer"])
    return [a for a, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])) if n >= min_count]


def add_vqa_targets(table: pd.DataFrame, vocabulary: list[str]) -> pd.DataFrame:
    """Soft-score targets over the vocabulary (answers outside it get no target)."""
    index = {a: i for i, a in enumerate(vocabulary)}
    ids, scores = [], []
    for answers in table["answers"]:
        targets = {index[a]: s for a, s in soft_scores(list(answers)).items() if a in index}
        ids.append(sorted(targets))
        scores.append([targets[i] for i in sorted(targets)])
    return table.assign(target_ids=ids, target_scores=scores)


def label_space(task: Task, tables: dict[str, pd.DataFrame], vqa: VqaSettings) -> list[str]:
    target = get_kind(task.kind).target
    if target == "match":
        return []
    if task.labels is not None:
        return list(task.labels)
    if target == "answers":
        return vqa_vocabulary(tables, vqa.vocabulary_splits, vqa.min_answer_count)
    return sorted(set(tables["train"]["answer"]))


def attach_labels(task: Task, table: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    target = get_kind(task.kind).target
    if target == "answers":
        return add_vqa_targets(table, labels)
    if target == "match":
        return table
    index = {a: i for i, a in enumerate(labels)}
    return table.assign(label=[index.get(a, -1) for a in table["answer"]])


def prepare(
    task_name: str,
    files: dict[str, Path],
    pool: pd.DataFrame,
    on_bad_records: str = "error",
    vqa: VqaSettings = VqaSettings(),
) -> tuple[dict[str, pd.DataFrame], list[str], dict]:
    """Tables per split, the label space and a report; raises BadRecordsError in error mode."""
    task = get_task(task_name)
    parsed = get_parser(task_name)(files)
    problems = find_problems(parsed, pool)
    if problems and on_bad_records == "error":
        raise_for(task_name, problems)
    dropped = drop_problems(parsed, problems)
    tables = {split: pd.DataFrame(parsed.records[split]) for split in SPLITS}
    empty = [split for split, table in tables.items() if table.empty]
    if empty:
        raise BadRecordsError(f"task {task_name}: no usable samples in split(s) {empty}")
    labels = label_space(task, tables, vqa)
    tables = {split: attach_labels(task, t, labels) for split, t in tables.items()}
    report = {
        "task": task_name,
        "samples": {split: len(t) for split, t in tables.items()},
        "images": {split: int(t["image_id"].nunique()) for split, t in tables.items()},
        "labels": len(labels),
        "dropped": dropped,
    }
    target = get_kind(task.kind).target
    if target == "answers":
        covered = tables["train"]["target_ids"].map(len) > 0
        report["train_answer_coverage"] = round(float(covered.mean()), 4)
        report["vocabulary_splits"] = list(vqa.vocabulary_splits)
    elif target == "class":
        report["unknown_label"] = {s: int((t["label"] < 0).sum()) for s, t in tables.items()}
    return tables, labels, report


def file_argument(text: str) -> tuple[str, Path]:
    """Parse one ``KEY=PATH`` command-line value (a registry file key and its local path)."""
    key, sep, path = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--file expects KEY=PATH, got {text!r}")
    return key, Path(path)


def _vqa_settings(options: dict) -> VqaSettings:
    unknown = sorted(set(options) - {f.name for f in fields(VqaSettings)})
    if unknown:
        raise VecompError(
            f"--vqa: unknown setting(s) {unknown}; known: {[f.name for f in fields(VqaSettings)]}"
        )
    if "vocabulary_splits" in options:
        options = {**options, "vocabulary_splits": tuple(options["vocabulary_splits"])}
    return VqaSettings(**options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecomp prepare", description=__doc__)
    parser.add_argument("--task", required=True)
    parser.add_argument(
        "--file",
        type=file_argument,
        action="append",
        default=[],
        metavar="KEY=PATH",
        help="a registry file key and its local (extracted) path",
    )
    parser.add_argument("--pool-index", type=existing_path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    add_setting(parser, "--on-bad-records", "data.on_bad_records")
    parser.add_argument(
        "--vqa",
        type=json_setting("tasks.vqav2"),
        default={},
        metavar="JSON",
        help="a VQA task's settings (tasks.<task> of the config)",
    )
    args = parser.parse_args(argv)
    vqa = _vqa_settings(args.vqa)
    pool = pd.read_parquet(args.pool_index)
    tables, labels, report = prepare(args.task, dict(args.file), pool, args.on_bad_records, vqa)
    label_file = {"task": args.task, "labels": labels}
    if get_kind(get_task(args.task).kind).target == "answers":
        label_file["metric"] = vqa.metric_options()
    with atomic_dir(args.out) as tmp:
        for split, table in tables.items():
            table.to_parquet(tmp / f"{split}.parquet", index=False)
        write_json(tmp / "labels.json", label_file)
        write_json(tmp / "report.json", report)
    print(f"{args.task}: {report['samples']} samples, {len(labels)} labels")
    return 0
