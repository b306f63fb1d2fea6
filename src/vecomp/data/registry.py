"""The dataset registry: every remote file, image pool and task the pipeline knows.

One place for each fact: a file's official URL and checksum, which archives make up an image pool,
which files a task parses and with which parser. Files are keyed ``<dataset>/<file name>`` so that
generic names (``train.json``) never collide; the same key is the file's path under
``results/downloads/`` and under a mirror.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from ..errors import VecompError

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset as its authors publish it."""

    key: str  # "<dataset>/<file name>", unique
    url: str | None  # official URL; None when only a manual placement can supply it
    sha256: str | None = None  # published checksum (else recorded on first download)
    size: int | None = None  # published size in bytes, when known
    manual: str | None = None  # how a person obtains a file that sits behind a form or login

    @property
    def name(self) -> str:
        return PurePosixPath(self.key).name

    @property
    def is_archive(self) -> bool:
        return self.name.endswith(ARCHIVE_SUFFIXES)

    @property
    def stem(self) -> str:
        """The key without its archive suffix: the folder it is extracted into."""
        for suffix in ARCHIVE_SUFFIXES:
            if self.key.endswith(suffix):
                return self.key[: -len(suffix)]
        return self.key


def image_id_from_stem(file_name: str) -> str:
    return PurePosixPath(file_name).stem


def coco_image_id(file_name: str) -> str:
    """``COCO_val2014_000000391895.jpg`` -> ``"391895"`` (the id the annotations use)."""
    return str(int(PurePosixPath(file_name).stem.rsplit("_", 1)[-1]))


@dataclass(frozen=True)
class ImagePool:
    """A set of images shared by every task that uses them (COCO: VQAv2 + COCO retrieval)."""

    name: str
    files: tuple[str, ...]  # archive keys whose images make up the pool
    image_id: Callable[[str], str] = image_id_from_stem  # file name -> id the annotations use


@dataclass(frozen=True)
class Task:
    """A downstream V+L task: the files it parses, its image pool, its label space and metric."""

    name: str
    pool: str
    files: tuple[str, ...]  # annotation file keys
    kind: str  # "vqa" (soft scores) | "classification" | "pair" (two images) | "retrieval"
    metric: str
    description: str
    labels: tuple[str, ...] | None = None  # a fixed label set; None: learned from train answers


_VQA = "https://s3.amazonaws.com/cvmlp/vqa/mscoco/vqa"
_GQA = "https://downloads.cs.stanford.edu/nlp/data/gqa"
_NLVR2 = "https://raw.githubusercontent.com/lil-lab/nlvr/master/nlvr2/data"
_NLVR2_FORM = (
    "NLVR2 images are shared on request: fill in the form linked from the NLVR2 page of "
    "lil-lab/nlvr (GitHub), then download {name}"
)
_SNLI_VE = (
    "SNLI-VE is built from SNLI and Flickr30k with the script of necla-ml/SNLI-VE (GitHub); "
    "run it and take {name}"
)

FILES: dict[str, RemoteFile] = {
    f.key: f
    for f in [
        RemoteFile("vqav2/v2_Questions_Train_mscoco.zip", f"{_VQA}/v2_Questions_Train_mscoco.zip"),
        RemoteFile("vqav2/v2_Questions_Val_mscoco.zip", f"{_VQA}/v2_Questions_Val_mscoco.zip"),
        RemoteFile(
            "vqav2/v2_Annotations_Train_mscoco.zip", f"{_VQA}/v2_Annotations_Train_mscoco.zip"
        ),
        RemoteFile("vqav2/v2_Annotations_Val_mscoco.zip", f"{_VQA}/v2_Annotations_Val_mscoco.zip"),
        RemoteFile("coco/train2014.zip", "http://images.cocodataset.org/zips/train2014.zip"),
        RemoteFile("coco/val2014.zip", "http://images.cocodataset.org/zips/val2014.zip"),
        RemoteFile(
            "karpathy/caption_datasets.zip",
            "https://cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip",
        ),
        RemoteFile("gqa/questions1.2.zip", f"{_GQA}/questions1.2.zip"),
        RemoteFile("gqa/images.zip", f"{_GQA}/images.zip"),
        RemoteFile("nlvr2/train.json", f"{_NLVR2}/train.json"),
        RemoteFile("nlvr2/dev.json", f"{_NLVR2}/dev.json"),
        RemoteFile("nlvr2/test1.json", f"{_NLVR2}/test1.json"),
        RemoteFile("nlvr2/train_img.zip", None, manual=_NLVR2_FORM.format(name="train_img.zip")),
        RemoteFile("nlvr2/dev_img.zip", None, manual=_NLVR2_FORM.format(name="dev_img.zip")),
        RemoteFile("nlvr2/test1_img.zip", None, manual=_NLVR2_FORM.format(name="test1_img.zip")),
        RemoteFile(
            "snli_ve/snli_ve_train.jsonl", None, manual=_SNLI_VE.format(name="snli_ve_train.jsonl")
        ),
        RemoteFile(
            "snli_ve/snli_ve_dev.jsonl", None, manual=_SNLI_VE.format(name="snli_ve_dev.jsonl")
        ),
        RemoteFile(
            "snli_ve/snli_ve_test.jsonl", None, manual=_SNLI_VE.format(name="snli_ve_test.jsonl")
        ),
        RemoteFile(
            "flickr30k/flickr30k-images.tar.gz",
            None,
            manual=(
                "Flickr30k images are shared on request: fill in the form on the Flickr30k page "
                "of the University of Illinois (shannon.cs.illinois.edu/DenotationGraph), then "
                "download flickr30k-images.tar.gz"
            ),
        ),
    ]
}

