"""Feature store: round trips, shard layout, statistics, batching, integrity, resume."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from vecomp.features import store as store_module
from vecomp.features.store import (
    MANIFEST_NAME,
    FeatureStore,
    ImageNotFoundError,
    StoreError,
    StoreWriter,
)

DIM = 8
INFO = {"encoder": "tiny-vit", "weights_sha256": "ab" * 32, "preprocessing": {"size": 32}}


def make_images(
    n: int, dim: int = DIM, seed: int = 0
) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """``n`` images with 1..9 tokens each: (id, tokens [T, dim] float32, boxes [T, 4] in [0, 1])."""
    gen = torch.Generator().manual_seed(seed)
    images = []
    for i in range(n):
        length = 1 + (7 * i) % 9
        tokens = torch.randn(length, dim, generator=gen) * 3 + 1
        corners = torch.rand(length, 2, 2, generator=gen).sort(dim=1).values  # x0 <= x1, y0 <= y1
        boxes = corners.transpose(1, 2).reshape(length, 4)[:, [0, 2, 1, 3]]
        images.append((f"img{i:03d}", tokens, boxes))
    return images


def fp16(x: torch.Tensor) -> torch.Tensor:
    return x.half().float()


def feed(writer: StoreWriter, images, skips=frozenset(), start: int = 0) -> None:
    """Feed ``images[start:]`` in order, reporting the ids in ``skips`` as unreadable."""
    for image_id, tokens, boxes in images[start:]:
        if image_id in skips:
            writer.skip(image_id, "corrupt JPEG")
        else:
            writer.add(image_id, tokens, boxes)


def write_store(folder: Path, images, per_shard: int = 3, skips=frozenset(), **kw) -> Path:
    writer = StoreWriter(folder, DIM, images_per_shard=per_shard, info=INFO, **kw)
    feed(writer, images, skips)
    return writer.close()


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def images():
    return make_images(10)


@pytest.fixture
def built(tmp_path, images) -> FeatureStore:
    return FeatureStore(write_store(tmp_path / "store", images))


def test_round_trip_equals_fp16_rounded_inputs(built, images):
    assert built.image_ids == [i for i, _, _ in images]
    assert len(built) == 10 and "img004" in built and "nope" not in built
    for image_id, tokens, boxes in images:
        got_tokens, got_boxes = built.get(image_id)
        assert got_tokens.dtype == torch.float32 and got_tokens.shape == tokens.shape
        assert torch.equal(got_tokens, fp16(tokens))
        assert torch.equal(got_boxes, fp16(boxes))
        torch.testing.assert_close(got_tokens, tokens, rtol=1e-3, atol=1e-3)


def test_shard_boundaries(tmp_path, images):
    folder = write_store(tmp_path / "store", images, per_shard=3)
    shards = sorted(p.name for p in folder.glob("shard-*"))
    assert shards == [f"shard-{k:05d}.safetensors" for k in range(4)]
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert [s["n_images"] for s in manifest["shards"]] == [3, 3, 3, 1]
    index = pd.read_parquet(folder / "index.parquet")
    assert index["shard"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]


def test_index_and_manifest_contents(tmp_path, images):
    folder = write_store(tmp_path / "store", images, per_shard=4)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    lengths = [len(t) for _, t, _ in images]
    assert manifest["info"] == INFO
    assert (manifest["dim"], manifest["dtype"], manifest["format_version"]) == (DIM, "float16", 1)
    assert manifest["n_images"] == 10 and manifest["n_tokens"] == sum(lengths)
    assert manifest["tokens_per_image"] == {
        "min": min(lengths),
        "max": max(lengths),
        "mean": pytest.approx(np.mean(lengths)),
    }
    assert manifest["skipped"] == []
    for shard in manifest["shards"]:
        assert hashlib.sha256((folder / shard["file"]).read_bytes()).hexdigest() == shard["sha256"]
    index = pd.read_parquet(folder / "index.parquet")
    assert list(index.columns) == ["image_id", "shard", "start", "length"]
    assert index["length"].tolist() == lengths
    assert index["start"].tolist() == [0, 1, 9, 15, 0, 2, 11, 18, 0, 3]


def test_stats_match_numpy_over_stored_tokens(built, images):
    stored = torch.cat([fp16(t) for _, t, _ in images]).numpy().astype(np.float64)
    mean, std = built.stats()
    assert mean.shape == std.shape == (DIM,) and mean.dtype == torch.float32
    np.testing.assert_allclose(mean.numpy(), stored.mean(axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(std.numpy(), stored.std(axis=0), rtol=1e-6)


def test_get_batch_pads_masks_and_truncates(built, images):
    ids = ["img001", "img000", "img002"]  # 8, 1 and 6 tokens
    batch = built.get_batch(ids)
    assert batch["tokens"].shape == (3, 8, DIM) and batch["boxes"].shape == (3, 8, 4)
    assert batch["mask"].sum(dim=1).tolist() == [8, 1, 6]
    assert torch.equal(batch["tokens"][2, :6], fp16(images[2][1]))
    assert torch.equal(batch["boxes"][2, :6], fp16(images[2][2]))
    assert not batch["tokens"][~batch["mask"]].any() and not batch["boxes"][~batch["mask"]].any()
    short = built.get_batch(ids, max_tokens=4)
    assert short["tokens"].shape == (3, 4, DIM)
    assert short["mask"].sum(dim=1).tolist() == [4, 1, 4]
    assert torch.equal(short["tokens"][0], fp16(images[1][1][:4]))
    with pytest.raises(StoreError, match="max_tokens"):
        built.get_batch(ids, max_tokens=0)
    with pytest.raises(StoreError, match="no image ids"):
        built.get_batch([])


def test_get_batch_normalize(built):
    mean, std = built.stats()
    batch = built.get_batch(built.image_ids, normalize=True)
    raw = built.get_batch(built.image_ids)
    mask = batch["mask"]
    torch.testing.assert_close(batch["tokens"][mask], (raw["tokens"][mask] - mean) / std)
    assert not batch["tokens"][~mask].any()
    real = batch["tokens"][mask].double()
    torch.testing.assert_close(real.mean(0), torch.zeros(DIM).double(), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        real.std(0, unbiased=False), torch.ones(DIM).double(), atol=1e-5, rtol=0
    )


def test_a_batch_across_shards_is_bit_for_bit_its_images_read_one_by_one(built, images):
    """The batch-level read (one gather per shard) against the written images, rounded to
    float16 and padded by hand: zero padding (+0.0), the store's own normalisation."""
    ids = ["img007", "img001", "img004", "img000", "img007", "img002"]  # 4 shards, a repeat
    written = {image_id: (fp16(tokens), fp16(boxes)) for image_id, tokens, boxes in images}
    mean, std = built.stats()
    for max_tokens in (None, 3):
        for normalize in (False, True):
            batch = built.get_batch(ids, max_tokens, normalize)
            singles = [written[i] for i in ids]
            longest = max(len(t[:max_tokens]) for t, _ in singles)
            assert batch["mask"].sum(1).tolist() == [len(t[:max_tokens]) for t, _ in singles]
            for row, (tokens, boxes) in enumerate(singles):
                tokens, boxes = tokens[:max_tokens], boxes[:max_tokens]
                if normalize:
                    tokens = (tokens - mean) / std
                assert torch.equal(batch["tokens"][row, : len(tokens)], tokens)
                assert torch.equal(batch["boxes"][row, : len(boxes)], boxes)
            assert batch["tokens"].shape == (len(ids), longest, DIM)
            padding = ~batch["mask"]
            for key in ("tokens", "boxes"):
                bits = batch[key][padding].view(torch.int32)
                assert not bits.any(), f"{key}: padding is not +0.0"


