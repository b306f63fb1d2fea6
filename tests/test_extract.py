"""Feature extraction: store contents, resume after a kill, unreadable images, reruns."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image

from vecomp.data.index_pool import index_pool
from vecomp.encoders.factory import create_encoder
from vecomp.features import extract
from vecomp.features.store import FeatureStore

from .workflow_helpers import tree_digest

SPEC = {
    "type": "timm_patch",
    "model": "vit_tiny_patch16_224",
    "model_kwargs": {"img_size": 32, "patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 2},
}
REGION = {
    "type": "torchvision_frcnn",
    "arch": "fasterrcnn_mini",
    "arch_kwargs": {"num_classes": 4, "image_size": 32},
    "max_regions": 5,
    "min_score": 0.0,
}


@pytest.fixture
def pool(tmp_path) -> tuple[pd.DataFrame, str]:
    """Ten small images with distinct colours, indexed like a real pool."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(10):
        Image.new("RGB", (40, 30), (20 * i, 255 - 20 * i, 90)).save(folder / f"{1000 + i}.png")
    index = index_pool("gqa", [folder])
    path = tmp_path / "pool.parquet"
    index.to_parquet(path)
    return index, str(path)


def run(pool_index: str, out, spec=SPEC, *extra: str) -> int:
    return extract.main(
        [
            "--encoder",
            "patch",
            "--spec",
            json.dumps(spec),
            "--pool",
            "gqa",
            "--pool-index",
            pool_index,
            "--out",
            str(out),
            "--images-per-shard",
            "3",
            "--batch-size",
            "4",
            *extra,
        ]
    )


def test_store_holds_every_image_as_the_encoder_sees_it(pool, tmp_path):
    index, path = pool
    assert run(path, tmp_path / "store") == 0
    store = FeatureStore(tmp_path / "store")
    assert sorted(store.image_ids) == sorted(index.image_id)
    torch.manual_seed(0)
    encoder = create_encoder(SPEC)
    image = encoder.transform()(Image.open(index.path[0]).convert("RGB"))
    with torch.no_grad():
        expected = encoder(image[None]).tokens[0]
    tokens, boxes = store.get(index.image_id[0])
    assert torch.allclose(tokens, expected.half().float(), atol=1e-3)
    assert tokens.shape == (17, 32) and boxes.shape == (17, 4)
    info = store.manifest["info"]
    assert info["encoder"] == "patch" and info["family"] == "patch" and info["pool"] == "gqa"
    assert info["preprocessing"]["input_size"] == [3, 32, 32] and "torch" in info["versions"]


def test_region_store_keeps_variable_token_counts(pool, tmp_path):
    _, path = pool
    run(path, tmp_path / "regions", REGION)
    store = FeatureStore(tmp_path / "regions")
    batch = store.get_batch(store.image_ids)
    assert batch["tokens"].shape[1] <= 5 and batch["mask"].any(dim=1).all()