# Region features pre-extracted by the bottom-up-attention detector, as the field shares them
# (an encoder `type: precomputed` lists them per pool; see vecomp.features.bottom_up). LXMERT's
# releases (airsplay/lxmert README): 36 boxes per image, its ten-field layout; the detector's own
# COCO release (peteanderson80/bottom-up-attention README): 36 boxes, the six-field layout.
# Nobody publishes Flickr30k features in these layouts: list a TSV you made as a local path.
_LXMERT = "https://nlp.cs.unc.edu/data/lxmert_data"
FEATURE_FILES: dict[str, RemoteFile] = {
    f.key: f
    for f in [
        *(
            RemoteFile(f"lxmert/{name}", f"{_LXMERT}/{folder}/{published}")
            for name, folder, published in [
                ("mscoco_train2014_obj36.zip", "mscoco_imgfeat", "train2014_obj36.zip"),
                ("mscoco_val2014_obj36.zip", "mscoco_imgfeat", "val2014_obj36.zip"),
                ("vg_gqa_obj36.zip", "vg_gqa_imgfeat", "vg_gqa_obj36.zip"),
                ("gqa_testdev_obj36.zip", "vg_gqa_imgfeat", "gqa_testdev_obj36.zip"),
                ("nlvr2_train_obj36.zip", "nlvr2_imgfeat", "train_obj36.zip"),
                ("nlvr2_valid_obj36.zip", "nlvr2_imgfeat", "valid_obj36.zip"),
                ("nlvr2_test_obj36.zip", "nlvr2_imgfeat", "test_obj36.zip"),
            ]
        ),
        RemoteFile(
            "bottom_up/trainval_36.zip",
            "https://storage.googleapis.com/up-down-attention/trainval_36.zip",
        ),
    ]
}

POOLS: dict[str, ImagePool] = {
    p.name: p
    for p in [
        ImagePool("coco", ("coco/train2014.zip", "coco/val2014.zip"), coco_image_id),
        ImagePool("flickr30k", ("flickr30k/flickr30k-images.tar.gz",)),
        ImagePool("gqa", ("gqa/images.zip",)),
        ImagePool("nlvr2", ("nlvr2/train_img.zip", "nlvr2/dev_img.zip", "nlvr2/test1_img.zip")),
    ]
}

TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task(
            "vqav2",
            pool="coco",
            files=(
                "vqav2/v2_Questions_Train_mscoco.zip",
                "vqav2/v2_Questions_Val_mscoco.zip",
                "vqav2/v2_Annotations_Train_mscoco.zip",
                "vqav2/v2_Annotations_Val_mscoco.zip",
            ),
            kind="vqa",
            metric="vqa_accuracy",
            description="VQAv2 open-ended QA on COCO; dev/test are halves of val2014 by image",
        ),
        Task(
            "gqa",
            pool="gqa",
            files=("gqa/questions1.2.zip",),
            kind="classification",
            metric="accuracy",
            description="GQA balanced compositional QA; train / val (dev) / testdev (test)",
        ),
        Task(
            "nlvr2",
            pool="nlvr2",
            files=("nlvr2/train.json", "nlvr2/dev.json", "nlvr2/test1.json"),
            kind="pair",
            labels=("False", "True"),
            metric="accuracy_consistency",
            description="NLVR2 true/false statements about an image pair; test = test1",
        ),
        Task(
            "snli_ve",
            pool="flickr30k",
            files=(
                "snli_ve/snli_ve_train.jsonl",
                "snli_ve/snli_ve_dev.jsonl",
                "snli_ve/snli_ve_test.jsonl",
            ),
            kind="classification",
            metric="accuracy",
            description="SNLI-VE visual entailment on Flickr30k (3-way)",
            labels=("contradiction", "neutral", "entailment"),
        ),
        Task(
            "flickr30k_retrieval",
            pool="flickr30k",
            files=("karpathy/caption_datasets.zip",),
            kind="retrieval",
            metric="recall_at_k",
            description="Flickr30k image-text retrieval, Karpathy split (1k test)",
        ),
        Task(
            "coco_retrieval",
            pool="coco",
            files=("karpathy/caption_datasets.zip",),
            kind="retrieval",
            metric="recall_at_k",
            description="COCO image-text retrieval, Karpathy split (restval joins train)",
        ),
    ]
}


class UnknownNameError(VecompError, KeyError):
    """A task, pool or file name the registry does not know; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


def _lookup(table: dict, name: str, what: str):
    try:
        return table[name]
    except KeyError:
        valid = ", ".join(sorted(table))
        raise UnknownNameError(f"unknown {what} {name!r}; valid {what}s: {valid}") from None


def get_task(name: str) -> Task:
    return _lookup(TASKS, name, "task")


def get_pool(name: str) -> ImagePool:
    return _lookup(POOLS, name, "image pool")


def get_file(key: str) -> RemoteFile:
    return _lookup(FILES | FEATURE_FILES, key, "file")


def pools_for(tasks: list[str]) -> list[str]:
    """Image pools the given tasks need, each once, in registry order."""
    needed = {get_task(t).pool for t in tasks}
    return [p for p in POOLS if p in needed]


def files_for(tasks: list[str]) -> list[str]:
    """Every file key the given tasks need (annotations and their pools' image archives)."""
    keys = {k for t in tasks for k in get_task(t).files}
    keys |= {k for p in pools_for(tasks) for k in get_pool(p).files}
    return [k for k in FILES if k in keys]
