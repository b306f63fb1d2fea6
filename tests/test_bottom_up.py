"""Precomputed bottom-up region features (``type: precomputed``) imported into feature stores.

The files here are written the way their generators wrote them, not by vecomp: Python's
``csv.DictWriter`` with a tab delimiter (its default ``\\r\\n`` line end), each array base64 of
its raw little-endian bytes, in LXMERT's ten-field layout (airsplay/lxmert
``data/mscoco_imgfeat/extract_coco_image.py``) or the detector's own six-field one
(peteanderson80/bottom-up-attention ``tools/generate_tsv.py``: width before height). Expected
store contents are computed here from the arrays written, not read back through vecomp.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from vecomp.config import ConfigError, validate_config
from vecomp.data.registry import POOLS
from vecomp.encoders.factory import create_encoder
from vecomp.features import extract
from vecomp.features.bottom_up import BadRecordError, parse_record
from vecomp.features.store import FeatureStore
from vecomp.settings import SCHEMA

from .workflow_helpers import ROOT, TINY, copy_project, run, tree_digest

DIM = 16
# The generators' own FIELDNAMES (csv.DictWriter writes them in this order), not vecomp's.
LXMERT_FIELDS = [
    "img_id",
    "img_h",
    "img_w",
    "objects_id",
    "objects_conf",
    "attrs_id",
    "attrs_conf",
    "num_boxes",
    "boxes",
    "features",
]
BUTD_FIELDS = ["image_id", "image_w", "image_h", "num_boxes", "boxes", "features"]


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()


def detections(seed: int, n: int, width: int = 640, height: int = 480) -> dict:
    """What the detector script returns for one image: n boxes in pixels, D-dim features."""
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(0, width / 2, n)
    y0 = rng.uniform(0, height / 2, n)
    boxes = np.stack(
        [x0, y0, x0 + rng.uniform(1, width / 2, n), y0 + rng.uniform(1, height / 2, n)], axis=1
    ).astype(np.float32)
    boxes[0] = [0, 0, width - 1, height - 1]  # the whole image, as the detector often keeps
    features = rng.gamma(1.0, 2.0, (n, DIM)).astype(np.float32)  # post-ReLU, non-negative
    return {
        "width": width,
        "height": height,
        "boxes": boxes,
        "features": features,
        "objects": rng.integers(0, 1600, n),
        "attrs": rng.integers(0, 400, n),
        "conf": rng.uniform(0.2, 1, n).astype(np.float32),
    }


def lxmert_row(image_id: str, d: dict) -> dict:
    return {
        "img_id": image_id,
        "img_h": d["height"],
        "img_w": d["width"],
        "objects_id": b64(d["objects"].astype(np.int64)),
        "objects_conf": b64(d["conf"]),
        "attrs_id": b64(d["attrs"].astype(np.int64)),
        "attrs_conf": b64(d["conf"]),
        "num_boxes": len(d["boxes"]),
        "boxes": b64(d["boxes"]),
        "features": b64(d["features"]),
    }


def butd_row(image_id: str, d: dict) -> dict:
    return {
        "image_id": image_id,
        "image_w": d["width"],
        "image_h": d["height"],
        "num_boxes": len(d["boxes"]),
        "boxes": b64(d["boxes"]),
        "features": b64(d["features"]),
    }


def write_tsv(path: Path, fields, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, delimiter="\t")
        writer.writerows(rows)
    return path


def pool_index(image_ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "image_id": image_ids,
            "path": [f"/nowhere/{i}.jpg" for i in image_ids],
            "width": 640,
            "height": 480,
            "sha256": [f"{i:0>64}" for i in image_ids],
            "error": None,
        }
    )


# COCO as LXMERT ships it: train2014 and val2014 files, COCO_<split>_<12 digits> ids, 36 boxes
# for most images and another count for one (the 10-100 release varies per image).
COCO = {
    "COCO_train2014_000000458752": detections(1, 36),
    "COCO_train2014_000000000009": detections(2, 36, 500, 375),
    "COCO_val2014_000000391895": detections(3, 12, 480, 640),
}
COCO_POOL_IDS = {
    "COCO_train2014_000000458752": "458752",
    "COCO_train2014_000000000009": "9",
    "COCO_val2014_000000391895": "391895",
}


@pytest.fixture
def coco_files(tmp_path) -> Path:
    """An extracted release: a folder with the two split files."""
    folder = tmp_path / "mscoco_imgfeat"
    rows = {k: lxmert_row(k, d) for k, d in COCO.items()}
    write_tsv(
        folder / "train2014_obj36.tsv", LXMERT_FIELDS, [rows[k] for k in COCO if "train" in k]
    )
    write_tsv(folder / "val2014_obj36.tsv", LXMERT_FIELDS, [rows[k] for k in COCO if "val" in k])
    return folder


def import_store(
    index: pd.DataFrame,
    sources: list[Path],
    out: Path,
    *extra: str,
    pool: str = "coco",
    dim: int = DIM,
) -> FeatureStore:
    index_path = out.parent / f"{out.name}-index.parquet"
    index.to_parquet(index_path)
    spec = {"type": "precomputed", "files": {pool: [str(s) for s in sources]}, "dim": dim}
    argv = [
        "--encoder",
        "bottom_up",
        "--spec",
        json.dumps(spec),
        "--pool",
        pool,
        "--pool-index",
        str(index_path),
        "--out",
        str(out),
        "--images-per-shard",
        "2",
        "--sources",
        *map(str, sources),
        *extra,
    ]
    assert extract.main(argv) == 0
    return FeatureStore(out)


def expected(d: dict) -> tuple[np.ndarray, np.ndarray]:
    """Tokens and boxes as the store must hold them: float16 of the float32 values, boxes by
    the image's width and height, clipped to [0, 1]."""
    w, h = d["width"], d["height"]
    boxes = np.clip(d["boxes"] / np.array([w, h, w, h], dtype=np.float32), 0, 1)
    return d["features"].astype(np.float16), boxes.astype(np.float16)