def test_in_memory_equals_memory_mapped(built):
    ram = FeatureStore(built.folder, in_memory=True)
    for image_id in built.image_ids:
        for a, b in zip(ram.get(image_id), built.get(image_id), strict=True):
            assert torch.equal(a, b)
    a, b = ram.get_batch(built.image_ids, 5, True), built.get_batch(built.image_ids, 5, True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_pickled_store_reopens_its_shards(built):
    built.get("img003")  # opens a shard handle, which cannot be pickled
    clone = pickle.loads(pickle.dumps(built))
    assert torch.equal(clone.get("img003")[0], built.get("img003")[0])


def test_missing_id_names_the_id_and_store(built):
    with pytest.raises(ImageNotFoundError, match="'COCO_42'.*store") as err:
        built.get("COCO_42")
    assert isinstance(err.value, KeyError) and str(built.folder) in str(err.value)
    with pytest.raises(KeyError):
        built.get_batch(["img000", "COCO_42"])


def test_verify_catches_a_flipped_byte(built):
    shards = sorted(built.folder.glob("shard-*.safetensors"))
    assert built.verify() == sum(path.stat().st_size for path in shards)  # every shard read
    shard = built.folder / "shard-00002.safetensors"
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(
        StoreError, match="shard-00002.safetensors is not the shard that was written"
    ):
        built.verify()


def _rewrite_shard(folder: Path, tokens: torch.Tensor | None = None) -> Path:
    """Shard 0 rewritten with other values of the same shape (a valid safetensors file)."""
    from safetensors.torch import load_file, save_file

    shard = folder / "shard-00000.safetensors"
    tensors = load_file(shard)
    tensors["tokens"] = tensors["tokens"] + 1 if tokens is None else tokens
    save_file(tensors, shard)
    return shard


def test_a_shard_changed_without_its_manifest_is_refused_when_first_read(tmp_path, images):
    folder = write_store(tmp_path / "store", images)
    recorded = json.loads((folder / "manifest.json").read_text())["shards"][0]["sha256"]
    shard = _rewrite_shard(folder)
    actual = hashlib.sha256(shard.read_bytes()).hexdigest()
    store = FeatureStore(folder)  # opening reads the manifest and index only
    with pytest.raises(StoreError) as err:
        store.get("img000")
    message = str(err.value)
    assert str(folder) in message and "shard-00000.safetensors" in message
    assert recorded in message and actual in message and "dvc checkout" in message
    with pytest.raises(StoreError, match="shard-00000"):
        FeatureStore(folder, in_memory=True)
    unchecked = FeatureStore(folder, check=False)  # what the benchmark compares against
    assert torch.equal(
        unchecked.get("img000")[0], (torch.as_tensor(images[0][1]).half() + 1).float()
    )


def test_non_finite_values_are_refused_with_the_store_even_under_a_matching_manifest(
    tmp_path, images
):
    folder = write_store(tmp_path / "store", images)
    tokens = load_shard_tokens(folder)
    tokens[0, 0] = float("nan")
    shard = _rewrite_shard(folder, tokens)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["shards"][0]["sha256"] = hashlib.sha256(shard.read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="shard-00000.safetensors holds NaN or infinite"):
        FeatureStore(folder).get("img000")


def load_shard_tokens(folder: Path) -> torch.Tensor:
    from safetensors.torch import load_file

    return load_file(folder / "shard-00000.safetensors")["tokens"]


def test_a_truncated_shard_is_named(tmp_path, images):
    folder = write_store(tmp_path / "store", images)
    shard = folder / "shard-00000.safetensors"
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(StoreError, match="shard-00000.safetensors"):
        FeatureStore(folder).get("img000")
    with pytest.raises(StoreError, match="shard-00000.safetensors cannot be read"):
        FeatureStore(folder, check=False).get("img000")


def test_a_manifest_that_is_not_json_or_disagrees_on_dim_is_named(tmp_path, images):
    folder = write_store(tmp_path / "store", images)
    manifest = folder / "manifest.json"
    good = manifest.read_text()
    manifest.write_text(good[: len(good) // 2])
    with pytest.raises(StoreError, match=r"manifest.json is not JSON"):
        FeatureStore(folder)
    manifest.write_text(json.dumps({**json.loads(good), "dim": DIM + 1}))
    with pytest.raises(
        StoreError, match=rf"shape \[\d+, {DIM}\], manifest.json says dim {DIM + 1}"
    ):
        FeatureStore(folder, check=False).get("img000")


def test_incomplete_folder_refuses_to_open(tmp_path, images):
    writer = StoreWriter(tmp_path / "store", DIM, images_per_shard=3)
    feed(writer, images)  # never closed: three shards, no manifest
    with pytest.raises(StoreError, match="not a complete feature store"):
        FeatureStore(tmp_path / "store")
    with pytest.raises(StoreError, match="no feature store at"):
        FeatureStore(tmp_path / "absent")


def test_missing_shard_refuses_to_open(built):
    (built.folder / "shard-00001.safetensors").unlink()
    with pytest.raises(StoreError, match="shard-00001.safetensors is missing"):
        FeatureStore(built.folder)


@pytest.mark.parametrize(
    ("tokens", "boxes", "match"),
    [
        (torch.zeros(3, DIM + 1), torch.zeros(3, 4), r"tokens must be \[T, 8\]"),
        (torch.zeros(0, DIM), torch.zeros(0, 4), "T >= 1"),
        (torch.zeros(3, DIM), torch.zeros(2, 4), r"boxes must be \[T, 4\] = \[3, 4\]"),
        (torch.zeros(3, DIM, dtype=torch.int64), torch.zeros(3, 4), "floating point"),
        (torch.zeros(3, DIM), torch.full((3, 4), 320.0), "normalised to"),
        (torch.full((3, DIM), 1e5), torch.zeros(3, 4), "float16 range"),
        (torch.full((3, DIM), float("nan")), torch.zeros(3, 4), "NaN"),
    ],
)
def test_add_rejects_bad_inputs(tmp_path, tokens, boxes, match):
    writer = StoreWriter(tmp_path / "store", DIM)
    with pytest.raises(StoreError, match=match):
        writer.add("img", tokens, boxes)


def test_info_must_be_json(tmp_path):
    with pytest.raises(StoreError, match="JSON-serialisable"):
        StoreWriter(tmp_path / "store", DIM, info={"weights": Path("w.pt")})


def test_add_accepts_numpy(tmp_path):
    writer = StoreWriter(tmp_path / "store", DIM)
    writer.add("img", np.ones((2, DIM), np.float32), np.zeros((2, 4)))
    assert torch.equal(FeatureStore(writer.close()).get("img")[0], torch.ones(2, DIM))


def test_duplicate_ids_raise(tmp_path, images):
    writer = StoreWriter(tmp_path / "store", DIM)
    feed(writer, images[:2])
    with pytest.raises(StoreError, match="'img001' was already added"):
        writer.add(*images[1])
    with pytest.raises(StoreError, match="'img000' was already added"):
        writer.skip("img000", "unreadable")


def test_writer_refuses_complete_store_and_all_skipped(built, tmp_path, images):
    with pytest.raises(StoreError, match="already a complete feature store"):
        StoreWriter(built.folder, DIM)
    writer = StoreWriter(tmp_path / "empty", DIM)
    writer.skip("img000", "unreadable")
    with pytest.raises(StoreError, match="no image was stored"):
        writer.close()


def test_context_manager_leaves_a_failed_run_resumable(tmp_path, images):
    with pytest.raises(RuntimeError), StoreWriter(tmp_path / "store", DIM, 3) as writer:
        feed(writer, images[:4])
        raise RuntimeError("encoder crashed")
    assert not (tmp_path / "store" / MANIFEST_NAME).exists()
    with StoreWriter(tmp_path / "store", DIM, 3) as writer:
        assert writer.n_done == 3
        feed(writer, images, start=writer.n_done)
    assert len(FeatureStore(tmp_path / "store")) == 10


def test_skipped_images_are_listed_and_take_no_slot(tmp_path, images):
    folder = write_store(tmp_path / "store", images, per_shard=3, skips={"img002", "img009"})
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["skipped"] == [
        {"image_id": "img002", "reason": "corrupt JPEG"},
        {"image_id": "img009", "reason": "corrupt JPEG"},
    ]
    assert [s["n_images"] for s in manifest["shards"]] == [3, 3, 2]
    store = FeatureStore(folder)
    assert "img002" not in store and len(store) == 8


class _Killed(Exception):
    pass


def _kill_before_manifest(writer: StoreWriter, monkeypatch) -> None:
    """Run close() but die after the shards, index and stats, before the manifest."""

    def die(*args):
        raise _Killed

    with monkeypatch.context() as patch:
        patch.setattr(store_module, "write_json", die)
        with pytest.raises(_Killed):
            writer.close()


# (number of images, skipped ids, leading images complete after the kill) with 3 per shard
RESUME_CASES = {
    "plain": (7, frozenset(), 6),
    "skips": (9, frozenset({"img002", "img007"}), 7),
    "trailing-skip": (8, frozenset({"img002", "img007"}), 7),
}


@pytest.mark.parametrize("kill", ["mid-shard", "before-manifest"])
@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_is_byte_identical(tmp_path, monkeypatch, kill, case):
    n, skips, n_done = RESUME_CASES[case]
    images = make_images(n)
    reference = folder_bytes(write_store(tmp_path / "once", images, skips=skips))

    folder = tmp_path / "resumed"
    writer = StoreWriter(folder, DIM, images_per_shard=3, info=INFO)
    feed(writer, images, skips)
    if kill == "before-manifest":
        _kill_before_manifest(writer, monkeypatch)
    del writer
    (folder / ".shard-00002.safetensors.x1y2.tmp").write_bytes(b"half a shard")

    writer = StoreWriter(folder, DIM, images_per_shard=3, info=INFO)
    assert writer.n_done == n_done
    assert writer.done == {image_id for image_id, _, _ in images[:n_done]}
    feed(writer, images, skips, start=writer.n_done)
    writer.close()
    assert folder_bytes(folder) == reference


def test_resume_refuses_other_settings(tmp_path, images):
    feed(StoreWriter(tmp_path / "store", DIM, images_per_shard=3), images)
    with pytest.raises(StoreError, match="images_per_shard"):
        StoreWriter(tmp_path / "store", DIM, images_per_shard=4)
    writer = StoreWriter(tmp_path / "store", DIM, images_per_shard=3)
    with pytest.raises(StoreError, match="complete shard"):
        writer.add(*images[0])
