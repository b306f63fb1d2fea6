"""Generate the synthetic suite: image pools + six datasets, packed as the real files are.

The output folder is a mirror: every file sits at its registry key (``vqav2/v2_...zip``) next to a
``SHA256SUMS`` manifest, so the real downloader fetches it through a ``file://`` URL. Scene graphs
of every image go to a sibling folder for the stages that need ground truth (encoder
pretraining, planted validation). The same spec and seed give byte-identical files.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...data.fetch import sha256_of
from ...errors import VecompError
from ...settings import json_setting
from . import datasets
from .packing import archive_writer, json_bytes
from .probes import probe_templates
from .scenes import Scene, render, sample_scene
from .statements import PAIR_STATEMENTS


@dataclass(frozen=True)
class SuiteSpec:
    """Sizes and seed of the suite; mirrors ``data.synthetic`` in the config."""

    seed: int = 0
    image_size: int = 64
    objects_per_image: tuple[int, int] = (2, 5)
    occluder_prob: float = 0.5  # Flickr30k-like pool only (SNLI-VE "neutral" needs it)
    images: dict = field(
        default_factory=lambda: {
            "coco": {"train2014": 300, "val2014": 200},
            "flickr30k": {"train": 300, "val": 50, "test": 50},
            "gqa": {"train": 300, "val": 60, "testdev": 60},
        }
    )
    nlvr2_sets: dict = field(default_factory=lambda: {"train": 200, "dev": 60, "test1": 60})
    nlvr2_pairs_per_set: int = 4  # NLVR2's sets: up to four pairs and two sentences
    nlvr2_sentences_per_set: int = 2
    nlvr2_statements: tuple[str, ...] = tuple(PAIR_STATEMENTS)  # families (statements.py)
    questions_per_image: dict = field(default_factory=lambda: {"vqav2": 6, "gqa": 6, "snli_ve": 6})
    probes: dict = field(default_factory=dict)  # task -> probe kinds replacing its templates

    def templates(self, task: str) -> dict | None:
        """The task's probe templates (``probes.py``), or None for the study's own."""
        kinds = self.probes.get(task)
        return probe_templates(task, kinds) if kinds else None

    @classmethod
    def from_dict(cls, spec: dict) -> SuiteSpec:
        spec = dict(spec)
        if "objects_per_image" in spec:
            spec["objects_per_image"] = tuple(spec["objects_per_image"])
        if "images" in spec:
            spec["images"] = {
                pool: in_split_order(pool, sizes) for pool, sizes in spec["images"].items()
            }
        if "nlvr2_sets" in spec:
            spec["nlvr2_sets"] = in_split_order("nlvr2", spec["nlvr2_sets"])
        if "nlvr2_statements" in spec:
            spec["nlvr2_statements"] = tuple(spec["nlvr2_statements"])
            unknown = sorted(set(spec["nlvr2_statements"]) - set(PAIR_STATEMENTS))
            if unknown or not spec["nlvr2_statements"]:
                raise VecompError(
                    f"data.synthetic.nlvr2_statements {unknown or '[]'}: list one or more of "
                    f"{', '.join(PAIR_STATEMENTS)}"
                )
        return cls(**spec)


# Each pool's splits in the order they are drawn. A fixed order, not the config's key order, so
# that the same sizes give the same images however the config happens to list them.
SPLIT_ORDER = {
    "coco": ("train2014", "val2014"),
    "flickr30k": ("train", "val", "test"),
    "gqa": ("train", "val", "testdev"),
    "nlvr2": ("train", "dev", "test1"),
}


def in_split_order(pool: str, sizes: dict) -> dict:
    """``sizes`` re-keyed in the pool's split order; every split must be given."""
    missing = [s for s in SPLIT_ORDER[pool] if s not in sizes]
    unknown = [s for s in sizes if s not in SPLIT_ORDER[pool]]
    if missing or unknown:
        raise ValueError(
            f"synthetic pool {pool!r} needs sizes for exactly the splits "
            f"{list(SPLIT_ORDER[pool])}; missing {missing}, unknown {unknown}"
        )
    return {split: sizes[split] for split in SPLIT_ORDER[pool]}


ID_BASE = {"coco": 100_000, "flickr30k": 1_000_000_000, "gqa": 2_300_000}