def test_lxmert_files_become_a_store_bit_for_bit(coco_files, tmp_path):
    store = import_store(
        pool_index(sorted(COCO_POOL_IDS.values())), [coco_files], tmp_path / "store"
    )
    assert sorted(store.image_ids) == sorted(COCO_POOL_IDS.values())
    for tsv_id, d in COCO.items():
        tokens, boxes = store._rows(COCO_POOL_IDS[tsv_id])  # the stored float16 rows
        want_tokens, want_boxes = expected(d)
        assert tokens.numpy().tobytes() == want_tokens.tobytes()
        assert boxes.numpy().tobytes() == want_boxes.tobytes()
    assert store.manifest["tokens_per_image"] == {"min": 12, "max": 36, "mean": 28.0}
    assert store.manifest["info"]["family"] == "region"


def test_boxes_are_divided_by_width_and_height_by_hand(tmp_path):
    d = detections(0, 2, width=640, height=480)
    d["boxes"][1] = [32, 48, 64, 96]  # -> 0.05, 0.1, 0.1, 0.2
    d["boxes"][0] = [-3, 0, 700, 480]  # outside the image: clipped
    tsv = write_tsv(tmp_path / "f.tsv", LXMERT_FIELDS, [lxmert_row("COCO_val2014_000000000042", d)])
    _, boxes = import_store(pool_index(["42"]), [tsv], tmp_path / "store").get("42")
    assert boxes[1].tolist() == pytest.approx([0.05, 0.1, 0.1, 0.2], abs=1e-3)
    assert boxes[0].tolist() == [0.0, 0.0, 1.0, 1.0]