def test_region_extraction_takes_images_of_different_sizes_in_one_batch(tmp_path):
    """Real pools mix sizes and orientations (COCO: 640x480, 480x640, 640x427, ...). The
    detector keeps each image's size (its own transform resizes and pads), so a batch cannot be
    one stacked tensor: each image's regions are those it gets alone, boxes in its own frame."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i, size in enumerate([(40, 30), (30, 40), (32, 32)]):
        Image.new("RGB", size, (80 * i, 200 - 60 * i, 90)).save(folder / f"{2000 + i}.png")
    index = index_pool("gqa", [folder])
    index.to_parquet(tmp_path / "pool.parquet")
    assert run(str(tmp_path / "pool.parquet"), tmp_path / "regions", REGION) == 0
    store = FeatureStore(tmp_path / "regions")
    torch.manual_seed(0)
    encoder = create_encoder(REGION)
    for image_id, path in zip(index.image_id, index.path, strict=True):
        image = encoder.transform()(Image.open(path).convert("RGB"))
        with torch.no_grad():
            alone = encoder(image[None])
        tokens, boxes = store.get(image_id)
        assert torch.allclose(tokens, alone.tokens[0].half().float(), atol=1e-3)
        assert torch.allclose(boxes, alone.boxes[0].half().float(), atol=1e-3)


def test_killed_extraction_resumes_to_identical_bytes(pool, tmp_path, monkeypatch):
    _, path = pool
    run(path, tmp_path / "whole")
    calls = {"n": 0}
    real_encode = extract._encode

    def dies_on_third_batch(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real_encode(*args)

    monkeypatch.setattr(extract, "_encode", dies_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        run(path, tmp_path / "resumed")
    assert not (tmp_path / "resumed" / "manifest.json").exists()
    assert (tmp_path / "resumed" / "shard-00000.safetensors").exists()
    monkeypatch.setattr(extract, "_encode", real_encode)
    run(path, tmp_path / "resumed")
    assert tree_digest(tmp_path / "resumed") == tree_digest(tmp_path / "whole")


def test_changed_spec_does_not_reuse_old_shards(pool, tmp_path):
    _, path = pool
    run(path, tmp_path / "store")
    other = json.loads(json.dumps(SPEC))
    other["model_kwargs"]["embed_dim"] = 16
    run(path, tmp_path / "store", other)
    assert FeatureStore(tmp_path / "store").dim == 16


def test_new_pixels_under_old_image_ids_do_not_reuse_old_shards(pool, tmp_path):
    """What Snakemake does when a pool's images change: it deletes the store's declared outputs
    (manifest, index, stats; not the shards) and reruns. The old shards hold features of the
    old images under the same ids, and must not be resumed from."""
    index, path = pool
    run(path, tmp_path / "store")
    for name in ("manifest.json", "index.parquet", "stats.safetensors"):
        (tmp_path / "store" / name).unlink()
    for i, image in enumerate(index.path):
        Image.new("RGB", (40, 30), (255 - 20 * i, 20 * i, 200)).save(image)
    index_pool("gqa", [Path(index.path[0]).parent]).to_parquet(path)
    run(path, tmp_path / "store")
    run(path, tmp_path / "fresh")
    assert tree_digest(tmp_path / "store") == tree_digest(tmp_path / "fresh")


def test_a_pool_index_without_checksums_asks_for_a_new_one(pool, tmp_path):
    index, path = pool
    index.drop(columns="sha256").to_parquet(path)
    with pytest.raises(extract.VecompError, match="no sha256 column.*rerun `vecomp index-pool`"):
        run(path, tmp_path / "store")


def _corrupt(index: pd.DataFrame) -> None:
    """Truncate one image after the pool was indexed (the index still calls it readable)."""
    broken = Path(index.path[3])
    broken.write_bytes(broken.read_bytes()[:60])


def test_unreadable_image_fails_by_default_listing_it(pool, tmp_path):
    index, path = pool
    _corrupt(index)
    with pytest.raises(extract.UnreadableImagesError, match=index.image_id[3]) as err:
        run(path, tmp_path / "store")
    assert "on_bad_images: skip" in str(err.value)
    assert not (tmp_path / "store" / "manifest.json").exists()


def test_unreadable_image_is_skipped_and_recorded_when_asked(pool, tmp_path):
    index, path = pool
    _corrupt(index)
    run(path, tmp_path / "store", SPEC, "--on-bad-images", "skip")
    store = FeatureStore(tmp_path / "store")
    assert len(store) == 9 and index.image_id[3] not in store
    assert index.image_id[3] in json.dumps(store.manifest)


def test_image_known_unreadable_from_the_pool_index_fails_before_any_work(pool, tmp_path):
    index, _ = pool
    index = index.assign(error=[None] * 9 + ["OSError: truncated"])
    index.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(extract.UnreadableImagesError, match="OSError: truncated"):
        run(str(tmp_path / "bad.parquet"), tmp_path / "store")
    assert not (tmp_path / "store").exists()  # not even the extraction's fingerprint


def _replace(index: pd.DataFrame) -> str:
    """Put other, valid pixels under image 3's name after the pool was indexed."""
    Image.new("RGB", (40, 30), (1, 2, 3)).save(index.path[3])
    return index.image_id[3]


def test_an_image_replaced_after_indexing_is_not_encoded(pool, tmp_path):
    index, path = pool
    replaced = _replace(index)
    with pytest.raises(extract.UnreadableImagesError) as err:
        run(path, tmp_path / "store")
    message = str(err.value)
    assert replaced in message and "changed since the pool was indexed" in message
    assert index.sha256[3] in message and "index-pool" in message


def test_an_image_replaced_after_indexing_is_skipped_and_recorded_when_asked(pool, tmp_path):
    index, path = pool
    replaced = _replace(index)
    run(path, tmp_path / "store", SPEC, "--on-bad-images", "skip")
    store = FeatureStore(tmp_path / "store")
    assert len(store) == 9 and replaced not in store
    (skipped,) = [s for s in json.dumps(store.manifest).split('"') if "changed since" in s]
    assert index.sha256[3] in skipped
