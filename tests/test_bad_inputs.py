"""Bad inputs to every `vecomp` command, table-driven: one clear message, no traceback, nothing
written.

Each case builds its inputs, runs the command as a user or a cluster job does (``cli.main``),
and asserts three things:
- the exit status: 2 for an option argparse refuses (the value is checked as the option is
  read, by the same schema that checks a config), 1 for an input the command finds wrong;
- the message names the culprit (the option, file, key or store) and the problem;
- nothing was left behind: the case's folder and the shared inputs hold exactly the files they
  held before (no stray output, no half-written file).

A case that gives a traceback fails here with it: the exception escapes ``cli.main``.
Bad configs are refused before any job by Snakemake (tests/test_config.py, test_workflow.py);
their cases here go through ``validate_config``, the check Snakemake runs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from PIL import Image

from tests.cli_args import vecomp_args
from tests.fusion_fixtures import toy_task
from tests.workflow_helpers import ROOT
from vecomp import cli
from vecomp.config import ConfigError, validate_config
from vecomp.data.fetch import ChecksumLock

GQA_QUESTIONS = "gqa/questions1.2.zip"
MODEL = {"width": 16, "layers": 1, "heads": 2, "ffn": 32}
TRAIN = {"epochs": 1, "batch_size": 16, "device": "cpu", "threads": 1}
PATCH = {  # a random-weight ViT at 16 px: encodes in milliseconds
    "type": "timm_patch",
    "model": "vit_tiny_patch16_224",
    "model_kwargs": {"img_size": 16, "patch_size": 8, "embed_dim": 16, "depth": 1, "num_heads": 2},
}


@dataclass(frozen=True)
class Inputs:
    """What a case can use: its own empty folder, and shared inputs it must not change."""

    tmp: Path
    shared: Path

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    @property
    def task(self) -> dict:
        """A prepared toy GQA task with its text store and three feature stores."""
        return {
            "prepared": self.shared / "prepared" / "gqa",
            "text": self.shared / "text",
            "stores": {e: self.shared / "features" / e for e in ("sees_a", "sees_b", "noise")},
        }

    @property
    def images(self) -> Path:
        return self.shared / "images"

    @property
    def pool_index(self) -> Path:
        return self.shared / "pool.parquet"

    def train(self, **options) -> list[str]:
        """`vecomp train` on the toy task, two stores, with ``options`` replacing any default."""
        task = self.task
        stores = [f"{e}={task['stores'][e]}" for e in ("sees_a", "sees_b")]
        base = dict(
            task="gqa",
            prepared=task["prepared"],
            text=task["text"],
            store=stores,
            seed=0,
            model=MODEL,
            train=TRAIN,
            out=self.out,
        )
        return vecomp_args("train", **(base | options))

    def copy_store(self, name: str = "sees_a") -> Path:
        """A private copy of a toy store, for cases that damage it."""
        return Path(shutil.copytree(self.task["stores"][name], self.tmp / "store"))


@dataclass(frozen=True)
class Case:
    argv: Callable[[Inputs], list[str]]  # builds the case's inputs, returns the command line
    status: int
    says: tuple[str, ...]  # what the message must hold: the culprit and the problem


def _mirror(i: Inputs, data: bytes, sums: bytes | None) -> Path:
    """A mirror serving ``data`` as GQA's questions, with SHA256SUMS listing ``sums``' digest."""
    mirror = i.tmp / "mirror"
    (mirror / "gqa").mkdir(parents=True)
    (mirror / GQA_QUESTIONS).write_bytes(data)
    if sums is not None:
        digest = hashlib.sha256(sums).hexdigest()
        (mirror / "SHA256SUMS").write_text(f"{digest}  {GQA_QUESTIONS}\n")
    return mirror


def _locked(i: Inputs, data: bytes) -> Path:
    lock = ChecksumLock(i.tmp / "checksums.lock.yaml")
    lock.record(GQA_QUESTIONS, hashlib.sha256(data).hexdigest(), len(data), "https://x.invalid")
    return lock.path


def _tampered_mirror(i: Inputs) -> list[str]:
    lock = _locked(i, b"questions")
    mirror = _mirror(i, b"tampered!", sums=b"tampered!")  # the mirror's sums rewritten to match
    return vecomp_args("download", file=GQA_QUESTIONS, out=i.out, mirror=mirror, lock=lock)


def _unlisted_mirror(i: Inputs) -> list[str]:
    mirror = _mirror(i, b"questions", sums=None)
    (mirror / "SHA256SUMS").write_text(f"{'0' * 64}  other/file.zip\n")
    return vecomp_args("download", file=GQA_QUESTIONS, out=i.out, mirror=mirror)


def _zip_slip(i: Inputs) -> list[str]:
    import zipfile

    archive = i.tmp / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escaped.txt", b"x")
    return vecomp_args("unpack", archive=archive, out=i.out)


def _not_a_zip(i: Inputs) -> list[str]:
    archive = i.tmp / "truncated.zip"
    archive.write_bytes(b"PK\x03\x04 this is not a whole zip file")
    return vecomp_args("unpack", archive=archive, out=i.out)


def _wrong_suffix(i: Inputs) -> list[str]:
    archive = i.tmp / "questions.rar"
    archive.write_bytes(b"rar")
    return vecomp_args("unpack", archive=archive, out=i.out)


def _empty_image_folder(i: Inputs) -> list[str]:
    (i.tmp / "empty").mkdir()
    return vecomp_args("index-pool", pool="gqa", images=[i.tmp / "empty"], out=i.out)


def _snli_files(i: Inputs, row: dict) -> list[str]:
    root = i.tmp / "snli_ve"
    root.mkdir()
    files = []
    for split in ("train", "dev", "test"):
        path = root / f"snli_ve_{split}.jsonl"
        path.write_text(json.dumps(row) + "\n" if split == "train" else "")
        files.append(f"snli_ve/snli_ve_{split}.jsonl={path}")
    return files


def _snli_record(**fields) -> dict:
    record = {"Flickr30K_ID": "1", "gold_label": "neutral", "sentence2": "A dog.", "pairID": "p"}
    return record | fields


def _prepare_snli(i: Inputs, **fields) -> list[str]:
    files = _snli_files(i, _snli_record(**fields))
    return vecomp_args("prepare", task="snli_ve", file=files, pool_index=i.pool_index, out=i.out)


def _tampered_store(i: Inputs) -> list[str]:
    from safetensors.torch import load_file, save_file

    store = i.copy_store()
    shard = next(store.glob("shard-*.safetensors"))
    tensors = load_file(shard)
    tensors["tokens"] = tensors["tokens"] * 2
    save_file(tensors, shard)
    return i.train(store=[f"sees_a={store}"])


def _store_without_manifest(i: Inputs) -> list[str]:
    store = i.copy_store()
    (store / "manifest.json").unlink()
    return i.train(store=[f"sees_a={store}"])


def _manifest_not_json(i: Inputs) -> list[str]:
    store = i.copy_store()
    (store / "manifest.json").write_text('{"format_version": ')
    return i.train(store=[f"sees_a={store}"])


def _gqa_tables_as_vqav2(i: Inputs) -> list[str]:
    return i.train(task="vqav2")


def _empty_prepared_folder(i: Inputs) -> list[str]:
    (i.tmp / "prepared").mkdir()
    return i.train(prepared=i.tmp / "prepared")


def _extract(i: Inputs, **options) -> list[str]:
    spec = {"type": "attribute_probe", "sees": "color"}
    base = dict(encoder="probe", spec=spec, pool="gqa", pool_index=i.pool_index, out=i.out)
    return vecomp_args("extract-features", **(base | options))


def _replaced_image(i: Inputs) -> list[str]:
    """A pool indexed, then its first image given other pixels under the same name."""
    from vecomp.data.index_pool import index_pool

    folder = i.tmp / "images"
    folder.mkdir()
    for n in range(3):
        Image.new("RGB", (16, 16), (40 * n, 0, 0)).save(folder / f"{n + 1}.png")
    index_pool("gqa", [folder]).to_parquet(i.tmp / "pool.parquet")
    Image.new("RGB", (16, 16), "white").save(folder / "1.png")
    return _extract(i, spec=PATCH, pool_index=i.tmp / "pool.parquet", images_per_shard=2)


def _analyse_task(i: Inputs, **options) -> list[str]:
    task = i.task
    base = dict(
        task="gqa",
        prepared=task["prepared"],
        text=task["text"],
        store=[f"sees_a={task['stores']['sees_a']}"],
        runs=[i.tmp / "run"],
        out=i.out,
    )
    return vecomp_args("analyse-task", **(base | options))


def _empty_folder(i: Inputs) -> Path:
    (i.tmp / "empty").mkdir()
    return i.tmp / "empty"


def _missing(i: Inputs) -> Path:
    return i.tmp / "nowhere"


CASES: dict[str, Case] = {
    # --- the command line itself
    "an unknown command": Case(lambda i: ["extract"], 2, ("unknown command 'extract'",)),
    # --- downloads
    "an unknown registry file": Case(
        lambda i: vecomp_args("download", file="gqa/nope.zip", out=i.out),
        1,
        ("unknown file 'gqa/nope.zip'", "gqa/questions1.2.zip"),
    ),
    "a tampered mirror whose sums were rewritten": Case(
        _tampered_mirror, 1, ("checksums.lock.yaml", "SHA256SUMS", "The lock is the reference")
    ),
    "a mirror whose SHA256SUMS lacks the file": Case(
        _unlisted_mirror, 1, ("lists no checksum for gqa/questions1.2.zip",)
    ),
    "a manual file not placed": Case(
        lambda i: vecomp_args(
            "download", file="nlvr2/train_img.zip", out=i.out, manual_dir=i.tmp / "manual"
        ),
        1,
        ("nlvr2/train_img.zip", "place it at"),
    ),
    "zero download retries": Case(
        lambda i: vecomp_args("download", file=GQA_QUESTIONS, out=i.out, retries=0),
        2,
        ("--retries", "data.download.retries: 0 is less than the minimum of 1"),
    ),
    "--synthetic without a mirror": Case(
        lambda i: vecomp_args("download", file=GQA_QUESTIONS, out=i.out, synthetic=True),
        1,
        ("--synthetic", "--mirror"),
    ),
    # --- archives
    "a missing archive": Case(
        lambda i: vecomp_args("unpack", archive=_missing(i), out=i.out),
        2,
        ("--archive", "nowhere does not exist"),
    ),
    "an archive member escaping the target": Case(_zip_slip, 1, ("evil.zip", "../escaped.txt")),
    "a truncated archive": Case(_not_a_zip, 1, ("truncated.zip",)),
    "an archive of an unknown format": Case(
        _wrong_suffix, 1, ("questions.rar", "unknown archive format")
    ),
    # --- images
    "an image folder that does not exist": Case(
        lambda i: vecomp_args("index-pool", pool="gqa", images=[_missing(i)], out=i.out),
        1,
        ("no such image folder", "nowhere"),
    ),
    "an image folder without images": Case(
        _empty_image_folder, 1, ("no image (.jpg, .jpeg, .png) under", "empty")
    ),
    "an unknown image pool": Case(
        lambda i: vecomp_args("index-pool", pool="imagenet", images=[i.images], out=i.out),
        1,
        ("imagenet",),
    ),
    # --- records
    "a pool index that does not exist": Case(
        lambda i: vecomp_args("prepare", task="snli_ve", pool_index=_missing(i), out=i.out),
        2,
        ("--pool-index", "nowhere does not exist"),
    ),
    "a record with a number where the format has text": Case(
        lambda i: _prepare_snli(i, sentence2=5),
        1,
        ("snli_ve_train.jsonl:1", "sentence2 is int 5", "where the format has text"),
    ),
    "a record without its label": Case(
        lambda i: _prepare_snli(i, gold_label=None),
        1,
        ("snli_ve_train.jsonl:1", "missing field(s) gold_label"),
    ),
    "a record naming an image the pool lacks": Case(
        lambda i: _prepare_snli(i, Flickr30K_ID="999"),
        1,
        ("[train] sample p", "'999' is not in the image pool"),
    ),
    "a --file without KEY=PATH": Case(
        lambda i: vecomp_args(
            "prepare", task="snli_ve", file=["oops"], pool_index=i.pool_index, out=i.out
        ),
        2,
        ("--file expects KEY=PATH", "oops"),
    ),
    "an unknown VQA setting": Case(
        lambda i: vecomp_args(
            "prepare", task="vqav2", pool_index=i.pool_index, out=i.out, vqa={"min_count": 3}
        ),
        2,
        ("--vqa", "tasks.vqav2: unknown key(s) ['min_count']"),
    ),
    "a VQA setting that is not JSON": Case(
        lambda i: ["prepare", "--task", "vqav2", "--vqa", "{min_answer_count: 2}"],
        2,
        ("--vqa", "not JSON"),
    ),
    # --- feature extraction
    "an encoder spec that is not JSON": Case(
        lambda i: [*_extract(i)[:3], "--spec", "{type: probe}"], 2, ("--spec", "not JSON")
    ),
    "an encoder spec that is a list": Case(
        lambda i: [*_extract(i)[:3], "--spec", "[1, 2]"], 2, ("--spec", "a JSON object")
    ),
    "an extraction batch size of 0": Case(
        lambda i: _extract(i, batch_size=0),
        2,
        ("--batch-size", "features.batch_size: 0 is less than the minimum of 1"),
    ),
    "an unknown on_bad_images policy": Case(
        lambda i: _extract(i, on_bad_images="ignore"),
        2,
        ("--on-bad-images", "'ignore'"),
    ),
    "an extraction from a missing pool index": Case(
        lambda i: _extract(i, pool_index=_missing(i)),
        2,
        ("--pool-index", "nowhere does not exist"),
    ),
    "an image replaced after it was indexed": Case(
        _replaced_image, 1, ("1: the file changed since the pool was indexed", "index-pool")
    ),
    # --- training options
    "training settings that are not JSON": Case(
        lambda i: i.train(train="{epochs: 2}"), 2, ("--train", "not JSON")
    ),
    "model settings that are not JSON": Case(
        lambda i: i.train(model="{'width': 16}"), 2, ("--model", "not JSON")
    ),
    "a training batch size of 0": Case(
        lambda i: i.train(train=TRAIN | {"batch_size": 0}),
        2,
        ("--train", "train.batch_size: 0 is less than the minimum of 1"),
    ),
    "0 epochs": Case(
        lambda i: i.train(train=TRAIN | {"epochs": 0}),
        2,
        ("--train", "train.epochs: 0 is less than the minimum of 1"),
    ),
    "a negative learning rate": Case(
        lambda i: i.train(train=TRAIN | {"lr": -0.001}),
        2,
        ("--train", "train.lr: -0.001 is less than or equal to the minimum of 0"),
    ),
    "an unknown training setting": Case(
        lambda i: i.train(train=TRAIN | {"epoch": 2}),
        2,
        ("--train", "train: unknown key(s) ['epoch']"),
    ),
    "an unknown model setting": Case(
        lambda i: i.train(model=MODEL | {"depth": 2}),
        2,
        ("--model", "model: unknown key(s) ['depth']"),
    ),
    "a VE-dropout of 1.5": Case(lambda i: i.train(ve_dropout=1.5), 2, ("--ve-dropout", "1.5")),
    "a --store without ENCODER=FOLDER": Case(
        lambda i: i.train(store=["just-a-folder"]), 2, ("ENCODER=FOLDER", "just-a-folder")
    ),
    # --- training inputs
    "a prepared folder that does not exist": Case(
        lambda i: i.train(prepared=_missing(i)), 2, ("--prepared", "nowhere does not exist")
    ),
    "a folder that is not a prepared task": Case(
        _empty_prepared_folder, 1, ("not a prepared task folder", "labels.json")
    ),
    "GQA's prepared tables trained as VQAv2": Case(
        _gqa_tables_as_vqav2, 1, ("prepared tables of task 'gqa', not 'vqav2'",)
    ),
    "a text store that does not exist": Case(
        lambda i: i.train(text=_missing(i)), 2, ("--text", "nowhere does not exist")
    ),
    "a feature store that does not exist": Case(
        lambda i: i.train(store=[f"sees_a={_missing(i)}"]), 1, ("no feature store at", "nowhere")
    ),
    "a folder that is not a feature store": Case(
        lambda i: i.train(store=[f"sees_a={_empty_folder(i)}"]),
        1,
        ("is not a feature store (no manifest.json, no shards)", "extract-features --out"),
    ),
    "a store without its manifest": Case(
        _store_without_manifest, 1, ("not a complete feature store", "manifest.json")
    ),
    "a store whose manifest is not JSON": Case(
        _manifest_not_json, 1, ("manifest.json is not JSON",)
    ),
    "a store whose shard changed after it was written": Case(
        _tampered_store, 1, ("shard-00000.safetensors is not the shard that was written",)
    ),
    # --- analysis
    "attention samples of 0": Case(
        lambda i: _analyse_task(i, samples=0),
        2,
        ("--samples", "analysis.attention_samples: 0 is less than the minimum of 1"),
    ),
    "evaluation options that are not JSON": Case(
        lambda i: _analyse_task(i, options="{rerank_top_k: 3}"), 2, ("--options", "not JSON")
    ),
    "a run folder without a checkpoint": Case(
        lambda i: _analyse_task(i), 1, ("run has no checkpoint.pt", "train that run first")
    ),
    "an analysis folder that does not exist": Case(
        lambda i: vecomp_args("figures", analysis=_missing(i), out=i.out),
        2,
        ("--analysis", "nowhere does not exist"),
    ),
    "an analysis folder without its tables": Case(
        lambda i: vecomp_args("figures", analysis=_empty_folder(i), out=i.out),
        1,
        ("lacks the analysis tables", "results.csv"),
    ),
    "a run folder that never finished": Case(
        lambda i: vecomp_args("collect", i.tmp / "run", out=i.out, summary=i.tmp / "s.json"),
        1,
        ("run has no metrics.json",),
    ),
    # --- the synthetic suite and pretraining
    "an unknown synthetic-suite setting": Case(
        lambda i: vecomp_args(
            "generate", spec={"seeds": 1}, mirror=i.out, scene_graphs=i.tmp / "graphs"
        ),
        2,
        ("--spec", "data.synthetic: unknown key(s) ['seeds']"),
    ),
    "an unknown pretraining option": Case(
        lambda i: vecomp_args("pretrain", objective="grid", spec={"epoch": 1}, out=i.out),
        1,
        ("objective 'grid' has no option(s) ['epoch']",),
    ),
}


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shared")
    toy_task(root, "gqa", "classification")
    (root / "images").mkdir()
    for n, color in enumerate(("red", "blue")):
        Image.new("RGB", (8, 8), color).save(root / "images" / f"{n + 1}.jpg")
    index = vecomp_args(
        "index-pool", pool="flickr30k", images=[root / "images"], out=root / "pool.parquet"
    )
    assert cli.main(index) == 0
    return root


@pytest.mark.parametrize("name", list(CASES))
def test_a_bad_input_gets_one_clear_message_and_leaves_nothing(
    name, shared, tmp_path, capsys, monkeypatch
):
    case = CASES[name]
    monkeypatch.chdir(tmp_path)  # whatever a command writes by default lands where it is seen
    inputs = Inputs(tmp_path / "case", shared)
    inputs.tmp.mkdir()
    (inputs.tmp / "run").mkdir()
    argv = case.argv(inputs)
    before = _files(tmp_path), _files(shared)
    capsys.readouterr()
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # argparse refuses an option
        status = exit_.code
    message = capsys.readouterr().err
    assert status == case.status, message
    for fragment in case.says:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "Traceback" not in message
    assert (_files(tmp_path), _files(shared)) == before, "a bad input left files behind"


def test_the_table_keeps_at_least_forty_bad_inputs():
    """Issue 20's floor: a case removed without a replacement fails here."""
    assert len(CASES) >= 40


CONFIG_CASES = {  # what to break in the default config, and the key the message must name
    "a typo inside encoders.grid.pretrain": (
        lambda c: c["encoders"]["grid"]["pretrain"].update(epoch=3),
        "encoders.grid.pretrain",
    ),
    "train.batch_size of 0": (lambda c: c["train"].update(batch_size=0), "train.batch_size"),
    "a negative learning rate": (lambda c: c["train"].update(lr=-1), "train.lr"),
    "an unknown task": (lambda c: c["tasks"].update(vqa3={}), "unknown task(s) ['vqa3']"),
}


@pytest.mark.parametrize("name", list(CONFIG_CASES))
def test_a_bad_config_value_is_named_with_its_key(name):
    """What Snakemake runs before any job (tests/test_workflow.py shows it stops the run)."""
    breaks, says = CONFIG_CASES[name]
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    breaks(config)
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert says in str(err.value)