def test_the_detectors_own_layout_has_width_before_height_and_parts(tmp_path):
    """trainval_36 style: six fields, integer COCO ids, a release split as .tsv.0 / .tsv.1."""
    wide, tall = detections(5, 36, 640, 427), detections(6, 10, 427, 640)
    folder = tmp_path / "trainval_36"
    write_tsv(
        folder / "trainval_resnet101_faster_rcnn_genome_36.tsv.0",
        BUTD_FIELDS,
        [butd_row("458752", wide)],
    )
    write_tsv(
        folder / "trainval_resnet101_faster_rcnn_genome_36.tsv.1",
        BUTD_FIELDS,
        [butd_row("9", tall)],
    )
    (folder / "README.txt").write_text("not a feature file")
    store = import_store(pool_index(["458752", "9"]), [folder], tmp_path / "store")
    for image_id, d in (("458752", wide), ("9", tall)):
        tokens, boxes = store._rows(image_id)
        assert tokens.numpy().tobytes() == expected(d)[0].tobytes()
        assert boxes.numpy().tobytes() == expected(d)[1].tobytes()
    sources = store.manifest["info"]["sources"]
    assert [Path(s["path"]).name for s in sources] == [
        "trainval_resnet101_faster_rcnn_genome_36.tsv.0",
        "trainval_resnet101_faster_rcnn_genome_36.tsv.1",
    ]
    for source in sources:
        data = Path(source["path"]).read_bytes()
        assert source["sha256"] == hashlib.sha256(data).hexdigest()
        assert source["bytes"] == len(data) and source["images"] == 1


def test_lines_end_as_python_csv_wrote_them(coco_files):
    lines = (coco_files / "train2014_obj36.tsv").read_bytes().split(b"\n")
    assert lines[0].endswith(b"\r") and lines[-1] == b""  # what the readers must expect
    record = parse_record(lines[0] + b"\n")
    assert record.image_id in COCO and record.features.shape[1] == DIM


@pytest.mark.parametrize(
    "pool, tsv_id, pool_id",
    [
        ("gqa", "2354786", "2354786"),
        ("gqa", "n336443", "n336443"),
        ("nlvr2", "train-10171-0-img0", "train-10171-0-img0"),
        ("flickr30k", "1000092795", "1000092795"),
    ],
)
def test_other_pools_ids_as_the_releases_write_them(tmp_path, pool, tsv_id, pool_id):
    tsv = write_tsv(tmp_path / "f.tsv", LXMERT_FIELDS, [lxmert_row(tsv_id, detections(7, 36))])
    store = import_store(pool_index([pool_id]), [tsv], tmp_path / "store", pool=pool)
    assert store.image_ids == [pool_id]


def test_an_image_missing_from_the_files_fails_listing_it(coco_files, tmp_path):
    index = pool_index([*COCO_POOL_IDS.values(), "777"])
    with pytest.raises(extract.UnreadableImagesError, match="777: not in the precomputed"):
        import_store(index, [coco_files], tmp_path / "store")
    assert not (tmp_path / "store" / "manifest.json").exists()


def test_missing_and_malformed_images_are_skipped_and_recorded_when_asked(coco_files, tmp_path):
    bad = lxmert_row("COCO_val2014_000000000005", detections(9, 4))
    bad["features"] = bad["features"][:-8]  # 4 boxes, features cut short
    write_tsv(coco_files / "broken.tsv", LXMERT_FIELDS, [bad])
    index = pool_index([*COCO_POOL_IDS.values(), "5", "777"])
    store = import_store(index, [coco_files], tmp_path / "store", "--on-bad-images", "skip")
    skipped = {s["image_id"]: s["reason"] for s in store.manifest["skipped"]}
    assert sorted(skipped) == ["5", "777"]
    assert "broken.tsv, line 1" in skipped["5"] and "num_boxes is 4" in skipped["5"]
    assert len(store) == 3


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda row: row.update(features="@@not base64@@"), "features is not base64"),
        (lambda row: row.update(num_boxes=0), "num_boxes is 0"),
        (lambda row: row.update(boxes=b64(np.zeros(5, np.float32))), "boxes hold 5 values"),
        (lambda row: row.update(img_w="wide"), "image width is b'wide'"),
        (lambda row: row.update(features=b64(np.full((36, DIM), np.nan, np.float32))), "NaN"),
    ],
)
def test_a_malformed_record_names_its_problem(break_it, message):
    row = lxmert_row("COCO_val2014_000000000001", detections(3, 36))
    break_it(row)
    line = "\t".join(str(row[k]) for k in LXMERT_FIELDS).encode() + b"\r\n"
    with pytest.raises(BadRecordError, match=message):
        parse_record(line)


def test_a_line_of_another_format_is_refused_naming_the_layouts():
    with pytest.raises(BadRecordError, match="3 tab-separated fields"):
        parse_record(b"a\tb\tc\r\n")