def _image_id(pool: str, number: int) -> str:
    """GQA's ids are not all numbers: some images come from other sources as ``n406334``."""
    return f"n{number}" if pool == "gqa" and number % 5 == 0 else str(number)


NLVR2_JPEG_SHARE = 0.3  # NLVR2 ".png" files that hold JPEG bytes, as many real ones do


def _image_bytes(scene: Scene, size: int, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image = render(scene, size)
    if fmt == "JPEG":
        image.save(buffer, format="JPEG", quality=95)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()


def _nlvr2_member(split: str, image_id: str) -> str:
    """Where the real zips keep an image: train_img.zip under ``images/train/<directory>/`` (the
    rows' ``directory`` field), dev_img.zip and test1_img.zip under ``<split>/``."""
    if split == "train":
        return f"images/train/{int(image_id.split('-')[1]) % 100}/{image_id}.png"
    return f"{split}/{image_id}.png"


class SuiteBuilder:
    def __init__(self, spec: SuiteSpec, mirror: Path):
        self.spec = spec
        self.mirror = mirror
        self.scene_graphs: dict[str, list[dict]] = {}

    def rng(self, purpose: str) -> random.Random:
        """An independent stream per purpose: resizing one pool leaves the others unchanged."""
        return random.Random(f"{self.spec.seed}:{purpose}")

    def scenes(self, pool: str, occluder_prob: float = 0.0) -> dict[str, list[Scene]]:
        rng, next_id, out = self.rng(f"scenes:{pool}"), ID_BASE[pool], {}
        for split, n in self.spec.images[pool].items():
            out[split] = [
                sample_scene(
                    rng, _image_id(pool, next_id + i), self.spec.objects_per_image, occluder_prob
                )
                for i in range(n)
            ]
            next_id += n
        self.scene_graphs[pool] = [s.to_json() for split in out.values() for s in split]
        return out

    def write(self, key: str, members: dict[str, bytes]) -> None:
        """An archive (by the key's suffix) with these members, or a plain file of one member."""
        path = self.mirror / key
        path.parent.mkdir(parents=True, exist_ok=True)
        if key.endswith((".zip", ".tar.gz")):
            with archive_writer(path) as archive:
                for name, data in members.items():
                    archive.add(name, data)
        else:
            (data,) = members.values()
            path.write_bytes(data)

    def images(self, key: str, named: dict[str, Scene], formats: dict[str, str] | None = None):
        """An archive of rendered scenes: JPEG unless ``formats`` names another per member."""
        size, formats = self.spec.image_size, formats or {}
        self.write(
            key,
            {name: _image_bytes(s, size, formats.get(name, "JPEG")) for name, s in named.items()},
        )

    def build(self) -> None:
        spec = self.spec
        coco = self.scenes("coco")
        flickr = self.scenes("flickr30k", spec.occluder_prob)
        gqa = self.scenes("gqa")
        self._coco(coco)
        self._flickr(flickr)
        self._gqa(gqa)
        self._nlvr2()
        self._karpathy(coco, flickr)

    def _coco(self, coco):
        for sub, scenes in coco.items():
            named = {f"{sub}/COCO_{sub}_{int(s.image_id):012d}.jpg": s for s in scenes}
            self.images(f"coco/{sub}.zip", named)
        files = datasets.vqav2(
            coco,
            self.spec.questions_per_image["vqav2"],
            self.rng("vqav2"),
            self.spec.templates("vqav2"),
        )
        for name, data in files.items():
            kind, sub = (
                ("Questions", name.split("_")[3])
                if "OpenEnded" in name
                else ("Annotations", name.split("_")[2])
            )
            split = "Train" if sub == "train2014" else "Val"
            self.write(f"vqav2/v2_{kind}_{split}_mscoco.zip", {name: data})

    def _flickr(self, flickr):
        named = {f"flickr30k-images/{s.image_id}.jpg": s for v in flickr.values() for s in v}
        self.images("flickr30k/flickr30k-images.tar.gz", named)
        per_image = self.spec.questions_per_image["snli_ve"]
        files = datasets.snli_ve(
            flickr, per_image, self.rng("snli_ve"), self.spec.templates("snli_ve")
        )
        for name, data in files.items():
            self.write(f"snli_ve/{name}", {name: data})

    def _gqa(self, gqa):
        self.images(
            "gqa/images.zip", {f"images/{s.image_id}.jpg": s for v in gqa.values() for s in v}
        )
        per_image = self.spec.questions_per_image["gqa"]
        files = datasets.gqa(gqa, per_image, self.rng("gqa"), self.spec.templates("gqa"))
        self.write("gqa/questions1.2.zip", files)

    def _nlvr2(self):
        spec, scene_rng = self.spec, self.rng("scenes:nlvr2")

        def draw() -> Scene:
            return sample_scene(scene_rng, "", spec.objects_per_image)

        files, images = datasets.nlvr2(
            spec.nlvr2_sets,
            spec.nlvr2_pairs_per_set,
            draw,
            self.rng("nlvr2"),
            spec.nlvr2_sentences_per_set,
            spec.nlvr2_statements,
        )
        for name, data in files.items():
            self.write(f"nlvr2/{name}", {name: data})
        formats_rng = self.rng("nlvr2:formats")
        for split, scenes in images.items():
            named = {_nlvr2_member(split, s.image_id): s for s in scenes}
            formats = {
                name: "JPEG" if formats_rng.random() < NLVR2_JPEG_SHARE else "PNG" for name in named
            }
            self.images(f"nlvr2/{split}_img.zip", named, formats)
        self.scene_graphs["nlvr2"] = [s.to_json() for v in images.values() for s in v]

    def _karpathy(self, coco, flickr):
        rng = self.rng("karpathy")
        coco_images = [(s, "train", {"filepath": "train2014"}) for s in coco["train2014"]]
        val = list(coco["val2014"])
        quarter = len(val) // 4
        for i, s in enumerate(val):
            split = "val" if i < quarter else "test" if i < 2 * quarter else "restval"
            coco_images.append((s, split, {"filepath": "val2014"}))
        for scene, _, extra in coco_images:
            sub = extra["filepath"]
            extra.update(
                filename=f"COCO_{sub}_{int(scene.image_id):012d}.jpg", cocoid=int(scene.image_id)
            )
        flickr_images = [
            (s, split, {"filename": f"{s.image_id}.jpg"})
            for split, scenes in flickr.items()
            for s in scenes
        ]
        self.write(
            "karpathy/caption_datasets.zip",
            {
                "dataset_coco.json": datasets.karpathy(coco_images, "coco", rng, coco_quirks=True),
                "dataset_flickr30k.json": datasets.karpathy(flickr_images, "flickr30k", rng),
            },
        )

    def write_manifest(self) -> None:
        keys = sorted(
            p.relative_to(self.mirror).as_posix() for p in self.mirror.rglob("*") if p.is_file()
        )
        lines = [f"{sha256_of(self.mirror / k)}  {k}\n" for k in keys]
        (self.mirror / "SHA256SUMS").write_text("".join(lines))


def generate(spec: SuiteSpec, mirror: Path, scene_graphs: Path) -> dict:
    """Write the suite atomically: into temporary folders first, renamed into place at the end."""
    started = time.perf_counter()
    mirror.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".suite-", dir=mirror.parent))
    try:
        builder = SuiteBuilder(spec, staging / "mirror")
        builder.build()
        builder.write_manifest()
        graphs = staging / "scene_graphs"
        graphs.mkdir()
        for pool, scenes in builder.scene_graphs.items():
            (graphs / f"{pool}.json").write_bytes(json_bytes(scenes))
        for src, dst in ((staging / "mirror", mirror), (graphs, scene_graphs)):
            if dst.exists():
                shutil.rmtree(dst)
            os.replace(src, dst)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    n_images = sum(len(v) for v in builder.scene_graphs.values())
    seconds = time.perf_counter() - started
    return {
        "images": n_images,
        "seconds": round(seconds, 2),
        "images_per_second": round(n_images / seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecomp generate", description=__doc__)
    parser.add_argument(
        "--spec",
        type=json_setting("data.synthetic"),
        default={},
        help="JSON of data.synthetic (sizes, seed)",
    )
    parser.add_argument("--mirror", type=Path, required=True, help="output mirror folder")
    parser.add_argument("--scene-graphs", type=Path, required=True, help="output folder")
    args = parser.parse_args(argv)
    stats = generate(SuiteSpec.from_dict(args.spec), args.mirror, args.scene_graphs)
    print(json.dumps(stats))
    return 0
