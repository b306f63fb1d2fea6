"""Tests for vecomp.data.parsers: each official format, hand-written, awkward cases included.

Every fixture is written by the test into ``tmp_path`` in the layout the parsers expect: archives
are given as the folder they were extracted into (their JSON may sit in a sub-folder, as in the
real zips), plain files as the file itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vecomp.data.parsers import (
    PARSERS,
    FormatError,
    Parsed,
    Problem,
    get_parser,
    member,
    read_jsonl,
)
from vecomp.data.parsers.nlvr2 import group_id, pair_images
from vecomp.data.parsers.vqav2 import val_half
from vecomp.data.registry import FILES, TASKS, UnknownNameError

from .fixture_files import write_json, write_lines


def _where(parsed: Parsed) -> dict[str, Problem]:
    return {p.where: p for p in parsed.problems}


def _by_id(parsed: Parsed, split: str) -> dict[str, dict]:
    return {r["sample_id"]: r for r in parsed.records[split]}


# =============================================================================== VQAv2


def _vqa_annotation(qid: int, image_id: int, answers: list[str], **extra) -> dict:
    """An annotation as released; ``multiple_choice_answer`` only where a test gives one."""
    ann = {
        "question_id": qid,
        "image_id": image_id,
        "question_type": "how many",
        "answer_type": "number",
        "answers": [
            {"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
            for i, a in enumerate(answers)
        ],
    }
    ann.update(extra)
    return ann


def _vqa_files(tmp_path: Path, train_q, train_a, val_q, val_a) -> dict[str, Path]:
    """The four VQAv2 zips, extracted; the JSON sits one folder down in two of them."""
    layout = {
        "vqav2/v2_Questions_Train_mscoco.zip": (
            "v2_OpenEnded_mscoco_train2014_questions.json",
            {"task_type": "Open-Ended", "data_subtype": "train2014", "questions": train_q},
        ),
        "vqav2/v2_Questions_Val_mscoco.zip": (
            "nested/v2_OpenEnded_mscoco_val2014_questions.json",
            {"task_type": "Open-Ended", "data_subtype": "val2014", "questions": val_q},
        ),
        "vqav2/v2_Annotations_Train_mscoco.zip": (
            "v2_mscoco_train2014_annotations.json",
            {"data_subtype": "train2014", "annotations": train_a},
        ),
        "vqav2/v2_Annotations_Val_mscoco.zip": (
            "nested/v2_mscoco_val2014_annotations.json",
            {"data_subtype": "val2014", "annotations": val_a},
        ),
    }
    files = {}
    for key, (name, content) in layout.items():
        folder = tmp_path / key.removesuffix(".zip")
        write_json(folder / name, content)
        files[key] = folder
    return files


TEN_ANSWERS_TWO = ["Two", "2", "two", "2.", "3", "three", "2", "the 2", "1", "2"]
TEN_ANSWERS_CIRCLE = [
    "the red circle",
    "Red circle!",
    "red circle",
    "a red circle",
    "circle",
    "circle",
    "red",
    "red circle.",
    "blue circle",
    "Red Circle",
]


@pytest.fixture
def vqa_files(tmp_path: Path) -> dict[str, Path]:
    train_q = [
        {"image_id": 9, "question": "How many dogs are there?", "question_id": 9000},
        {"image_id": 9, "question": "What is in the middle?", "question_id": 9001},
        {"image_id": 9, "question_id": 9002},  # no question text
        {"image_id": 9, "question": "Orphan?", "question_id": 9003},  # no annotation
        {"image_id": 9, "question": "Answer without text?", "question_id": 9004},
        {"image_id": 9, "question": "No answer type?", "question_id": 9005},
    ]
    train_a = [
        _vqa_annotation(9000, 9, TEN_ANSWERS_TWO),
        _vqa_annotation(9001, 9, TEN_ANSWERS_CIRCLE, question_type="what is", answer_type="other"),
        _vqa_annotation(9002, 9, ["yes"] * 10),
        _vqa_annotation(9004, 9, ["yes"] * 9, answer_type="yes/no"),
        _vqa_annotation(9005, 9, ["no"] * 10),
    ]
    train_a[3]["answers"].append({"answer_id": 10, "answer_confidence": "yes"})  # no "answer"
    del train_a[4]["answer_type"]
    # val2014 images 2 and 5 hash to dev, 3 and 4 to test (see test_val_half_is_stable)
    val_q = [
        {"image_id": 2, "question": "Is it raining?", "question_id": 2000},
        {"image_id": 3, "question": "Is it raining?", "question_id": 3000},
        {"image_id": 2, "question": "Is the dog asleep?", "question_id": 2001},
        {"image_id": 4, "question": "How many cats?", "question_id": 4000},
        {"image_id": 5, "question": "What color?", "question_id": 5000},
        {"image_id": 3, "question": "Anything?", "question_id": 3001},  # no annotation
    ]
    val_a = [
        _vqa_annotation(2000, 2, ["yes!"] * 6 + ["no"] * 4, answer_type="yes/no"),
        _vqa_annotation(3000, 3, ["No"] * 6 + ["yes"] * 4, answer_type="yes/no"),
        _vqa_annotation(2001, 2, ["dont know"] * 5 + ["no"] * 5),  # tie: first seen wins
        _vqa_annotation(4000, 4, ["none"] * 7 + ["1,000"] * 3),
        _vqa_annotation(5000, 5, ["1,000"] * 7 + ["3.5"] * 3),
    ]
    return _vqa_files(tmp_path, train_q, train_a, val_q, val_a)


def test_val_half_is_stable() -> None:
    # sha1(image id)[0] % 2: hand-computed once; a change would reshuffle dev and test
    assert [val_half(str(i)) for i in (2, 5, 7, 391895)] == ["dev"] * 4
    assert [val_half(str(i)) for i in (1, 3, 4, 393225)] == ["test"] * 4


def test_vqav2_label_is_the_official_multiple_choice_answer(tmp_path: Path) -> None:
    # a 5-5 tie as in the real files: the official answer is "yes", the first seen is "no";
    # an official answer is normalised as the literature's vocabularies are ("Two" -> "2")
    train_q = [{"image_id": 9, "question": f"Q{i}?", "question_id": i} for i in range(3)]
    train_a = [
        _vqa_annotation(0, 9, ["no"] * 5 + ["yes"] * 5, multiple_choice_answer="yes"),
        _vqa_annotation(
            1,
            9,
            ["no", "no", "yes", "yes", "2", "2", "3", "3", "1", "1"],
            multiple_choice_answer="2",
        ),
        _vqa_annotation(2, 9, ["2"] * 4 + ["3"] * 6, multiple_choice_answer="Two"),
    ]
    parsed = get_parser("vqav2")(_vqa_files(tmp_path, train_q, train_a, [], []))
    assert [r["answer"] for r in parsed.records["train"]] == ["yes", "2", "2"]
    assert parsed.records["train"][0]["answers"] == ["no"] * 5 + ["yes"] * 5


@pytest.mark.parametrize("bad", [3, "", "  ", ["yes"]])
def test_vqav2_multiple_choice_answer_of_the_wrong_kind_is_a_problem(tmp_path, bad) -> None:
    files = _vqa_files(
        tmp_path,
        [{"image_id": 9, "question": "Q?", "question_id": 1}],
        [_vqa_annotation(1, 9, ["yes"] * 10, multiple_choice_answer=bad)],
        [],
        [],
    )
    parsed = get_parser("vqav2")(files)
    assert [p.reason for p in parsed.problems] == [
        "'multiple_choice_answer' is not a non-empty string"
    ]


def test_vqav2_without_multiple_choice_answer_falls_back_to_the_majority(vqa_files) -> None:
    parsed = get_parser("vqav2")(vqa_files)
    train = _by_id(parsed, "train")
    assert sorted(train) == ["9000", "9001"]
    assert train["9000"] == {
        "sample_id": "9000",
        "image_id": "9",
        "text": "How many dogs are there?",
        "answers": TEN_ANSWERS_TWO,  # kept raw; normalised later for targets and scoring
        "answer": "2",  # Two/2/two/2./the 2 -> "2": seven of the ten
        "question_type": "how many",
        "answer_type": "number",
    }
    assert train["9001"]["answer"] == "red circle"
    assert train["9001"]["answer_type"] == "other"


def test_vqav2_val2014_split_by_image_into_dev_and_test(vqa_files) -> None:
    parsed = get_parser("vqav2")(vqa_files)
    dev, test = _by_id(parsed, "dev"), _by_id(parsed, "test")
    assert sorted(dev) == ["2000", "2001", "5000"]
    assert sorted(test) == ["3000", "4000"]
    assert {r["image_id"] for r in dev.values()} == {"2", "5"}
    assert {r["image_id"] for r in test.values()} == {"3", "4"}
    assert not {r["image_id"] for r in dev.values()} & {r["image_id"] for r in test.values()}
    # the same question text on two images: one in dev, one in test
    assert dev["2000"]["text"] == test["3000"]["text"] == "Is it raining?"
    # no multiple_choice_answer in these annotations: majority answers, normalised
    assert dev["2000"]["answer"] == "yes"
    assert test["3000"]["answer"] == "no"
    assert dev["2001"]["answer"] == "don't know"
    assert test["4000"]["answer"] == "0"
    assert dev["5000"]["answer"] == "1000"


def test_vqav2_malformed_records_become_problems(vqa_files) -> None:
    parsed = get_parser("vqav2")(vqa_files)
    problems = _where(parsed)
    assert set(problems) == {
        "v2_OpenEnded_mscoco_train2014_questions.json[2]",
        "v2_OpenEnded_mscoco_train2014_questions.json[3]",
        "v2_OpenEnded_mscoco_train2014_questions.json[4]",
        "v2_OpenEnded_mscoco_train2014_questions.json[5]",
        "v2_OpenEnded_mscoco_val2014_questions.json[5]",
    }
    train = "v2_OpenEnded_mscoco_train2014_questions.json"
    assert problems[f"{train}[2]"].reason == "missing field(s) question"
    assert problems[f"{train}[3]"].reason == (
        "question_id 9003 has no annotation in v2_mscoco_train2014_annotations.json"
    )
    assert problems[f"{train}[4]"].reason == "an entry of 'answers' has no 'answer'"
    assert problems[f"{train}[5]"].reason == "missing field(s) answer_type"
    assert [p.split for p in parsed.problems] == ["train"] * 4 + ["test"]  # image 3 -> test
    assert {p.kind for p in parsed.problems} == {"malformed record"}
    assert all(p.sample_id is None for p in parsed.problems)
    assert str(problems[f"{train}[2]"]) == f"{train}[2]: missing field(s) question"


def test_vqav2_empty_answer_list_is_a_problem(tmp_path: Path) -> None:
    """Regression: an empty 'answers' list used to crash majority_answer with IndexError."""
    files = _vqa_files(
        tmp_path,
        [{"image_id": 9, "question": "Q?", "question_id": 1}],
        [_vqa_annotation(1, 9, [])],
        [],
        [],
    )
    parsed = get_parser("vqav2")(files)
    assert [p.where for p in parsed.problems] == ["v2_OpenEnded_mscoco_train2014_questions.json[0]"]
    assert parsed.problems[0].reason == "'answers' is empty"
    assert parsed.records["train"] == []


def test_vqav2_missing_json_inside_extracted_folder_is_a_format_error(vqa_files) -> None:
    folder = vqa_files["vqav2/v2_Annotations_Val_mscoco.zip"]
    (folder / "nested" / "v2_mscoco_val2014_annotations.json").unlink()
    with pytest.raises(FormatError, match=r"v2_mscoco_val2014_annotations\.json not found") as err:
        get_parser("vqav2")(vqa_files)
    assert "vqav2/v2_Annotations_Val_mscoco.zip" in str(err.value)


def test_vqav2_missing_file_key_is_a_format_error(vqa_files) -> None:
    del vqa_files["vqav2/v2_Questions_Train_mscoco.zip"]
    with pytest.raises(FormatError, match="vqav2/v2_Questions_Train_mscoco.zip"):
        get_parser("vqav2")(vqa_files)


def test_vqav2_invalid_json_file_is_a_format_error(vqa_files) -> None:
    folder = vqa_files["vqav2/v2_Questions_Train_mscoco.zip"]
    (folder / "v2_OpenEnded_mscoco_train2014_questions.json").write_text('{"questions": [')
    with pytest.raises(FormatError, match="v2_OpenEnded_mscoco_train2014_questions.json"):
        get_parser("vqav2")(vqa_files)


# =============================================================================== GQA


def _gqa_question(image: str, question: str, answer: str, detailed: str = "relS") -> dict:
    return {
        "imageId": image,
        "question": question,
        "answer": answer,
        "fullAnswer": f"The answer is {answer}.",
        "isBalanced": True,
        "types": {"structural": "query", "semantic": "rel", "detailed": detailed},
        "groups": {"global": None, "local": "12-relS"},
        "annotations": {"question": {}, "answer": {}, "fullAnswer": {}},
        "semantic": [],
        "semanticStr": "",
        "entailed": [],
        "equivalent": [],
    }


def _gqa_files(tmp_path: Path, splits: dict[str, dict]) -> dict[str, Path]:
    folder = tmp_path / "gqa" / "questions1.2"
    for name, questions in splits.items():
        write_json(folder / f"{name}_balanced_questions.json", questions)
    return {"gqa/questions1.2.zip": folder}


@pytest.fixture
def gqa_files(tmp_path: Path) -> dict[str, Path]:
    untyped = _gqa_question("n1", "Is it?", "yes")
    del untyped["types"]
    no_answer = _gqa_question("n2", "What?", "x")
    del no_answer["answer"]
    return _gqa_files(
        tmp_path,
        {
            "train": {
                "02930152": _gqa_question("2354786", "Is the sky dark?", "yes", "verifyAttr"),
                "07333408": _gqa_question("2375429", "What is on the white wall?", "pipe"),
                "201307251": untyped,
                "bad": no_answer,
                "listy": ["not", "a", "question"],
            },
            "val": {"05515938": _gqa_question("2400000", "Which color is the cup?", "white")},
            "testdev": {
                "20968379": _gqa_question("n288870", "Who wears the shirt?", "man"),
                "201497464": {**_gqa_question("n1", "Q?", "a"), "imageId": None},
            },
        },
    )


def test_gqa_records_keep_string_ids(gqa_files) -> None:
    parsed = get_parser("gqa")(gqa_files)
    train = _by_id(parsed, "train")
    assert sorted(train) == ["02930152", "07333408", "201307251"]  # leading zero kept
    assert train["02930152"] == {
        "sample_id": "02930152",
        "image_id": "2354786",
        "text": "Is the sky dark?",
        "answer": "yes",
        "structural": "query",
        "semantic": "rel",
        "detailed": "verifyAttr",
    }
    assert train["201307251"]["structural"] == train["201307251"]["detailed"] == ""
    assert [r["sample_id"] for r in parsed.records["dev"]] == ["05515938"]
    assert [r["image_id"] for r in parsed.records["test"]] == ["n288870"]


def test_gqa_answers_are_not_normalised(tmp_path: Path) -> None:
    q = _gqa_question("1", "What is it?", "The Man")
    files = _gqa_files(tmp_path, {"train": {"1": q}, "val": {}, "testdev": {}})
    assert get_parser("gqa")(files).records["train"][0]["answer"] == "The Man"


def test_gqa_malformed_records_become_problems(gqa_files) -> None:
    problems = _where(get_parser("gqa")(gqa_files))
    assert set(problems) == {
        "train_balanced_questions.json['bad']",
        "train_balanced_questions.json['listy']",
        "testdev_balanced_questions.json['201497464']",
    }
    assert problems["train_balanced_questions.json['bad']"].reason == "missing field(s) answer"
    assert problems["train_balanced_questions.json['listy']"].reason == "not a JSON object"
    assert problems["testdev_balanced_questions.json['201497464']"].reason == (
        "missing field(s) imageId"
    )
    assert problems["testdev_balanced_questions.json['201497464']"].split == "test"


def test_gqa_missing_split_file_is_a_format_error(gqa_files) -> None:
    (gqa_files["gqa/questions1.2.zip"] / "testdev_balanced_questions.json").unlink()
    with pytest.raises(FormatError, match=r"testdev_balanced_questions\.json not found inside"):
        get_parser("gqa")(gqa_files)


def test_gqa_question_file_that_is_a_list_is_a_format_error(tmp_path: Path) -> None:
    """Regression: a top-level JSON list used to crash with AttributeError."""
    files = _gqa_files(tmp_path, {"train": {}, "val": {}, "testdev": {}})
    write_json(files["gqa/questions1.2.zip"] / "train_balanced_questions.json", [{"a": 1}])
    with pytest.raises(FormatError, match="train_balanced_questions.json"):
        get_parser("gqa")(files)


# =============================================================================== NLVR2


def _nlvr2_row(identifier: str, label, sentence: str = "There are two dogs.", **extra) -> dict:
    split, set_id, pair, _ = identifier.rsplit("-", 3)
    stem = f"{split}-{set_id}-{pair}"
    row = {
        "identifier": identifier,
        "sentence": sentence,
        "label": label,
        "left_url": f"https://example.org/{stem}-img0.jpg",
        "right_url": f"https://example.org/{stem}-img1.jpg",
        "writer": "103",
        "synset": "dog",
        "query": "dogs 7",
    }
    row.update(extra)
    return row


@pytest.fixture
def nlvr2_files(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "nlvr2"
    train = write_lines(
        root / "train.json",
        [
            _nlvr2_row("train-10171-0-0", "True", directory="71"),
            '{"identifier": "train-10171-1-0", "sentence": ',  # cut-off line
            "",  # blank lines are skipped but still counted
            _nlvr2_row("train-10171-1-0", "False", directory="71"),
        ],
    )
    dev = write_lines(
        root / "dev.json",
        [
            _nlvr2_row("dev-850-0-3", "True", "One image shows exactly two brown acorns."),
            _nlvr2_row("dev-850-1-3", "False", "One image shows exactly two brown acorns."),
            _nlvr2_row("dev-850-2-3", "maybe"),
            _nlvr2_row("dev-850-3-3", "true"),  # labels are case-sensitive strings
            {"identifier": "dev-851-0-0", "label": "True"},  # no sentence
            {**_nlvr2_row("dev-852-0-0", "True"), "identifier": "dev852-0"},
        ],
    )
    test = write_lines(root / "test1.json", [_nlvr2_row("test1-0-1-0", "False"), "[1, 2]"])
    return {"nlvr2/train.json": train, "nlvr2/dev.json": dev, "nlvr2/test1.json": test}


def test_nlvr2_identifier_helpers() -> None:
    assert pair_images("dev-850-0-3") == ("dev-850-0-img0", "dev-850-0-img1")
    assert group_id("dev-850-0-3") == "dev-850-*-3"
    assert pair_images("test1-0-1-0") == ("test1-0-1-img0", "test1-0-1-img1")
    assert group_id("test1-0-1-0") == "test1-0-*-0"


def test_nlvr2_records(nlvr2_files) -> None:
    parsed = get_parser("nlvr2")(nlvr2_files)
    dev = _by_id(parsed, "dev")
    assert sorted(dev) == ["dev-850-0-3", "dev-850-1-3"]
    assert dev["dev-850-0-3"] == {
        "sample_id": "dev-850-0-3",
        "image_id": "dev-850-0-img0",
        "image_id_2": "dev-850-0-img1",
        "text": "One image shows exactly two brown acorns.",
        "answer": "True",
        "group_id": "dev-850-*-3",
    }
    assert dev["dev-850-1-3"]["answer"] == "False"
    assert dev["dev-850-1-3"]["group_id"] == "dev-850-*-3"  # same group: consistency
    assert dev["dev-850-1-3"]["image_id"] == "dev-850-1-img0"
    train = _by_id(parsed, "train")
    assert sorted(train) == ["train-10171-0-0", "train-10171-1-0"]
    assert train["train-10171-1-0"]["image_id_2"] == "train-10171-1-img1"
    assert [(r["sample_id"], r["answer"]) for r in parsed.records["test"]] == [
        ("test1-0-1-0", "False")
    ]


def test_nlvr2_malformed_records_become_problems(nlvr2_files) -> None:
    problems = _where(get_parser("nlvr2")(nlvr2_files))
    assert set(problems) == {
        "train.json:2",
        "dev.json:3",
        "dev.json:4",
        "dev.json:5",
        "dev.json:6",
        "test1.json:2",
    }
    assert problems["train.json:2"].reason.startswith("not valid JSON")
    assert problems["dev.json:3"].reason == "label 'maybe' is not one of False, True"
    assert problems["dev.json:4"].reason == "label 'true' is not one of False, True"
    assert problems["dev.json:5"].reason == "missing field(s) sentence"
    assert problems["dev.json:6"].reason == ("identifier 'dev852-0' is not split-set-pair-sentence")
    assert problems["test1.json:2"].reason == "not a JSON object"
    assert [problems[w].split for w in ("train.json:2", "dev.json:3", "test1.json:2")] == [
        "train",
        "dev",
        "test",
    ]


def test_read_jsonl_counts_blank_lines(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "x.jsonl", [{"a": 1}, "", "  ", "oops", {"b": 2}])
    assert [(n, r, e is None) for n, r, e in read_jsonl(path)] == [
        (1, {"a": 1}, True),
        (4, None, False),
        (5, {"b": 2}, True),
    ]


# =============================================================================== SNLI-VE


def _snli_row(flickr_id: str, hypothesis: str, label: str, pair: str) -> dict:
    return {
        "Flickr30K_ID": flickr_id,
        "gold_label": label,
        "sentence1": "Two women are embracing while holding to go packages.",
        "sentence2": hypothesis,
        "pairID": pair,
        "captionID": f"{flickr_id}.jpg#2",
        "annotator_labels": [label],
    }


@pytest.fixture
def snli_files(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "snli_ve"
    no_pair = _snli_row("4705552913", "A dog runs.", "neutral", "x")
    del no_pair["pairID"]
    files = {
        "train": [
            _snli_row(
                "3416050480", "The sisters are hugging goodbye.", "neutral", "3416050480.jpg#4r1n"
            ),
            _snli_row(
                "3416050480", "Two woman are holding packages.", "entailment", "3416050480.jpg#4r1e"
            ),
            _snli_row(
                "3416050480",
                "The men are fighting outside a deli.",
                "contradiction",
                "3416050480.jpg#4r1c",
            ),
        ],
        "dev": [
            _snli_row("2677109430", "A boy is sleeping.", "contradiction", "2677109430.jpg#0r1c"),
            _snli_row("2677109430", "Hard to say.", "-", "2677109430.jpg#0r1n"),
            no_pair,
        ],
        "test": [
            '{"Flickr30K_ID": "1", ',
            _snli_row("1000092795", "Men are outside.", "Entailment", "1000092795.jpg#1r1e"),
            _snli_row("1000092795", "Two men are outdoors.", "entailment", "1000092795.jpg#1r2e"),
        ],
    }
    return {
        f"snli_ve/snli_ve_{split}.jsonl": write_lines(root / f"snli_ve_{split}.jsonl", rows)
        for split, rows in files.items()
    }


def test_snli_ve_records(snli_files) -> None:
    parsed = get_parser("snli_ve")(snli_files)
    train = parsed.records["train"]
    assert [r["answer"] for r in train] == ["neutral", "entailment", "contradiction"]
    assert train[1] == {
        "sample_id": "3416050480.jpg#4r1e",
        "image_id": "3416050480",
        "text": "Two woman are holding packages.",
        "answer": "entailment",
    }
    assert "sentence1" not in train[0]  # the text premise is deliberately dropped
    assert [r["sample_id"] for r in parsed.records["dev"]] == ["2677109430.jpg#0r1c"]
    assert [r["sample_id"] for r in parsed.records["test"]] == ["1000092795.jpg#1r2e"]


def _one_row_files(tmp_path: Path, row: dict) -> dict[str, Path]:
    root = tmp_path / "snli_ve"
    files = {
        f"snli_ve/snli_ve_{s}.jsonl": write_lines(root / f"snli_ve_{s}.jsonl", [])
        for s in ("dev", "test")
    }
    files["snli_ve/snli_ve_train.jsonl"] = write_lines(root / "snli_ve_train.jsonl", [row])
    return files


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Flickr30K_ID", "2248275918"),  # necla-ml/SNLI-VE since April 2020, most copies
        ("Flikr30kID", "2248275918.jpg"),  # the original generator: sic, with the extension
        ("Flikr30kID", "2248275918"),
        ("Flickr30K_ID", "2248275918.jpg"),
    ],
)
def test_snli_ve_accepts_both_generators_image_keys(tmp_path: Path, key, value) -> None:
    row = _snli_row("x", "A dog.", "neutral", "2248275918.jpg#0r1n")
    del row["Flickr30K_ID"]
    row[key] = value
    parsed = get_parser("snli_ve")(_one_row_files(tmp_path, row))
    assert parsed.problems == []
    assert parsed.records["train"][0]["image_id"] == "2248275918"


def test_snli_ve_without_an_image_key_is_a_problem(tmp_path: Path) -> None:
    row = _snli_row("x", "A dog.", "neutral", "p")
    del row["Flickr30K_ID"]
    parsed = get_parser("snli_ve")(_one_row_files(tmp_path, row))
    assert [p.reason for p in parsed.problems] == ["missing field(s) Flickr30K_ID or Flikr30kID"]


def test_snli_ve_flickr_id_becomes_a_string(tmp_path: Path) -> None:
    row = _snli_row("x", "A dog.", "neutral", "p")
    row["Flickr30K_ID"] = 1000092795
    parsed = get_parser("snli_ve")(_one_row_files(tmp_path, row))
    assert parsed.records["train"][0]["image_id"] == "1000092795"


def test_snli_ve_bad_labels_and_lines_become_problems(snli_files) -> None:
    problems = _where(get_parser("snli_ve")(snli_files))
    assert set(problems) == {
        "snli_ve_dev.jsonl:2",
        "snli_ve_dev.jsonl:3",
        "snli_ve_test.jsonl:1",
        "snli_ve_test.jsonl:2",
    }
    assert problems["snli_ve_dev.jsonl:2"].reason == (
        "gold_label '-' is not one of contradiction, neutral, entailment"
    )
    assert problems["snli_ve_dev.jsonl:3"].reason == "missing field(s) pairID"
    assert problems["snli_ve_test.jsonl:1"].reason.startswith("not valid JSON")
    assert "'Entailment'" in problems["snli_ve_test.jsonl:2"].reason
    assert problems["snli_ve_dev.jsonl:2"].split == "dev"


# =============================================================================== Karpathy


def _karpathy_image(split: str, filename: str, sentids: list[int], raws=None, **extra) -> dict:
    raws = raws or [f"caption {i} of {filename}" for i in sentids]
    return {
        "filename": filename,
        "imgid": 0,
        "split": split,
        "sentids": sentids,
        "sentences": [
            {"tokens": raw.lower().split(), "raw": raw, "imgid": 0, "sentid": sid}
            for sid, raw in zip(sentids, raws, strict=True)
        ],
        **extra,
    }


@pytest.fixture
def karpathy_files(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "karpathy" / "caption_datasets"
    no_raw = _karpathy_image(
        "test", "COCO_val2014_000000000042.jpg", [9, 10], cocoid=42, filepath="val2014"
    )
    del no_raw["sentences"][0]["raw"]
    coco = [
        _karpathy_image(
            "train", "COCO_train2014_000000000009.jpg", [1, 2], cocoid=9, filepath="train2014"
        ),
        _karpathy_image(
            "restval",
            "COCO_val2014_000000391895.jpg",
            [3],
            [" A man with a red helmet on a small moped on a dirt road. "],
            cocoid=391895,
            filepath="val2014",
        ),
        _karpathy_image("val", "COCO_val2014_000000000002.jpg", [4], cocoid=2, filepath="val2014"),
        _karpathy_image("test", "COCO_val2014_000000000003.jpg", [5], cocoid=3, filepath="val2014"),
        _karpathy_image(
            "holdout", "COCO_val2014_000000000004.jpg", [6], cocoid=4, filepath="val2014"
        ),
        {**_karpathy_image("val", "COCO_val2014_000000000005.jpg", [7], cocoid=5), "sentences": []},
        no_raw,
    ]
    flickr = [
        _karpathy_image("train", "1000092795.jpg", [0, 1]),
        _karpathy_image("val", "10002456.jpg", [2]),
        _karpathy_image("test", "1007129816.jpg", [3]),
        {k: v for k, v in _karpathy_image("test", "x.jpg", [4]).items() if k != "filename"},
    ]
    write_json(folder / "dataset_coco.json", {"images": coco, "dataset": "coco"})
    write_json(folder / "dataset_flickr30k.json", {"images": flickr, "dataset": "flickr30k"})
    return {"karpathy/caption_datasets.zip": folder}


def _split_images(parsed: Parsed) -> dict[str, list[tuple[str, str]]]:
    return {s: [(r["sample_id"], r["image_id"]) for r in rs] for s, rs in parsed.records.items()}


def test_coco_karpathy_splits_and_ids(karpathy_files) -> None:
    parsed = get_parser("coco_retrieval")(karpathy_files)
    assert _split_images(parsed) == {
        "train": [("1", "9"), ("2", "9"), ("3", "391895")],  # restval joins train
        "dev": [("4", "2")],  # val is dev
        "test": [("5", "3"), ("10", "42")],  # the sentence with raw text survives
    }
    assert parsed.records["train"][2]["text"] == (
        "A man with a red helmet on a small moped on a dirt road."
    )  # stripped


def test_coco_karpathy_problems(karpathy_files) -> None:
    problems = _where(get_parser("coco_retrieval")(karpathy_files))
    assert set(problems) == {
        "dataset_coco.json[images][4]",
        "dataset_coco.json[images][5]",
        "dataset_coco.json[images][6]",
    }
    assert problems["dataset_coco.json[images][4]"].reason == (
        "split 'holdout' is not one of ['train', 'restval', 'val', 'test']"
    )
    assert problems["dataset_coco.json[images][5]"].reason == "missing filename or sentences"
    assert problems["dataset_coco.json[images][5]"].split == "dev"
    assert problems["dataset_coco.json[images][6]"].reason == "sentence: missing field(s) raw"


def test_flickr30k_karpathy_ids_from_file_name(karpathy_files) -> None:
    parsed = get_parser("flickr30k_retrieval")(karpathy_files)
    assert _split_images(parsed) == {
        "train": [("0", "1000092795"), ("1", "1000092795")],
        "dev": [("2", "10002456")],
        "test": [("3", "1007129816")],
    }
    assert [p.where for p in parsed.problems] == ["dataset_flickr30k.json[images][3]"]
    assert parsed.problems[0].reason == "missing filename or sentences"


def test_karpathy_missing_dataset_file_is_a_format_error(karpathy_files) -> None:
    (karpathy_files["karpathy/caption_datasets.zip"] / "dataset_flickr30k.json").unlink()
    get_parser("coco_retrieval")(karpathy_files)  # the other dataset still parses
    with pytest.raises(FormatError, match=r"dataset_flickr30k\.json not found inside"):
        get_parser("flickr30k_retrieval")(karpathy_files)


# =============================================================================== registry


def test_every_registered_task_has_a_parser() -> None:
    for name in TASKS:
        assert callable(get_parser(name)), name
    assert set(PARSERS) == set(TASKS)


def _snli_number_sentence(tmp_path: Path) -> dict[str, Path]:
    return _one_row_files(tmp_path, _snli_row("10", 5, "neutral", "p"))


def _snli_number_pair(tmp_path: Path) -> dict[str, Path]:
    return _one_row_files(tmp_path, _snli_row("10", "A dog.", "neutral", 7))


def _nlvr2_number_sentence(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "nlvr2"
    rows = {"train.json": [_nlvr2_row("train-1-0-0", "True", sentence=3)]}
    rows |= {"dev.json": [], "test1.json": []}
    return {f"nlvr2/{name}": write_lines(root / name, r) for name, r in rows.items()}


def _nlvr2_number_identifier(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "nlvr2"
    rows = {"train.json": [{**_nlvr2_row("train-1-0-0", "True"), "identifier": 1234}]}
    rows |= {"dev.json": [], "test1.json": []}
    return {f"nlvr2/{name}": write_lines(root / name, r) for name, r in rows.items()}


def _gqa_number_question(tmp_path: Path) -> dict[str, Path]:
    bad = {**_gqa_question("n1", "q", "yes"), "question": 42}
    return _gqa_files(tmp_path, {"train": {"1": bad}, "val": {}, "testdev": {}})


def _karpathy_number_raw(tmp_path: Path) -> dict[str, Path]:
    image = _karpathy_image("train", "COCO_train2014_000000000009.jpg", [1])
    image["sentences"][0]["raw"] = 9
    folder = tmp_path / "karpathy"
    write_json(folder / "dataset_coco.json", {"images": [image], "dataset": "coco"})
    return {"karpathy/caption_datasets.zip": folder}


# The official formats hold text in these fields; a number there would reach the tables as a
# column of mixed types, which parquet refuses (pyarrow's ArrowTypeError) after the parse.
WRONG_TYPES = {
    "snli_ve sentence2": ("snli_ve", _snli_number_sentence, "sentence2 is int 5"),
    "snli_ve pairID": ("snli_ve", _snli_number_pair, "pairID is int 7"),
    "nlvr2 sentence": ("nlvr2", _nlvr2_number_sentence, "sentence is int 3"),
    "nlvr2 identifier": ("nlvr2", _nlvr2_number_identifier, "identifier is int 1234"),
    "gqa question": ("gqa", _gqa_number_question, "question is int 42"),
    "karpathy raw": ("coco_retrieval", _karpathy_number_raw, "raw is int 9"),
}


@pytest.mark.parametrize("case", sorted(WRONG_TYPES))
def test_a_number_where_the_format_has_text_is_a_problem_of_that_record(tmp_path, case) -> None:
    task, files, reason = WRONG_TYPES[case]
    parsed = get_parser(task)(files(tmp_path))
    assert [s for s in parsed.records.values() if s] == []
    (problem,) = parsed.problems
    assert reason in problem.reason and "where the format has text" in problem.reason


def test_parsers_only_read_their_tasks_files(tmp_path: Path) -> None:
    """Each parser, given exactly its task's file keys, never asks for another key."""
    for name, task in TASKS.items():
        files = {}
        for key in task.files:
            path = tmp_path / name / key
            if FILES[key].is_archive:
                path.mkdir(parents=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("")
            files[key] = path
        try:
            get_parser(name)(files)
        except FormatError as err:
            assert "the parser needs" not in str(err), (name, str(err))
            assert "not found inside" in str(err)


def test_get_parser_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(UnknownNameError) as err:
        get_parser("nope")
    message = str(err.value)
    assert "'nope'" in message
    for name in TASKS:
        assert name in message


def test_member_of_missing_key_lists_given_keys(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"needs 'a/b.zip' but was given only \['c/d.json'\]"):
        member({"c/d.json": tmp_path}, "a/b.zip", "x.json")