def test_the_same_image_twice_is_fine_when_identical_and_refused_when_not(coco_files, tmp_path):
    row = lxmert_row("COCO_val2014_000000391895", COCO["COCO_val2014_000000391895"])
    write_tsv(coco_files / "copy.tsv", LXMERT_FIELDS, [row])
    index = pool_index(sorted(COCO_POOL_IDS.values()))
    import_store(index, [coco_files], tmp_path / "same")
    write_tsv(coco_files / "copy.tsv", LXMERT_FIELDS, [lxmert_row(row["img_id"], detections(4, 3))])
    with pytest.raises(extract.BottomUpError, match="391895 has two different records"):
        import_store(index, [coco_files], tmp_path / "different")


def test_features_of_another_width_ask_for_the_dim_option(coco_files, tmp_path):
    with pytest.raises(extract.BottomUpError, match=f"{DIM}-dimensional.*`dim: {DIM}`"):
        import_store(pool_index(["9"]), [coco_files], tmp_path / "store", dim=2048)


def test_ids_of_another_pool_are_refused(tmp_path):
    tsv = write_tsv(
        tmp_path / "f.tsv", LXMERT_FIELDS, [lxmert_row("train-1-0-img0", detections(1, 3))]
    )
    with pytest.raises(extract.BottomUpError, match="another image pool"):
        import_store(pool_index(["1"]), [tsv], tmp_path / "store", pool="coco")


def test_a_folder_without_feature_files_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(extract.BottomUpError, match="empty: no bottom-up feature files"):
        import_store(pool_index(["1"]), [tmp_path / "empty"], tmp_path / "store")


def test_killed_import_resumes_to_identical_bytes(coco_files, tmp_path, monkeypatch):
    index = pool_index(sorted(COCO_POOL_IDS.values()))
    whole = import_store(index, [coco_files], tmp_path / "whole").folder
    reads = []
    original = extract.Catalogue.read

    def dies_on_third_image(self, image_id):
        reads.append(image_id)
        if len(reads) == 3:
            raise KeyboardInterrupt
        return original(self, image_id)

    monkeypatch.setattr(extract.Catalogue, "read", dies_on_third_image)
    with pytest.raises(KeyboardInterrupt):
        import_store(index, [coco_files], tmp_path / "resumed")
    monkeypatch.setattr(extract.Catalogue, "read", original)
    import_store(index, [coco_files], tmp_path / "resumed")
    assert tree_digest(tmp_path / "resumed") == tree_digest(whole)


def test_changed_feature_files_do_not_reuse_old_shards(coco_files, tmp_path):
    index = pool_index(sorted(COCO_POOL_IDS.values()))
    out = tmp_path / "store"
    import_store(index, [coco_files], out)
    (out / "manifest.json").unlink()  # as if killed after the first shards
    row = lxmert_row("COCO_train2014_000000000009", detections(11, 36))
    write_tsv(
        coco_files / "train2014_obj36.tsv",
        LXMERT_FIELDS,
        [row, lxmert_row("COCO_train2014_000000458752", COCO["COCO_train2014_000000458752"])],
    )
    tokens, _ = import_store(index, [coco_files], out)._rows("9")
    assert tokens.numpy().tobytes() == expected(detections(11, 36))[0].tobytes()


def test_the_encoder_spec_is_checked():
    with pytest.raises(Exception, match="non-empty list"):
        create_encoder({"type": "precomputed", "files": {"coco": []}})
    encoder = create_encoder({"type": "precomputed", "files": {"coco": ["x.tsv"]}})
    assert (encoder.family, encoder.dim) == ("region", 2048)
    with pytest.raises(Exception, match="no files for image pool 'gqa'"):
        encoder.sources("gqa")


def _config(tmp_path, files: dict, source: str = "official") -> dict:
    return {
        "tasks": {"vqav2": {}, "gqa": {}},
        "data": {"source": source},
        "encoders": {"bottom_up": {"type": "precomputed", "files": files}},
    }


