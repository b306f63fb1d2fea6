"""Large official files: the streamed JSON reading of the parsers and bench/prepare_memory.py
(at tiny sizes, so that the benchmark cannot rot)."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path

import pandas as pd
import pytest

from vecomp.data.parsers import FormatError, get_parser, stream_items, stream_members
from vecomp.data.prepare import BadRecordsError, prepare

from .fixture_files import write_json

ROOT = Path(__file__).resolve().parents[1]
BENCH = "prepare_memory.py"


def _bench():
    spec = importlib.util.spec_from_file_location("prepare_memory", ROOT / "bench" / BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["prepare_memory"] = module
    spec.loader.exec_module(module)
    return module


bench = _bench()


# =============================================================================== streaming


def test_streamed_members_and_items_are_what_json_loads_reads(tmp_path: Path) -> None:
    data = {
        "info": {"v": 2.0},
        "questions": [{"id": 1, "q": "é?", "x": 1.5e3}, {"id": -2}],
        "n": None,
        "b": [True, False],
    }
    path = write_json(tmp_path / "f.json", data)
    assert dict(stream_members(path)) == json.loads(path.read_text())
    assert list(stream_items(path, "questions")) == data["questions"]
    assert list(stream_items(path, "absent")) == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [("[1, 2]", "list"), ('  "text"', "str"), ("3", "a number"), ("null", "null"), ("", "nothing")],
)
def test_a_top_level_that_is_not_an_object_is_named(tmp_path: Path, text, kind) -> None:
    path = tmp_path / "f.json"
    path.write_text(text)
    for stream in (lambda: dict(stream_members(path)), lambda: list(stream_items(path, "a"))):
        with pytest.raises(FormatError) as err:
            stream()
        assert str(err.value) == f"{path} must hold a JSON object at the top level, not {kind}"


@pytest.mark.parametrize("tail", ['{"a": 1', '{"a": [1, 2', '{"a": 1} x', '{"a": tru}'])
def test_invalid_json_anywhere_is_a_format_error_naming_the_file(tmp_path: Path, tail) -> None:
    path = tmp_path / "f.json"
    rows = ",".join(json.dumps({"id": i, "text": "x" * 50}) for i in range(20_000))
    path.write_text('{"rows": [' + rows + '], "rest": ' + tail)  # broken after 1 MB of rows
    with pytest.raises(FormatError, match=f"{path} is not valid JSON"):
        list(stream_items(path, "rows"))


def test_gqa_file_whose_top_level_is_a_list_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "gqa" / "questions1.2"
    for name in ("val", "testdev"):
        write_json(folder / f"{name}_balanced_questions.json", {})
    path = write_json(folder / "train_balanced_questions.json", [{"imageId": "1"}])
    with pytest.raises(FormatError) as err:
        get_parser("gqa")({"gqa/questions1.2.zip": folder})
    assert str(err.value) == f"{path} must hold a JSON object at the top level, not list"


def test_gqa_duplicate_qids_are_reported_by_prepare(tmp_path: Path) -> None:
    folder = tmp_path / "gqa" / "questions1.2"
    for name in ("val", "testdev"):
        write_json(
            folder / f"{name}_balanced_questions.json",
            {"9": {"imageId": "a", "question": "Q?", "answer": "x"}},
        )
    (folder / "train_balanced_questions.json").write_text(
        '{"1": {"imageId": "a", "question": "Q?", "answer": "no"}, '
        '"1": {"imageId": "a", "question": "S?", "answer": "yes"}}'
    )  # a duplicate key: json.loads kept the last silently; the stream sees both
    pool = pd.DataFrame(
        {
            "image_id": ["a"],
            "path": ["a.jpg"],
            "width": [8],
            "height": [8],
            "error": pd.Series([None], dtype=object),
        }
    )
    with pytest.raises(BadRecordsError, match="id occurs 2 times in train"):
        prepare("gqa", {"gqa/questions1.2.zip": folder}, pool)


def _vqa_files(tmp_path: Path, annotations: list) -> dict[str, Path]:
    files = {}
    for part, sub in (("Train", "train2014"), ("Val", "val2014")):
        q_dir, a_dir = tmp_path / f"q{part}", tmp_path / f"a{part}"
        question = {"image_id": 1, "question": "Q?", "question_id": 10}
        questions = [question] if part == "Train" else []
        write_json(q_dir / f"v2_OpenEnded_mscoco_{sub}_questions.json", {"questions": questions})
        write_json(
            a_dir / f"v2_mscoco_{sub}_annotations.json",
            {"annotations": annotations if part == "Train" else []},
        )
        files[f"vqav2/v2_Questions_{part}_mscoco.zip"] = q_dir
        files[f"vqav2/v2_Annotations_{part}_mscoco.zip"] = a_dir
    return files


@pytest.mark.parametrize(
    ("answers", "reason"),
    [
        (5, "'answers' is not a list"),
        ([], "'answers' is empty"),
        (["red"] * 10, "an entry of 'answers' has no 'answer'"),
    ],
)
def test_vqav2_malformed_annotation_is_a_problem_of_its_question(tmp_path, answers, reason):
    annotation = {
        "question_id": 10,
        "image_id": 1,
        "question_type": "what",
        "answer_type": "other",
        "answers": answers,
    }
    orphan = {**annotation, "question_id": 11}  # used by no question: never reported
    parsed = get_parser("vqav2")(_vqa_files(tmp_path, [annotation, orphan, ["not an object"]]))
    assert [p.reason for p in parsed.problems] == [reason]
    assert parsed.records["train"] == []


# =============================================================================== the benchmark


@pytest.mark.parametrize("task", bench.TASKS)
def test_bench_files_parse_the_same_streamed_and_whole(tmp_path: Path, monkeypatch, task) -> None:
    """The generated files are in the official formats (every record parses), and the parser
    gives the same records and problems whether it streams them or reads them whole."""
    files, images, records = bench.WRITERS[task](tmp_path, bench.TINY, seed=1)
    streamed = get_parser(task)(files)
    assert sum(len(r) for r in streamed.records.values()) == records
    assert streamed.problems == []
    module = sys.modules[get_parser(task).__module__]
    for name, whole_read in (
        ("stream_members", bench.whole_members),
        ("stream_items", bench.whole_items),
    ):
        if hasattr(module, name):
            monkeypatch.setattr(module, name, whole_read)
    whole = get_parser(task)(files)
    assert whole.records == streamed.records and whole.problems == streamed.problems
    pool = pd.read_parquet(bench.write_pool(tmp_path / "pool.parquet", images))
    tables, _, report = prepare(task, files, pool)
    assert sum(report["samples"].values()) == records and not report["dropped"]


def test_bench_gqa_record_is_shaped_like_the_released_ones() -> None:
    rng = random.Random(0)
    q = bench.gqa_question(rng, "2354786", "02930152", bench._answers(rng, 50))
    assert set(q) == {
        "imageId",
        "question",
        "answer",
        "fullAnswer",
        "isBalanced",
        "types",
        "groups",
        "annotations",
        "semantic",
        "semanticStr",
        "entailed",
        "equivalent",
    }
    assert set(q["types"]) == {"structural", "semantic", "detailed"}
    assert {"operation", "dependencies", "argument"} == set(q["semantic"][0])
    assert 1000 < len(json.dumps(q)) < 2200  # ~1.5 KB: 943k of them make ~1.4 GB


def test_bench_tiny_run_measures_every_stage(tmp_path: Path, capsys) -> None:
    out = tmp_path / "rows.json"
    args = ["--tiny", "--tasks", "gqa", "--compare", "--workdir", str(tmp_path), "--json", str(out)]
    assert bench.main(args) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["stage"], r["read"]) for r in rows] == [
        ("parse", "streamed"),
        ("parse", "whole-file"),
        ("prepare", "streamed"),
        ("prepare", "whole-file"),
    ]
    for row in rows:
        assert row["peak_rss"] > 10e6 and row["seconds"] > 0
        assert sum(row["counts"].values()) == row["records"]
    assert "gqa prepare: streamed peak" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == [out]  # the generated files are deleted
