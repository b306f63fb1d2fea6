"""Decoding on the encoding device (features/decode.py): which files go to which decoder, the
fallbacks when the device decoder refuses a batch or an image, and stores that match the CPU
path's. On a CPU machine the "device" is the CPU, where torchvision's decode_jpeg takes the same
batched calls that nvjpeg takes on a GPU; the GPU check (bench/gpu_check.sh) runs it on a GPU."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vecomp.data.index_pool import index_pool
from vecomp.encoders.factory import create_encoder
from vecomp.features import decode, extract
from vecomp.features.store import FeatureStore

from .test_extract import REGION, SPEC, run

SIZES = [(64, 48), (48, 64), (50, 50), (80, 40)]  # mixed sizes and orientations, as COCO's


def photo(size: tuple[int, int], seed: int) -> Image.Image:
    """A smooth image with some texture (JPEG-like content, not flat colour)."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    channels = [np.sin(6 * x + seed) + np.cos(5 * y * (c + 1)) for c in range(3)]
    pixels = (np.stack(channels, -1) + 2) * 60 + rng.normal(0, 8, (h, w, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def encoded(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, **{"format": "JPEG", "quality": 90, **options})
    return out.getvalue()


# ------------------------------------------------------------------------ which decoder


def _frame_header(components: int, marker: int = 0xC0) -> bytes:
    """SOI, a padded APP0 segment, fill bytes, then a frame header of ``components``."""
    app0 = b"\xff\xe0" + (16).to_bytes(2, "big") + b"JFIF\x00" + bytes(9)
    frame = (
        bytes([0xFF, marker]) + (8 + 3 * components).to_bytes(2, "big") + b"\x08\x00\x10\x00\x10"
    )
    return b"\xff\xd8" + app0 + b"\xff\xff" + frame + bytes([components]) + bytes(3 * components)


@pytest.mark.parametrize(
    ("data", "components"),
    [
        (_frame_header(3), 3),
        (_frame_header(1), 1),
        (_frame_header(4), 4),
        (_frame_header(3, marker=0xC2), 3),  # progressive
        (b"\x89PNG\r\n\x1a\n" + bytes(20), None),
        (b"\xff\xd8\xff\xe0\x00", None),  # cut inside the first segment
    ],
)
def test_the_frame_header_gives_the_component_count(data, components):
    assert decode.jpeg_components(data) == components


def test_real_files_are_sent_to_the_decoder_that_takes_them():
    image = photo((40, 30), 0)
    png = io.BytesIO()
    image.save(png, format="PNG")
    assert decode.device_decodable(encoded(image))
    assert decode.device_decodable(encoded(image, progressive=True))
    assert decode.device_decodable(encoded(image.convert("L")))
    assert not decode.device_decodable(encoded(image.convert("CMYK")))  # PIL decodes CMYK
    assert not decode.device_decodable(png.getvalue())  # PNG bytes under a .jpg name


def test_every_kind_of_file_decodes_to_the_pixels_pil_gives():
    image = photo((40, 30), 1)
    png = io.BytesIO()
    image.save(png, format="PNG")
    files = [
        encoded(image),
        encoded(image, progressive=True),
        encoded(image.convert("L")),
        encoded(image.convert("CMYK")),
        png.getvalue(),
    ]
    blobs = [decode.file_tensor(data) for data in files]
    images, errors = decode.decode_on_device(blobs, torch.device("cpu"), lambda x: x)
    assert errors == [None] * len(files)
    for data, pixels in zip(files, images, strict=True):
        expected = torch.from_numpy(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
        assert torch.equal(pixels, expected.permute(2, 0, 1))


def test_a_refused_batch_falls_back_per_image_and_a_refused_image_to_pil(monkeypatch):
    """nvjpeg may refuse a whole batch for one file it cannot take: the others still decode on
    the device, one by one, and that file is decoded by PIL; none is lost."""
    files = [encoded(photo((32, 24), seed)) for seed in range(4)]
    refused = files[2]
    calls = []
    real = decode.decode_jpeg

    def nvjpeg(blobs, **options):
        calls.append(len(blobs) if isinstance(blobs, list) else 1)
        if isinstance(blobs, list) or blobs.numpy().tobytes() == refused:
            raise RuntimeError("nvjpeg: unsupported")
        return real(blobs, **options)

    monkeypatch.setattr(decode, "decode_jpeg", nvjpeg)
    blobs = [decode.file_tensor(data) for data in files]
    images, errors = decode.decode_on_device(blobs, torch.device("cpu"), lambda x: x.float())
    assert calls == [4, 1, 1, 1, 1] and errors == [None] * 4
    for data, pixels in zip(files, images, strict=True):
        assert torch.equal(pixels, decode.decode_on_cpu(data).float())


def test_a_file_no_decoder_reads_is_reported_not_raised():
    good = encoded(photo((32, 24), 0))
    files = [good, good[: len(good) // 2], b"not an image"]
    images, errors = decode.decode_on_device(
        [decode.file_tensor(data) for data in files], torch.device("cpu"), lambda x: x
    )
    assert images[0] is not None and images[1] is None and images[2] is None
    assert errors[0] is None and "truncated" in errors[1].lower() and "Unidentified" in errors[2]


# ------------------------------------------------------------------------ extraction


@pytest.fixture
def jpeg_pool(tmp_path) -> tuple[Path, list[str]]:
    """JPEGs of mixed sizes, one progressive, one grey, one CMYK and PNG bytes named .jpg."""
    folder = tmp_path / "images"
    folder.mkdir()
    for i, size in enumerate(SIZES * 2):
        image = photo(size, i)
        options = [{}, {"progressive": True}][i % 2]
        (folder / f"{3000 + i}.jpg").write_bytes(encoded(image, **options))
    (folder / "3100.jpg").write_bytes(encoded(photo((40, 40), 20).convert("L")))
    (folder / "3101.jpg").write_bytes(encoded(photo((40, 40), 21).convert("CMYK")))
    png = io.BytesIO()
    photo((40, 40), 22).save(png, format="PNG")
    (folder / "3102.jpg").write_bytes(png.getvalue())
    index = index_pool("gqa", [folder])
    index.to_parquet(tmp_path / "pool.parquet")
    return tmp_path / "pool.parquet", list(index.image_id)


@pytest.mark.parametrize("spec", [SPEC, REGION], ids=["patch", "region"])
def test_device_decoding_writes_the_cpu_paths_store_up_to_resampling(jpeg_pool, tmp_path, spec):
    """Same images, same order, same token counts and boxes; tokens within what a grey level of
    resampling moves them (the patch encoder resizes, the detector does not)."""
    path, ids = jpeg_pool
    assert run(str(path), tmp_path / "cpu", spec, "--decode", "cpu") == 0
    assert run(str(path), tmp_path / "device", spec, "--decode", "device") == 0
    cpu, device = FeatureStore(tmp_path / "cpu"), FeatureStore(tmp_path / "device")
    assert cpu.image_ids == device.image_ids == sorted(ids)
    for image_id in ids:
        (a, boxes_a), (b, boxes_b) = cpu.get(image_id), device.get(image_id)
        assert a.shape == b.shape and torch.equal(boxes_a, boxes_b)
        scale = a.abs().max()
        if spec is REGION:  # no resampling: the same pixels, the same tokens
            assert torch.equal(a, b), image_id
        else:
            assert (a - b).abs().max() <= 0.05 * scale, image_id


def test_the_device_transform_matches_the_pil_transform_within_a_grey_level():
    torch.manual_seed(0)
    encoder = create_encoder(SPEC)
    for seed, size in enumerate(SIZES):
        image = photo(size, seed)
        on_pil = encoder.transform()(image)
        on_tensor = encoder.tensor_transform()(torch.from_numpy(np.asarray(image)).permute(2, 0, 1))
        grey_level = 1 / 255 / min(encoder.preprocessing["std"])
        assert on_pil.shape == on_tensor.shape
        assert (on_pil - on_tensor).abs().max() <= 2 * grey_level


def test_an_undecodable_file_is_skipped_and_recorded_on_the_device_path(
    jpeg_pool, tmp_path, monkeypatch
):
    """A file both decoders refuse (here by fiat: the pool index, which PIL checked, calls it
    readable) is an unreadable image, as on the CPU path: listed, or skipped when asked."""
    path, ids = jpeg_pool
    bad = (path.parent / "images" / "3001.jpg").read_bytes()

    def refuse(data):
        if data == bad:
            raise OSError("broken data stream")
        return real(data)

    real = decode.decode_on_cpu
    monkeypatch.setattr(decode, "decode_on_cpu", refuse)
    monkeypatch.setattr(decode, "device_decodable", lambda data: bytes(data) != bad)
    with pytest.raises(extract.UnreadableImagesError, match="3001.*broken data stream"):
        run(str(path), tmp_path / "store", SPEC, "--decode", "device")
    run(str(path), tmp_path / "store", SPEC, "--decode", "device", "--on-bad-images", "skip")
    store = FeatureStore(tmp_path / "store")
    skipped = [i for i in ids if i not in store]
    assert len(skipped) == 1 and "3001" in skipped[0]
    assert "broken data stream" in json.dumps(store.manifest)


def test_auto_decodes_on_the_device_only_on_a_gpu_and_device_needs_a_tensor_transform():
    torch.manual_seed(0)
    encoder = create_encoder(SPEC)
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert extract.device_transform("auto", encoder, cpu) is None
    assert extract.device_transform("cpu", encoder, gpu) is None
    for setting, device in (("auto", gpu), ("device", cpu)):
        transform = extract.device_transform(setting, encoder, device)
        assert [type(t).__name__ for t in transform.transforms] == [
            "Resize",
            "ToDtype",
            "Normalize",
        ]
    encoder.tensor_transform = lambda: None  # an encoder that only transforms PIL images
    assert extract.device_transform("auto", encoder, gpu) is None
    with pytest.raises(extract.VecompError, match="features.decode: cpu"):
        extract.device_transform("device", encoder, cpu)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_nvjpeg_decodes_the_pool_and_leaves_the_rest_to_pil(jpeg_pool, tmp_path):
    """On a GPU: the JPEGs decoded by nvjpeg in batches, the CMYK and PNG files by PIL, and the
    store as the CPU path's up to the decoders' and resamplers' rounding (bf16 forwards)."""
    path, ids = jpeg_pool
    options = ("--device", "cuda")
    assert run(str(path), tmp_path / "cpu", SPEC, *options, "--decode", "cpu") == 0
    assert run(str(path), tmp_path / "gpu", SPEC, *options, "--decode", "device") == 0
    cpu, gpu = FeatureStore(tmp_path / "cpu"), FeatureStore(tmp_path / "gpu")
    assert cpu.image_ids == gpu.image_ids == sorted(ids)
    a, b = (store.get_batch(ids)["tokens"] for store in (cpu, gpu))
    assert (a - b).abs().max() <= 0.05 * a.abs().max()