def test_config_names_every_problem_of_a_precomputed_encoder(tmp_path):
    tsv = write_tsv(tmp_path / "mine.tsv", LXMERT_FIELDS, [])
    validate_config(
        _config(tmp_path, {"coco": ["lxmert/mscoco_train2014_obj36.zip"], "gqa": [str(tsv)]}),
        SCHEMA,
    )
    bad = _config(tmp_path, {"coco": ["lxmert/mscoco_train2014_obj36.zp"]}, source="synthetic")
    with pytest.raises(ConfigError) as err:
        validate_config(bad, SCHEMA)
    assert "encoders.bottom_up.files.gqa: missing" in str(err.value)
    assert "'lxmert/mscoco_train2014_obj36.zp' is neither a registry key" in str(err.value)
    published = _config(
        tmp_path,
        {"coco": ["lxmert/mscoco_train2014_obj36.zip"], "gqa": [str(tsv)]},
        source="synthetic",
    )
    with pytest.raises(ConfigError, match="not part of the synthetic suite"):
        validate_config(published, SCHEMA)


# -- in the workflow ------------------------------------------------------------------------


def _with_bottom_up(config: dict, files: dict) -> dict:
    config["encoders"]["bottom_up"] = {"type": "precomputed", "files": files, "dim": DIM}
    return config


def test_published_feature_files_are_downloaded_extracted_and_imported(tmp_path):
    """The paper profile with LXMERT's releases: planned as downloads of the registry's files,
    extracted, and passed to the import as folders (a dry run: nothing is fetched)."""
    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    config["tasks"] = {"vqav2": config["tasks"]["vqav2"]}
    coco = ["lxmert/mscoco_train2014_obj36.zip", "lxmert/mscoco_val2014_obj36.zip"]
    changed = tmp_path / "paper.yaml"
    changed.write_text(yaml.safe_dump(_with_bottom_up(config, {"coco": coco})))
    work = copy_project(tmp_path / "work", changed)
    out = run(["snakemake", "-n", "-p", "features"], work).stdout
    for key in coco:
        assert f"results/downloads/{key}" in out
    assert (
        "--sources results/raw/lxmert/mscoco_train2014_obj36 "
        "results/raw/lxmert/mscoco_val2014_obj36"
    ) in out


def _write_pool_features(work: Path, pool: str) -> Path:
    """Every image of the pool in one LXMERT-style file, with LXMERT's ids for COCO."""
    ids = sorted(pd.read_parquet(work / f"results/prepared/pools/{pool}.parquet").image_id)
    name = {"coco": lambda i: f"COCO_val2014_{int(i):012d}"}.get(pool, str)
    rows = [lxmert_row(name(i), detections(k, 3 + k % 5)) for k, i in enumerate(ids)]
    return write_tsv(work / "bottom_up" / f"{pool}_obj36.tsv", LXMERT_FIELDS, rows)


@pytest.mark.slow
def test_precomputed_features_train_like_any_encoder(tiny_run, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(tiny_run, work, symlinks=True)
    files = {p: [str(_write_pool_features(work, p).relative_to(work))] for p in POOLS}
    config = _with_bottom_up(yaml.safe_load(TINY.read_text()), files)
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    runs = [
        f"results/runs/{task}/bottom_up+grid/seed0-vedrop0/metrics.json"
        for task in ("nlvr2", "coco_retrieval")
    ]
    run(["snakemake", "--cores", "2", *runs], work)
    for pool in ("nlvr2", "coco"):  # the two runs' pools
        manifest = json.loads(
            (work / f"results/features/bottom_up/{pool}/manifest.json").read_text()
        )
        assert manifest["dim"] == DIM and not manifest["skipped"], pool
        assert manifest["info"]["sources"][0]["path"] == files[pool][0]
    for metrics in runs:
        assert json.loads((work / metrics).read_text())["test"], metrics


@pytest.mark.slow
def test_the_memory_benchmark_runs_at_a_tiny_size(tmp_path):
    """bench/bottom_up_memory.py --tiny, so that the benchmark cannot rot."""
    out = tmp_path / "bench.json"
    run(
        [sys.executable, str(ROOT / "bench" / "bottom_up_memory.py"), "--tiny", "--json", str(out)],
        ROOT,
    )
    result = json.loads(out.read_text())
    assert [(r["mode"], r["images"]) for r in result["rows"]] == [
        ("import", 20),
        ("whole", 20),
        ("import", 40),
    ]
    assert all(r["peak_rss"] > 0 for r in result["rows"])
