"""Peak memory and time of `vecomp prepare` on generated files of the real datasets' sizes.

GQA's ``train_balanced_questions.json`` is ~1.4 GB of JSON, VQAv2's train2014 annotations and
Karpathy's ``dataset_coco.json`` hundreds of MB. This script writes files in the official formats
at the real record counts (``--scale`` multiplies them; ``--tiny`` writes a few hundred records,
a smoke test), then runs each task's parser alone and the whole ``vecomp prepare`` in a fresh
subprocess each and reports the subprocess's peak resident memory (``wait4``'s ``ru_maxrss``) and
wall time. ``--compare`` repeats every run with the parsers' JSON files read whole (``json.loads``
of the file's text, the reading this project used before it streamed them) as a baseline measured
in the same run. Everything is written to a temporary folder (or ``--workdir``), deleted at exit
unless ``--keep``.

    python bench/prepare_memory.py [--scale S | --tiny] [--tasks gqa,vqav2,coco_retrieval]
                                   [--stages parse,prepare] [--compare] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GB = 1024**3
MB = 1e6
TASKS = ("gqa", "vqav2", "coco_retrieval")
STAGES = ("parse", "prepare")
READS = ("streamed", "whole-file")

# Real sizes: GQA balanced questions (questions1.2), VQAv2 (v2, train2014/val2014 with their
# COCO images), Karpathy's COCO splits (113,287 train+restval, 5,000 val, 5,000 test images).
GQA_QUESTIONS = {"train": 943_000, "val": 132_062, "testdev": 12_578}
GQA_IMAGES = {"train": 72_140, "val": 10_234, "testdev": 398}
VQA_QUESTIONS = {"train2014": 443_757, "val2014": 214_354}
VQA_IMAGES = {"train2014": 82_783, "val2014": 40_504}
KARPATHY_IMAGES = {"train": 82_783, "restval": 30_504, "val": 5_000, "test": 5_000}
TINY = 0.0005  # the --tiny scale: ~470 GQA train questions, ~220 VQAv2 train questions

WORDS = (
    "man woman person people dog cat horse bird table chair car bus train truck bike boat plane "
    "street road sky grass tree water building wall window door floor shirt jacket hat glasses "
    "plate bowl cup bottle pizza cake sandwich banana apple orange phone laptop screen clock sign "
    "pole fence bench umbrella kite ball bag bed couch field beach snow mountain ocean river "
    "red blue green white black brown yellow gray orange pink large small tall short young old "
    "wooden metal plastic standing sitting walking riding holding wearing eating looking playing "
    "on in under near behind next to of with at the a an and left right top bottom front side"
).split()
NOUNS = WORDS[:64]
COLORS = WORDS[64:80]
OPERATIONS = (
    "select",
    "relate",
    "filter color",
    "filter material",
    "query name",
    "exist",
    "verify color",
    "choose rel",
    "and",
    "or",
    "same color",
    "different",
)
GQA_TYPES = (
    ("query", "rel", "relS"),
    ("verify", "attr", "verifyAttrC"),
    ("logical", "obj", "existAndC"),
    ("choose", "attr", "chooseAttr"),
    ("compare", "attr", "sameMaterialC"),
    ("query", "cat", "categoryRelS"),
    ("verify", "rel", "existRelS"),
    ("query", "attr", "directOf"),
)
VQA_TYPES = (
    "what is",
    "how many",
    "is the",
    "what color is the",
    "are there",
    "what",
    "is this",
    "where is the",
    "what is the man",
    "does the",
    "which",
    "why",
)


# =============================================================================== generation


def _sentence(rng: random.Random, low: int, high: int) -> list[str]:
    return rng.choices(WORDS, k=rng.randint(low, high))


def _answers(rng: random.Random, n: int) -> list[str]:
    """A Zipf-like answer vocabulary: a few very frequent answers and a long tail."""
    head = ["yes", "no", "2", "1", "3", "white", "red", "blue", "black", "green", "man", "4"]
    tail = [f"{rng.choice(COLORS)} {rng.choice(NOUNS)}" for _ in range(n)] + NOUNS + COLORS
    return head + sorted(set(tail))


def _zipf(rng: random.Random, values: list[str]) -> str:
    return values[min(int(rng.paretovariate(0.9)) - 1, len(values) - 1)]


def _member(key: str, text: str, first: bool) -> str:
    return ("" if first else ", ") + json.dumps(key) + ": " + text


def _write_object(path: Path, members) -> None:
    """Write ``{"key": value, ...}`` on one line from (key, JSON text) pairs, as they come."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        out.write("{")
        for i, (key, text) in enumerate(members):
            out.write(_member(key, text, i == 0))
        out.write("}")


class ArrayWriter:
    """``{head..., "key": [item, ...], tail...}`` on one line, the items written as they come."""

    def __init__(self, path: Path, head: dict[str, str], key: str, tail: dict[str, str]):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.out = path.open("w", encoding="utf-8")
        first = [_member(k, v, i == 0) for i, (k, v) in enumerate(head.items())]
        self.out.write("{" + "".join(first) + _member(key, "[", not head))
        self.tail, self.n = tail, 0

    def add(self, item) -> None:
        self.out.write(("" if self.n == 0 else ", ") + json.dumps(item))
        self.n += 1

    def close(self) -> None:
        self.out.write("]" + "".join(_member(k, v, False) for k, v in self.tail.items()) + "}")
        self.out.close()


def gqa_image_ids(rng: random.Random, n: int, start: int) -> list[str]:
    """Visual Genome ids ("2354786") and, for a fifth of the images, "n"-prefixed ones."""
    return [f"n{start + i}" if rng.random() < 0.2 else str(2_300_000 + start + i) for i in range(n)]


def gqa_question(rng: random.Random, image_id: str, qid: str, answers: list[str]) -> dict:
    """One question shaped like the released balanced files (~1.5 KB of JSON)."""
    objects = [(rng.choice(NOUNS), str(rng.randrange(100_000, 3_500_000))) for _ in range(3)]
    steps = []
    for s in range(rng.randint(3, 5)):
        noun, oid = objects[s % len(objects)]
        argument = f"{noun} ({oid})" if s % 2 == 0 else rng.choice(COLORS)
        steps.append(
            {
                "operation": rng.choice(OPERATIONS),
                "dependencies": [s - 1] if s else [],
                "argument": argument,
            }
        )
    words = _sentence(rng, 5, 12)
    answer = _zipf(rng, answers)
    structural, semantic, detailed = rng.choice(GQA_TYPES)
    base = int(qid)
    return {
        "semantic": steps,
        "entailed": [f"{base + 7 * k + 1:08d}" for k in range(rng.randint(27, 70))],
        "equivalent": [qid] + [f"{base + 7 * k + 3:08d}" for k in range(rng.randint(0, 4))],
        "question": " ".join(words).capitalize() + "?",
        "imageId": image_id,
        "isBalanced": True,
        "groups": {
            "global": None if rng.random() < 0.6 else rng.choice(NOUNS),
            "local": f"{rng.randint(0, 15):02d}-{words[0]}_{answer.split()[-1]}",
        },
        "answer": answer,
        "semanticStr": "->".join(
            f"{st['operation']}: {st['argument']} {st['dependencies']}" for st in steps
        ),
        "annotations": {
            "answer": {} if rng.random() < 0.7 else {"0": objects[0][1]},
            "question": {str(rng.randint(1, len(words))): objects[0][1]},
            "fullAnswer": {"1": objects[0][1]},
        },
        "types": {"detailed": detailed, "semantic": semantic, "structural": structural},
        "fullAnswer": f"The {words[0]} is {answer}.",
    }


def write_gqa(folder: Path, scale: float, seed: int) -> tuple[dict, list[str], int]:
    """{file key: path}, every image id, the number of questions."""
    rng = random.Random(seed)
    answers = _answers(rng, 1800)
    root = folder / "gqa" / "questions1.2"
    all_images, total = [], 0
    for s, (name, n_questions) in enumerate(GQA_QUESTIONS.items()):
        n = max(3, round(n_questions * scale))
        images = gqa_image_ids(rng, max(1, round(GQA_IMAGES[name] * scale)), 100_000 * s)
        all_images += images
        # qids: 8-9 digit strings, unique across the three files (a bijection modulo 10**9)
        qids = [f"{(7919 * (i + 2_000_000 * s) + 2_930_152) % 10**9:08d}" for i in range(n)]
        members = (
            (qid, json.dumps(gqa_question(rng, rng.choice(images), qid, answers))) for qid in qids
        )
        _write_object(root / f"{name}_balanced_questions.json", members)
        total += n
    return {"gqa/questions1.2.zip": root}, all_images, total


def vqa_annotation(rng: random.Random, question_id: int, image_id: int, answers) -> dict:
    truth = _zipf(rng, answers)
    given = [truth if rng.random() < 0.75 else _zipf(rng, answers) for _ in range(10)]
    majority = max(sorted(set(given)), key=given.count)
    return {
        "question_type": rng.choice(VQA_TYPES),
        "multiple_choice_answer": majority,
        "answers": [
            {
                "answer": a,
                "answer_confidence": rng.choice(("yes", "yes", "maybe", "no")),
                "answer_id": k + 1,
            }
            for k, a in enumerate(given)
        ],
        "image_id": image_id,
        "answer_type": "yes/no" if truth in ("yes", "no") else rng.choice(("number", "other")),
        "question_id": question_id,
    }


def write_vqav2(folder: Path, scale: float, seed: int) -> tuple[dict, list[str], int]:
    rng = random.Random(seed)
    answers = _answers(rng, 6000)
    files, all_images, total = {}, [], 0
    info = {
        "description": "This is v2.0 of the VQA dataset.",
        "url": "http://visualqa.org",
        "version": "2.0",
        "year": 2017,
        "contributor": "VQA Team",
        "date_created": "2017-04-26 17:07:13",
    }
    license = {"url": "http://creativecommons.org/licenses/by/4.0/", "name": "CC BY 4.0"}
    for s, (sub, n_questions) in enumerate(VQA_QUESTIONS.items()):
        part = "Train" if sub == "train2014" else "Val"
        n = max(4, round(n_questions * scale))
        n_images = max(2, round(VQA_IMAGES[sub] * scale))
        image_ids = [9 + 7 * i + 3 * s for i in range(n_images)]  # disjoint between the two
        all_images += [str(i) for i in image_ids]
        head = {
            "info": json.dumps(info),
            "task_type": '"Open-Ended"',
            "data_type": '"mscoco"',
            "license": json.dumps(license),
            "data_subtype": json.dumps(sub),
        }
        q_dir = folder / "vqav2" / f"v2_Questions_{part}_mscoco"
        a_dir = folder / "vqav2" / f"v2_Annotations_{part}_mscoco"
        questions = ArrayWriter(
            q_dir / f"v2_OpenEnded_mscoco_{sub}_questions.json", head, "questions", {}
        )
        del head["task_type"]
        annotations = ArrayWriter(
            a_dir / f"v2_mscoco_{sub}_annotations.json", head, "annotations", {}
        )
        seen: dict[int, int] = {}
        for j in range(n):
            image_id = image_ids[j * n_images // n]
            k = seen[image_id] = seen.get(image_id, -1) + 1
            qid = image_id * 1000 + k  # as in the released files
            words = _sentence(rng, 3, 9)
            questions.add(
                {
                    "image_id": image_id,
                    "question": " ".join(words).capitalize() + "?",
                    "question_id": qid,
                }
            )
            annotations.add(vqa_annotation(rng, qid, image_id, answers))
        questions.close()
        annotations.close()
        files[f"vqav2/v2_Questions_{part}_mscoco.zip"] = q_dir
        files[f"vqav2/v2_Annotations_{part}_mscoco.zip"] = a_dir
        total += n
    return files, all_images, total


def karpathy_image(rng: random.Random, imgid: int, split: str, sentid: int) -> dict:
    filepath = "train2014" if split == "train" else "val2014"
    cocoid = 100_000 + 3 * imgid + 1
    n = 5 if rng.random() < 0.98 else rng.randint(6, 7)
    sentences = []
    for k in range(n):
        tokens = _sentence(rng, 8, 16)
        sentences.append(
            {
                "tokens": tokens,
                "raw": " ".join(tokens).capitalize() + ". ",
                "imgid": imgid,
                "sentid": sentid + k,
            }
        )
    return {
        "filepath": filepath,
        "sentids": [sentid + k for k in range(n)],
        "filename": f"COCO_{filepath}_{cocoid:012d}.jpg",
        "imgid": imgid,
        "split": split,
        "sentences": sentences,
        "cocoid": cocoid,
    }


def write_karpathy(folder: Path, scale: float, seed: int) -> tuple[dict, list[str], int]:
    rng = random.Random(seed)
    splits = [s for s, n in KARPATHY_IMAGES.items() for _ in range(max(1, round(n * scale)))]
    rng.shuffle(splits)
    root = folder / "karpathy" / "caption_datasets"
    images = ArrayWriter(root / "dataset_coco.json", {}, "images", {"dataset": '"coco"'})
    ids, sentid = [], 0
    for imgid, split in enumerate(splits):
        image = karpathy_image(rng, imgid, split, sentid)
        images.add(image)
        ids.append(str(image["cocoid"]))
        sentid += len(image["sentences"])
    images.close()
    return {"karpathy/caption_datasets.zip": root}, ids, sentid


WRITERS = {"gqa": write_gqa, "vqav2": write_vqav2, "coco_retrieval": write_karpathy}
DATA_FOLDER = {"gqa": "gqa", "vqav2": "vqav2", "coco_retrieval": "karpathy"}  # under the workdir


def write_pool(path: Path, image_ids: list[str]) -> Path:
    """A pool index (index_pool.py's columns) in which every image decodes."""
    import pandas as pd

    pd.DataFrame(
        {
            "image_id": image_ids,
            "path": [f"images/{i}.jpg" for i in image_ids],
            "width": 640,
            "height": 480,
            "sha256": None,
            "error": None,
        }
    ).to_parquet(path, index=False)
    return path


def input_bytes(files: dict[str, Path]) -> int:
    return sum(f.stat().st_size for p in files.values() for f in Path(p).rglob("*.json"))


# =============================================================================== measurement


def whole_members(path: Path):
    """The reading the parsers replaced: ``json.loads`` of the whole text."""
    from vecomp.data.parsers import read_json_object

    return iter(read_json_object(path).items())


def whole_items(path: Path, key: str):
    from vecomp.data.parsers import read_json_object

    return iter(read_json_object(path).get(key, []))


def child(spec: dict) -> None:
    """Run in the measured subprocess: one stage of one task; print its counts as JSON."""
    from vecomp.data import parsers, prepare

    parsers.get_parser(spec["task"])  # imports the parser modules
    if spec["read"] == "whole-file":
        for name in ("gqa", "vqav2", "karpathy"):
            module = sys.modules[f"vecomp.data.parsers.{name}"]
            for streamed, whole in (
                ("stream_members", whole_members),
                ("stream_items", whole_items),
            ):
                if hasattr(module, streamed):
                    setattr(module, streamed, whole)
    files = {k: Path(v) for k, v in spec["files"].items()}
    if spec["stage"] == "parse":
        parsed = parsers.get_parser(spec["task"])(files)
        counts = {s: len(r) for s, r in parsed.records.items()}
    else:
        argv = ["--task", spec["task"], "--pool-index", spec["pool"], "--out", spec["out"]]
        for key, path in files.items():
            argv += ["--file", f"{key}={path}"]
        prepare.main(argv)
        report = json.loads((Path(spec["out"]) / "report.json").read_text())
        counts = report["samples"]
    print("COUNTS " + json.dumps(counts), flush=True)


def measure(spec: dict) -> dict:
    """Peak RSS (bytes) and wall seconds of ``child(spec)`` in a fresh interpreter."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", json.dumps(spec)], stdout=subprocess.PIPE, text=True
    )
    out = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{spec['task']} {spec['stage']} ({spec['read']}) failed: {out[-2000:]}")
    counts = json.loads(next(x for x in out.splitlines() if x.startswith("COUNTS "))[7:])
    return {"peak_rss": usage.ru_maxrss * 1024, "seconds": seconds, "counts": counts}


def run(args: argparse.Namespace, folder: Path) -> list[dict]:
    rows = []
    for task in args.tasks:
        start = time.perf_counter()
        files, images, records = WRITERS[task](folder, args.scale, args.seed)
        written = time.perf_counter() - start
        pool = write_pool(folder / f"{task}_pool.parquet", images)
        size = input_bytes(files)
        print(
            f"{task}: wrote {size / MB:,.0f} MB ({records:,} records) in {written:.0f} s",
            flush=True,
        )
        for path in sorted(f for p in files.values() for f in Path(p).rglob("*.json")):
            print(f"  {path.name}: {path.stat().st_size / MB:,.1f} MB", flush=True)
        for stage in args.stages:
            for read in READS if args.compare else READS[:1]:
                label = args.label if read == READS[0] else read
                spec = {
                    "task": task,
                    "stage": stage,
                    "read": read,
                    "pool": str(pool),
                    "out": str(folder / f"out_{task}_{stage}_{read}"),
                    "files": {k: str(v) for k, v in files.items()},
                }
                result = measure(spec)
                rows.append(
                    {
                        "task": task,
                        "stage": stage,
                        "read": label,
                        "input_bytes": size,
                        "records": records,
                        **result,
                    }
                )
                print_row(rows[-1])
                shutil.rmtree(spec["out"], ignore_errors=True)
        if not args.keep:  # the next task's files need the disk space
            shutil.rmtree(folder / DATA_FOLDER[task], ignore_errors=True)
    return rows


HEADER = (
    f"{'task':<16}{'stage':<9}{'read':<12}{'input MB':>10}{'records':>11}"
    f"{'peak RSS GB':>13}{'seconds':>9}"
)


def print_row(row: dict) -> None:
    print(
        f"{row['task']:<16}{row['stage']:<9}{row['read']:<12}{row['input_bytes'] / MB:>10,.0f}"
        f"{row['records']:>11,}{row['peak_rss'] / GB:>13.2f}{row['seconds']:>9.1f}",
        flush=True,
    )


def print_summary(rows: list[dict]) -> None:
    print("\n" + HEADER)
    for row in rows:
        print_row(row)
    pairs = {}
    for row in rows:
        pairs.setdefault((row["task"], row["stage"]), {})[row["read"]] = row
    for (task, stage), by_read in pairs.items():
        if len(by_read) == 2:
            own, whole = (by_read[r] for r in sorted(by_read, key=lambda r: r == "whole-file"))
            ratio = own["peak_rss"] / whole["peak_rss"]
            print(f"{task} {stage}: {own['read']} peak = {ratio:.2f} x whole-file peak")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="x the real record counts")
    parser.add_argument("--tiny", action="store_true", help=f"--scale {TINY}: a smoke test")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated")
    parser.add_argument("--stages", default=",".join(STAGES), help="parse and/or prepare")
    parser.add_argument(
        "--compare", action="store_true", help="also measure each run with the files read whole"
    )
    parser.add_argument("--label", default=READS[0], help="the name of the parsers' own read")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="where to write (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tiny:
        args.scale = TINY
    args.tasks = [t for t in args.tasks.split(",") if t]
    args.stages = [s for s in args.stages.split(",") if s]
    unknown = sorted(set(args.tasks) - set(TASKS)) + sorted(set(args.stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown task(s) or stage(s) {unknown}; tasks {TASKS}, stages {STAGES}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0
    folder = Path(tempfile.mkdtemp(prefix="prepare_memory_", dir=args.workdir))
    try:
        print(f"scale {args.scale}, files under {folder}", flush=True)
        rows = run(args, folder)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print_summary(rows)
    if args.json:
        meta = {
            "scale": args.scale,
            "seed": args.seed,
            "compare": args.compare,
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
        }
        args.json.write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
