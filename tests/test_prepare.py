"""Tests for vecomp.data.prepare (tables, label spaces, bad records) and vecomp.data.index_pool.

Inputs are hand-written official-format files in ``tmp_path`` and a hand-made pool index; every
expected vocabulary, target and count is worked out by hand in the comments.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from vecomp.data import prepare as prep
from vecomp.data.index_pool import DuplicateImageError, index_pool
from vecomp.data.prepare import BadRecordsError, VqaSettings, prepare
from vecomp.errors import VecompError

from .fixture_files import write_json, write_lines

TRUNCATED = "OSError: image file is truncated"


def make_pool(images: dict[str, str | None]) -> pd.DataFrame:
    """A pool index as index_pool describes it: error None for a good image, else the error.

    The error column is kept as object dtype so that None stays None; the tests on index_pool
    and on parquet pool indexes cover the NaN that pandas' string inference produces instead.
    """
    ids = list(images)
    return pd.DataFrame(
        {
            "image_id": ids,
            "path": [f"/pool/{i}.jpg" for i in ids],
            "width": [0 if images[i] else 64 for i in ids],
            "height": [0 if images[i] else 48 for i in ids],
            "error": pd.Series([images[i] for i in ids], dtype=object),
        }
    )


# =============================================================================== VQAv2

# (question id, image id, ten human answers, the official multiple_choice_answer). Train
# images: 9; val2014: 2 -> dev, 3 -> test. Labels are the normalised official answers.
VQA_TRAIN = [
    (1, 9, ["yes"] * 10, "yes"),
    (2, 9, ["Yes"] * 6 + ["no"] * 4, "yes"),
    (3, 9, ["yes!"] * 5 + ["no"] * 3 + ["2"] * 2, "yes"),
    (4, 9, ["yes"] * 10, "yes"),
    (5, 9, ["no"] * 10, "no"),
    (6, 9, ["no"] * 10, "no"),
    (7, 9, ["no"] * 10, "no"),
    (8, 9, ["No."] * 8 + ["yes"] * 2, "no"),
    (9, 9, ["two"] * 10, "two"),  # label "2"
    (10, 9, ["2"] * 6 + ["3"] * 4, "2"),
    (11, 9, ["2"] * 10, "2"),
    (12, 9, ["red"] * 10, "red"),
    (13, 9, ["the red"] * 5 + ["blue"] * 5, "blue"),  # a 5-5 tie the official answer breaks
    (14, 9, ["blue"] * 10, "blue"),
    (15, 9, ["blue"] * 10, "blue"),
    (16, 9, ["cat"] * 9 + ["dog"], "cat"),
]
# label counts over train: yes 4, no 4, 2 3, blue 3, red 1, cat 1
VQA_VAL = [
    (100, 2, ["3"] * 10, "3"),  # dev
    (200, 3, ["2"] * 3 + ["no"] * 7, "no"),  # test
]


def _vqa_json(items, subtype):
    questions = [
        {"image_id": im, "question": f"Question {q}?", "question_id": q} for q, im, _, _ in items
    ]
    annotations = [
        {
            "question_id": q,
            "image_id": im,
            "question_type": "what",
            "answer_type": "other",
            "multiple_choice_answer": official,
            "answers": [
                {"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
                for i, a in enumerate(answers)
            ],
        }
        for q, im, answers, official in items
    ]
    return (
        {"data_subtype": subtype, "questions": questions},
        {"data_subtype": subtype, "annotations": annotations},
    )


def vqa_files(tmp_path: Path, train=VQA_TRAIN, val=VQA_VAL) -> dict[str, Path]:
    files = {}
    for part, sub, items in (("Train", "train2014", train), ("Val", "val2014", val)):
        questions, annotations = _vqa_json(items, sub)
        qkey, akey = (
            f"vqav2/v2_Questions_{part}_mscoco.zip",
            f"vqav2/v2_Annotations_{part}_mscoco.zip",
        )
        files[qkey] = tmp_path / qkey.removesuffix(".zip")
        files[akey] = tmp_path / akey.removesuffix(".zip")
        write_json(files[qkey] / f"v2_OpenEnded_mscoco_{sub}_questions.json", questions)
        write_json(files[akey] / f"v2_mscoco_{sub}_annotations.json", annotations)
    return files


VQA_POOL = {"9": None, "2": None, "3": None}


@pytest.mark.parametrize(
    ("min_count", "vocabulary"),
    [
        (1, ["no", "yes", "2", "blue", "cat", "red"]),  # 4, 4, 3, 3, 1, 1: ties alphabetical
        (2, ["no", "yes", "2", "blue"]),
        (4, ["no", "yes"]),
        (5, []),
    ],
)
def test_vqa_vocabulary_by_min_answer_count(tmp_path, min_count, vocabulary) -> None:
    _, labels, report = prepare(
        "vqav2",
        vqa_files(tmp_path),
        make_pool(VQA_POOL),
        vqa=VqaSettings(min_answer_count=min_count),
    )
    assert labels == vocabulary
    assert report["labels"] == len(vocabulary)


def test_vqa_vocabulary_counts_the_configured_splits_never_test(tmp_path) -> None:
    files, pool = vqa_files(tmp_path), make_pool(VQA_POOL)
    with_dev = VqaSettings(min_answer_count=1, vocabulary_splits=("train", "dev"))
    _, labels, report = prepare("vqav2", files, pool, vqa=with_dev)
    assert labels == ["no", "yes", "2", "blue", "3", "cat", "red"]  # dev's "3" counts once
    assert report["vocabulary_splits"] == ["train", "dev"]
    for leaking in [("train", "test"), ("test",), ()]:
        with pytest.raises(VecompError, match="leak"):
            prepare("vqav2", files, pool, vqa=VqaSettings(vocabulary_splits=leaking))


def test_vqa_soft_score_targets(tmp_path) -> None:
    tables, labels, report = prepare(
        "vqav2", vqa_files(tmp_path), make_pool(VQA_POOL), vqa=VqaSettings(min_answer_count=2)
    )
    assert labels == ["no", "yes", "2", "blue"]  # ids 0..3
    train = tables["train"].set_index("sample_id")
    targets = {sid: (list(r.target_ids), list(r.target_scores)) for sid, r in train.iterrows()}
    assert targets["1"] == ([1], [1.0])  # yes x10
    assert targets["2"] == ([0, 1], [1.0, 1.0])  # yes x6, no x4: both >= 4
    assert targets["3"] == ([0, 1, 2], [0.9, 1.0, 0.6])  # no x3, yes x5, 2 x2
    assert targets["8"] == ([0, 1], [1.0, 0.6])  # no x8, yes x2
    assert targets["10"] == ([2], [1.0])  # "3" x4 is outside the vocabulary
    assert targets["12"] == ([], [])  # red is outside it
    assert targets["13"] == ([3], [1.0])  # all ten answers count: "the red" -> red x5, blue x5
    assert targets["16"] == ([], [])  # cat, dog: no target
    assert list(train.loc["9", "answers"]) == ["two"] * 10  # released answers are kept
    assert train.loc["9", "answer"] == "2"
    assert train.loc["13", "answer"] == "blue"
    dev, test = tables["dev"], tables["test"]
    assert dev["sample_id"].tolist() == ["100"]
    assert list(dev["target_ids"][0]) == []
    assert test["sample_id"].tolist() == ["200"]
    assert list(test["target_ids"][0]) == [0, 2]
    assert list(test["target_scores"][0]) == pytest.approx([1.0, 0.9])  # no x7, 2 x3
    assert report == {
        "task": "vqav2",
        "samples": {"train": 16, "dev": 1, "test": 1},
        "images": {"train": 1, "dev": 1, "test": 1},
        "labels": 4,
        "dropped": {},
        "train_answer_coverage": 0.875,  # 14 of 16 have a target (not 12 and 16)
        "vocabulary_splits": ["train"],
    }


# =============================================================================== GQA


def _gqa(image, answer, question="What is it?"):
    return {
        "imageId": image,
        "question": question,
        "answer": answer,
        "types": {"structural": "query", "semantic": "obj", "detailed": "what"},
    }


def gqa_files(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "gqa" / "questions1.2"
    splits = {
        "train": {
            "t1": _gqa("a", "yes"),
            "t2": _gqa("a", "no"),
            "t3": _gqa("b", "pipe"),
            "t4": _gqa("b", "yes"),
        },
        "val": {"v1": _gqa("c", "pipe")},
        "testdev": {"d1": _gqa("d", "yes"), "d2": _gqa("d", "cup"), "d3": _gqa("d", "Yes")},
    }
    for name, questions in splits.items():
        write_json(folder / f"{name}_balanced_questions.json", questions)
    return {"gqa/questions1.2.zip": folder}


def test_gqa_labels_from_train_answers_and_unknown_test_answers(tmp_path) -> None:
    pool = make_pool({"a": None, "b": None, "c": None, "d": None})
    tables, labels, report = prepare("gqa", gqa_files(tmp_path), pool)
    assert labels == ["no", "pipe", "yes"]  # sorted train answers
    assert tables["train"]["label"].tolist() == [2, 0, 1, 2]
    assert tables["dev"]["label"].tolist() == [1]
    assert tables["test"]["label"].tolist() == [2, -1, -1]  # "cup" unseen; "Yes" != "yes"
    assert report["unknown_label"] == {"train": 0, "dev": 0, "test": 2}
    assert report["samples"] == {"train": 4, "dev": 1, "test": 3}
    assert report["images"] == {"train": 2, "dev": 1, "test": 1}
    assert report["labels"] == 3
    assert "train_answer_coverage" not in report


# =============================================================================== NLVR2, SNLI-VE


def _nlvr2(identifier, label, sentence="Both images show dogs."):
    return {"identifier": identifier, "sentence": sentence, "label": label}


def nlvr2_files(tmp_path: Path, dev_rows=None) -> dict[str, Path]:
    root = tmp_path / "nlvr2"
    rows = {
        "train": [_nlvr2("train-1-0-0", "True"), _nlvr2("train-1-1-0", "False")],
        "dev": dev_rows or [_nlvr2("dev-5-0-2", "False"), _nlvr2("dev-5-1-2", "True")],
        "test1": [_nlvr2("test1-7-0-0", "True")],
    }
    return {f"nlvr2/{s}.json": write_lines(root / f"{s}.json", r) for s, r in rows.items()}


def _nlvr2_images(*stems: str) -> dict[str, str | None]:
    return {f"{s}-img{k}": None for s in stems for k in (0, 1)}


NLVR2_POOL = _nlvr2_images("train-1-0", "train-1-1", "dev-5-0", "dev-5-1", "test1-7-0")


def test_nlvr2_fixed_label_map(tmp_path) -> None:
    tables, labels, report = prepare("nlvr2", nlvr2_files(tmp_path), make_pool(NLVR2_POOL))
    assert labels == ["False", "True"]
    assert tables["train"]["label"].tolist() == [1, 0]
    assert tables["dev"]["label"].tolist() == [0, 1]
    assert tables["test"]["label"].tolist() == [1]
    assert tables["dev"]["group_id"].tolist() == ["dev-5-*-2"] * 2
    assert report["unknown_label"] == {"train": 0, "dev": 0, "test": 0}
    assert report["images"] == {"train": 2, "dev": 2, "test": 1}  # left images counted


def _snli(flickr, pair, label, text="A dog runs."):
    return {
        "Flickr30K_ID": flickr,
        "gold_label": label,
        "sentence1": "premise",
        "sentence2": text,
        "pairID": pair,
        "captionID": f"{flickr}.jpg#0",
    }


SNLI_ROWS = {
    "train": [
        _snli("10", "a", "entailment"),
        _snli("10", "b", "neutral"),
        _snli("11", "c", "contradiction"),
    ],
    "dev": [_snli("20", "d", "neutral")],
    "test": [_snli("30", "e", "contradiction"), _snli("30", "f", "entailment")],
}
SNLI_POOL = {"10": None, "11": None, "20": None, "30": None}


def snli_files(tmp_path: Path, rows=None) -> dict[str, Path]:
    rows = rows or SNLI_ROWS
    root = tmp_path / "snli_ve"
    return {
        f"snli_ve/snli_ve_{s}.jsonl": write_lines(root / f"snli_ve_{s}.jsonl", r)
        for s, r in rows.items()
    }


def test_snli_ve_fixed_label_map(tmp_path) -> None:
    tables, labels, report = prepare("snli_ve", snli_files(tmp_path), make_pool(SNLI_POOL))
    assert labels == ["contradiction", "neutral", "entailment"]
    assert tables["train"]["label"].tolist() == [2, 1, 0]
    assert tables["dev"]["label"].tolist() == [1]
    assert tables["test"]["label"].tolist() == [0, 2]
    assert report["samples"] == {"train": 3, "dev": 1, "test": 2}
    assert report["images"] == {"train": 2, "dev": 1, "test": 1}
    assert report["dropped"] == {}


def test_retrieval_task_has_no_labels(tmp_path) -> None:
    folder = tmp_path / "karpathy" / "caption_datasets"
    images = [
        {"filename": f"{i}.jpg", "split": split, "sentences": [{"raw": f"cap {i}", "sentid": i}]}
        for i, split in enumerate(["train", "val", "test"])
    ]
    write_json(folder / "dataset_flickr30k.json", {"images": images})
    files = {"karpathy/caption_datasets.zip": folder}
    tables, labels, report = prepare(
        "flickr30k_retrieval", files, make_pool({"0": None, "1": None, "2": None})
    )
    assert labels == []
    assert "label" not in tables["train"].columns
    assert report["samples"] == {"train": 1, "dev": 1, "test": 1}
    assert "unknown_label" not in report


# =============================================================================== bad records

# One of each kind of offender, in SNLI-VE: a missing image, an unreadable image, a duplicate
# sample id and a malformed record (the "-" gold label real SNLI has).
BAD_ROWS = {
    "train": [
        _snli("10", "a", "entailment"),
        _snli("10", "b", "neutral"),
        _snli("11", "b", "contradiction"),
        _snli("11", "c", "contradiction"),
    ],
    "dev": [
        _snli("20", "d", "neutral"),
        _snli("404", "g", "neutral"),
        _snli("21", "h", "entailment"),
    ],
    "test": [_snli("30", "e", "contradiction"), _snli("30", "i", "-")],
}
BAD_POOL = {"10": None, "11": None, "20": None, "21": TRUNCATED, "30": None}


def _error_message(tmp_path, rows, pool) -> str:
    with pytest.raises(BadRecordsError) as err:
        prepare("snli_ve", snli_files(tmp_path, rows), make_pool(pool))
    message = str(err.value)
    assert "data.on_bad_records: drop" in message
    return message


def _with(split: str, row: dict) -> dict:
    return {s: r + [row] if s == split else r for s, r in SNLI_ROWS.items()}


def test_missing_image_raises_naming_the_sample(tmp_path) -> None:
    message = _error_message(tmp_path, _with("dev", _snli("404", "g", "neutral")), SNLI_POOL)
    assert "task snli_ve: 1 bad record(s)" in message
    assert "[dev] sample g: image '404' is not in the image pool" in message


def test_unreadable_image_raises_naming_the_sample(tmp_path) -> None:
    pool = {**SNLI_POOL, "21": TRUNCATED}
    message = _error_message(tmp_path, _with("dev", _snli("21", "h", "entailment")), pool)
    assert f"[dev] sample h: image '21' is unreadable ({TRUNCATED})" in message


def test_duplicate_sample_id_raises(tmp_path) -> None:
    message = _error_message(tmp_path, _with("train", _snli("11", "b", "neutral")), SNLI_POOL)
    assert "[train] sample b: id occurs 2 times in train" in message


def test_malformed_record_raises_naming_file_and_line(tmp_path) -> None:
    message = _error_message(tmp_path, _with("test", _snli("30", "i", "-")), SNLI_POOL)
    assert "[test] snli_ve_test.jsonl:3: gold_label '-' is not one of" in message


def test_all_offenders_are_listed_together(tmp_path) -> None:
    message = _error_message(tmp_path, BAD_ROWS, BAD_POOL)
    assert "task snli_ve: 4 bad record(s)" in message
    for offender in (
        "snli_ve_test.jsonl:2",
        "sample b: id occurs 2 times",
        "sample g: image '404'",
        "sample h: image '21' is unreadable",
    ):
        assert offender in message


def test_only_the_first_ten_offenders_are_shown(tmp_path) -> None:
    rows = _with("dev", _snli("20", "z", "neutral"))
    rows["dev"] += [_snli(f"9{k:02d}", f"m{k:02d}", "neutral") for k in range(12)]
    message = _error_message(tmp_path, rows, SNLI_POOL)
    assert "task snli_ve: 12 bad record(s)" in message
    assert "sample m09:" in message
    assert "sample m10:" not in message
    assert "... and 2 more" in message


def test_drop_mode_removes_offenders_and_counts_them(tmp_path) -> None:
    tables, _, report = prepare(
        "snli_ve", snli_files(tmp_path, BAD_ROWS), make_pool(BAD_POOL), on_bad_records="drop"
    )
    assert tables["train"]["sample_id"].tolist() == ["a", "c"]  # both copies of "b" go
    assert tables["dev"]["sample_id"].tolist() == ["d"]
    assert tables["test"]["sample_id"].tolist() == ["e"]
    assert report["dropped"] == {
        "dev: missing image": 1,
        "dev: unreadable image": 1,
        "test: malformed record": 1,
        "train: duplicate id": 2,  # both copies are dropped samples
    }
    assert report["samples"] == {"train": 2, "dev": 1, "test": 1}


def test_drop_mode_with_a_split_left_empty_raises(tmp_path) -> None:
    rows = {**SNLI_ROWS, "dev": [_snli("404", "g", "neutral")]}
    with pytest.raises(BadRecordsError, match=r"no usable samples in split\(s\) \['dev'\]"):
        prepare("snli_ve", snli_files(tmp_path, rows), make_pool(SNLI_POOL), "drop")


def test_nlvr2_right_image_is_checked_too(tmp_path) -> None:
    pool = {**NLVR2_POOL}
    del pool["dev-5-1-img1"]
    with pytest.raises(BadRecordsError, match=r"sample dev-5-1-2: image 'dev-5-1-img1' is not"):
        prepare("nlvr2", nlvr2_files(tmp_path), make_pool(pool))


def test_drop_counts_a_pair_with_two_missing_images_once(tmp_path) -> None:
    """Regression: drop_problems counted problems, so this one sample was counted twice."""
    pool = {k: v for k, v in NLVR2_POOL.items() if not k.startswith("dev-5-1-")}
    extra = [_nlvr2("dev-5-0-2", "False"), _nlvr2("dev-5-1-2", "True"), _nlvr2("dev-5-2-2", "T")]
    tables, _, report = prepare("nlvr2", nlvr2_files(tmp_path, extra), make_pool(pool), "drop")
    assert tables["dev"]["sample_id"].tolist() == ["dev-5-0-2"]
    assert report["dropped"] == {"dev: malformed record": 1, "dev: missing image": 1}


def test_drop_counts_every_copy_of_a_duplicate(tmp_path) -> None:
    """Regression: both copies were dropped but counted once (kept + dropped != read)."""
    rows = _with("train", _snli("11", "b", "neutral"))  # train: a, b, c, b
    tables, _, report = prepare(
        "snli_ve", snli_files(tmp_path, rows), make_pool(SNLI_POOL), on_bad_records="drop"
    )
    assert tables["train"]["sample_id"].tolist() == ["a", "c"]
    assert report["dropped"] == {"train: duplicate id": 2}  # 4 read = 2 kept + 2 dropped


# =============================================================================== pools


def _image_bytes(fmt: str, size=(7, 5)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


def _pool_folder(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "good.png").write_bytes(_image_bytes("PNG"))
    jpeg = _image_bytes("JPEG", (16, 16))
    (root / "sub" / "cut.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "sub" / "UPPER.JPEG").write_bytes(_image_bytes("JPEG", (3, 4)))
    (root / "notes.txt").write_text("not an image")
    return root


def test_index_pool_checks_every_image(tmp_path) -> None:
    folder = _pool_folder(tmp_path / "images")
    table = index_pool("gqa", [folder])
    assert table.columns.tolist() == ["image_id", "path", "width", "height", "sha256", "error"]
    rows = {r.image_id: r for r in table.itertuples()}
    for row in rows.values():  # a truncated file still has bytes to checksum
        assert row.sha256 == hashlib.sha256(Path(row.path).read_bytes()).hexdigest()
    assert sorted(rows) == ["UPPER", "cut", "good"]  # notes.txt is not an image
    assert (rows["good"].width, rows["good"].height) == (7, 5)
    assert pd.isna(rows["good"].error)
    assert (rows["UPPER"].width, rows["UPPER"].height) == (3, 4)
    assert pd.isna(rows["UPPER"].error)
    assert (rows["cut"].width, rows["cut"].height) == (0, 0)
    assert isinstance(rows["cut"].error, str) and rows["cut"].error.startswith("OSError")
    assert rows["good"].path == (folder / "good.png").as_posix()


def test_index_pool_coco_ids(tmp_path) -> None:
    for sub, number in (("train2014", 9), ("val2014", 391895)):
        name = f"COCO_{sub}_{number:012d}.jpg"
        (tmp_path / sub).mkdir()
        (tmp_path / sub / name).write_bytes(_image_bytes("JPEG"))
    table = index_pool("coco", [tmp_path / "train2014", tmp_path / "val2014"])
    assert sorted(table.image_id) == ["391895", "9"]
    assert table.error.isna().all()


def test_index_pool_duplicate_ids_raise(tmp_path) -> None:
    for sub in ("train2014", "val2014"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / f"COCO_{sub}_000000000042.jpg").write_bytes(_image_bytes("JPEG"))
    with pytest.raises(DuplicateImageError, match="1 image ids occur more than once") as err:
        index_pool("coco", [tmp_path / "train2014", tmp_path / "val2014"])
    assert "42" in str(err.value)


def test_index_pool_duplicate_ids_across_suffixes_raise(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x1.png").write_bytes(_image_bytes("PNG"))
    (tmp_path / "a" / "x1.jpg").write_bytes(_image_bytes("JPEG"))
    with pytest.raises(DuplicateImageError, match="'gqa'"):
        index_pool("gqa", [tmp_path / "a"])


def test_prepare_accepts_good_images_of_a_pool_with_an_unreadable_one(tmp_path) -> None:
    """Regression: pandas >= 3 infers a string dtype for index_pool's error column when an
    image is unreadable, so the good images' None becomes NaN; prepare took NaN for an error
    and called every good image 'unreadable (nan)'."""
    images = tmp_path / "flickr"
    images.mkdir()
    for flickr_id in SNLI_POOL:
        (images / f"{flickr_id}.jpg").write_bytes(_image_bytes("JPEG"))
    jpeg = _image_bytes("JPEG", (16, 16))
    (images / "99.jpg").write_bytes(jpeg[: len(jpeg) // 2])  # used by no sample
    pool = index_pool("flickr30k", [images])
    tables, _, report = prepare("snli_ve", snli_files(tmp_path), pool)
    assert report["samples"] == {"train": 3, "dev": 1, "test": 2}


# =============================================================================== CLI


def _cli_args(tmp_path, files: dict[str, Path], pool_index: Path, out: Path) -> list[str]:
    args = ["--task", "snli_ve", "--pool-index", str(pool_index), "--out", str(out)]
    for key, path in files.items():
        args += ["--file", f"{key}={path}"]
    return args


def test_cli_writes_tables_labels_and_report(tmp_path, capsys) -> None:
    files = snli_files(tmp_path)
    pool_index = tmp_path / "pool.parquet"
    make_pool(SNLI_POOL).to_parquet(pool_index, index=False)
    out = tmp_path / "prepared" / "snli_ve"
    assert prep.main(_cli_args(tmp_path, files, pool_index, out)) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "dev.parquet",
        "labels.json",
        "report.json",
        "test.parquet",
        "train.parquet",
    ]
    train = pd.read_parquet(out / "train.parquet")
    assert train["sample_id"].tolist() == ["a", "b", "c"]
    assert train["label"].tolist() == [2, 1, 0]
    assert pd.read_parquet(out / "test.parquet")["sample_id"].tolist() == ["e", "f"]
    assert json.loads((out / "labels.json").read_text()) == {
        "task": "snli_ve",
        "labels": ["contradiction", "neutral", "entailment"],
    }
    report = json.loads((out / "report.json").read_text())
    assert report["samples"] == {"train": 3, "dev": 1, "test": 2}
    assert report["dropped"] == {}
    assert "snli_ve:" in capsys.readouterr().out
    assert [p.name for p in out.parent.iterdir()] == ["snli_ve"]  # no temporary folder left


@pytest.mark.parametrize("relaxed", [False, True])
def test_cli_vqa_settings_reach_the_vocabulary_and_labels_json(tmp_path, relaxed) -> None:
    pool_index = tmp_path / "pool.parquet"
    make_pool(VQA_POOL).to_parquet(pool_index, index=False)
    out = tmp_path / "prepared" / "vqav2"
    args = [
        "--task",
        "vqav2",
        "--pool-index",
        str(pool_index),
        "--out",
        str(out),
        "--vqa",
        json.dumps({"min_answer_count": 4, "normalise_unanimous": relaxed}),
    ]
    for key, path in vqa_files(tmp_path).items():
        args += ["--file", f"{key}={path}"]
    assert prep.main(args) == 0
    assert json.loads((out / "labels.json").read_text()) == {
        "task": "vqav2",
        "labels": ["no", "yes"],
        "metric": {"normalise_unanimous": relaxed},
    }


def test_cli_drop_mode(tmp_path) -> None:
    files = snli_files(tmp_path, BAD_ROWS)
    pool_index = tmp_path / "pool.parquet"
    make_pool(BAD_POOL).to_parquet(pool_index, index=False)
    out = tmp_path / "out"
    args = _cli_args(tmp_path, files, pool_index, out) + ["--on-bad-records", "drop"]
    assert prep.main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["dropped"] == {
        "dev: missing image": 1,
        "dev: unreadable image": 1,
        "test: malformed record": 1,
        "train: duplicate id": 2,
    }
    assert report["samples"] == {"train": 2, "dev": 1, "test": 1}
    assert pd.read_parquet(out / "dev.parquet")["sample_id"].tolist() == ["d"]


def test_cli_bad_records_leave_no_output(tmp_path) -> None:
    files = snli_files(tmp_path, BAD_ROWS)
    pool_index = tmp_path / "pool.parquet"
    make_pool(BAD_POOL).to_parquet(pool_index, index=False)
    out = tmp_path / "prepared" / "snli_ve"
    with pytest.raises(BadRecordsError, match="data.on_bad_records: drop") as err:
        prep.main(_cli_args(tmp_path, files, pool_index, out))
    assert "4 bad record(s)" in str(err.value)
    assert not out.exists()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_cli_bad_records_keep_an_earlier_output(tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.parquet").write_text("earlier")
    pool_index = tmp_path / "pool.parquet"
    make_pool(BAD_POOL).to_parquet(pool_index, index=False)
    with pytest.raises(BadRecordsError):
        prep.main(_cli_args(tmp_path, snli_files(tmp_path, BAD_ROWS), pool_index, out))
    assert [p.name for p in out.iterdir()] == ["train.parquet"]
    assert (out / "train.parquet").read_text() == "earlier"


def test_cli_pool_index_with_one_unreadable_image(tmp_path) -> None:
    """Regression: the same NaN through parquet (a str column reads back NaN for None)."""
    pool_index = tmp_path / "pool.parquet"
    make_pool({**SNLI_POOL, "99": TRUNCATED}).to_parquet(pool_index, index=False)
    out = tmp_path / "out"
    assert prep.main(_cli_args(tmp_path, snli_files(tmp_path), pool_index, out)) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["samples"] == {"train": 3, "dev": 1, "test": 2}
    assert report["dropped"] == {}
