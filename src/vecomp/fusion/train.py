"""Train and evaluate one run of the sweep: (task, encoder subset, seed, VE-dropout).

AdamW with linear warm-up and linear decay, gradient clipping, bf16 autocast on a GPU and fp32
on the CPU. Every random draw (initialisation, shuffling, dropout, VE-dropout, negatives) comes
from the run's seed, so a CPU rerun gives identical metrics. After each epoch the model is
evaluated on dev (model selection by the task's headline metric) and the complete training
state is saved to ``resume.pt``; a killed run started again continues from there and ends
exactly as an uninterrupted one. A NaN or infinite loss stops the run naming the epoch, step
and samples.

Outputs (all written at the end, atomically): ``metrics.json`` (dev and test metrics of the
selected model, per-epoch history; no timings, which go to the log), ``predictions.parquet``
(test), ``masked.csv`` (test metrics with every subset of the run's encoders masked: one tidy
row per kept subset and metric) and ``checkpoint.pt`` (the selected weights with their model
config, training settings, seed, and code and library versions: everything needed to rebuild
the model).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from bisect import bisect_left
from dataclasses import asdict, dataclass, fields, replace
from functools import cache
from pathlib import Path

import pandas as pd
import torch

from .. import __version__
from ..devices import autocast, pick_device
from ..errors import VecompError
from ..features.store import FeatureStore
from ..io import atomic_path, write_json
from ..kinds import get_kind
from ..settings import json_setting
from .data import TaskData, add_task_data_arguments, store_argument, to_device
from .evaluate import evaluate, kept_subsets
from .heads import RetrievalModel, build_task_model
from .model import FusionConfig
from .pretrained import architecture, load_pretrained, parameter_groups

RESUME = "resume.pt"


class TrainingDivergedError(VecompError):
    pass


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 6
    batch_size: int = 32
    lr: float = 1e-3
    lr_pretrained: float | None = None  # model.init's layers and embeddings (None: lr)
    layer_decay: float = 1.0  # model.init: each layer below the top at this factor of its lr
    weight_decay: float = 0.01
    warmup: float = 0.1  # fraction of all steps
    clip_norm: float = 1.0
    negatives: int = 1  # retrieval: negative images per positive caption
    eval_batch_size: int = 256
    rerank_top_k: int | None = None  # retrieval: rerank only each query's top k
    preload_features: bool = True  # hold the stores in memory (False: memory-mapped, per batch)
    loader_workers: int = 0  # processes collating batches ahead (0: the training process)
    device: str = "auto"
    threads: int = 0  # torch CPU threads (0 = torch's default)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise VecompError(f"unknown training settings {unknown}; known: {sorted(known)}")
        return cls(**data)


@dataclass(frozen=True)
class Run:
    task: str
    encoders: tuple[str, ...]
    seed: int
    ve_dropout: float
    matched: tuple[str, ...] = ()  # widened to the parameter count of these encoders' model

    @property
    def name(self) -> str:
        variant = "matched" if self.matched else f"vedrop{self.ve_dropout:g}"
        return f"{self.task}/{'+'.join(self.encoders)}/seed{self.seed}-{variant}"


def schedule(step: int, total: int, warmup: float) -> float:
    """Linear warm-up to 1 over ``warmup * total`` steps, then linear decay to 0."""
    warm = max(1, int(warmup * total))
    if step < warm:
        return (step + 1) / warm
    return max(0.0, (total - step) / max(1, total - warm))


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def matched_settings(kind: str, outputs: int, base: FusionConfig, reference: dict[str, int]):
    """Model settings that give ``base`` (a config) about the parameter count of the same model
    over the ``reference`` encoders (name -> feature width): the width grows from ``base.width``
    in steps of the head count (up to 4x) and the feed-forward width keeps its ratio to it.
    Models are only sized, on torch's meta device, never allocated. Returns (settings, target).
    """

    def sized(encoders, dims, width):
        ffn = max(1, round(base.ffn * width / base.width))
        config = replace(base, encoders=tuple(encoders), encoder_dims=dims, width=width, ffn=ffn)
        with torch.device("meta"):
            return parameter_count(build_task_model(kind, config, outputs)), config

    @cache
    def candidate(width):
        return sized(base.encoders, base.encoder_dims, width)

    target, _ = sized(reference, reference, base.width)
    widths = range(base.width, 4 * base.width + 1, base.heads)
    first = bisect_left(widths, target, key=lambda w: candidate(w)[0])  # first not smaller
    nearby = [widths[i] for i in (first - 1, first) if 0 <= i < len(widths)]
    _, best = min((candidate(w) for w in nearby), key=lambda c: abs(c[0] - target))
    return {"width": best.width, "ffn": best.ffn}, target


class Trainer:
    def __init__(
        self,
        run: Run,
        data: TaskData,
        model_settings: dict,
        train: TrainConfig,
        reference_dims: dict[str, int] | None = None,
    ):
        self.run, self.data, self.train = run, data, train
        self.device = pick_device(train.device)
        torch.manual_seed(run.seed)
        outputs = max(1, len(data.labels))
        self.reference_parameters = None
        init = model_settings.get("init")
        _check_text_store(data.text, init)
        if init:  # the pretrained model fixes the sizes; its hidden size is the text's width
            model_settings = model_settings | architecture(init)
        if run.matched:
            base = FusionConfig(
                encoders=run.encoders,
                encoder_dims={e: data.visual.dims[e] for e in run.encoders},
                text_dim=data.text.dim,
                **model_settings,
            )
            widened, self.reference_parameters = matched_settings(
                data.kind, outputs, base, reference_dims
            )
            model_settings = model_settings | widened
        self.config = FusionConfig(
            encoders=run.encoders,
            encoder_dims={e: data.visual.dims[e] for e in run.encoders},
            text_dim=data.text.dim or model_settings["width"],
            ve_dropout=run.ve_dropout,
            **model_settings,
        )
        self.model = build_task_model(data.kind, self.config, outputs)
        if init:
            load_pretrained(self.model.fusion, init)
        self.model = self.model.to(self.device)
        # a GPU steps AdamW in one fused kernel; a CPU in one multi-tensor update per step
        # (torch's default there is a Python loop over the parameters: 4% of a demo epoch)
        fused = self.device.type == "cuda"
        self.optimizer = torch.optim.AdamW(
            self._parameters(),
            lr=train.lr,
            weight_decay=train.weight_decay,
            foreach=not fused,
            fused=fused,
        )
        self.steps_per_epoch = math.ceil(self._train_size() / train.batch_size)
        total = self.steps_per_epoch * train.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: schedule(step, total, train.warmup)
        )
        self.generator = torch.Generator().manual_seed(run.seed)
        self.epoch, self.history = 0, []
        self.best: dict | None = None

    def _parameters(self):
        """Every parameter at train.lr; with model.init, the pretrained ones at their own."""
        if not self.config.init:
            return self.model.parameters()
        pretrained = self.train.lr_pretrained or self.train.lr
        return parameter_groups(self.model, self.train.lr, pretrained, self.train.layer_decay)

    @property
    def settings(self) -> dict:
        """Everything that shapes the result; a resume file made under others is discarded."""
        ignored = ("device", "threads", "preload_features", "loader_workers")  # how, not what
        train = {k: v for k, v in asdict(self.train).items() if k not in ignored}
        return {
            "model": self.config.to_dict(),
            "train": train,
            "pool_grid": self.data.visual.pool_grid,
            "text": self.data.text.info,
            "vecomp": __version__,
        }

    def _train_size(self) -> int:
        size = len(self.data.split("train"))
        return size * (1 + self.train.negatives) if self.data.target == "match" else size

    # ------------------------------------------------------------------ training
    def fit(self, resume_from: Path | None = None) -> None:
        if resume_from is not None and resume_from.exists():
            self.load_state(resume_from)  # a no-op for a file made under other settings
        while self.epoch < self.train.epochs:
            started = time.perf_counter()
            loss = self._train_epoch()
            dev, _ = self.evaluate("dev")
            self.epoch += 1
            self._record(loss, dev, time.perf_counter() - started)
            if resume_from is not None:
                self.save_state(resume_from)

    def _train_epoch(self) -> float:
        self.model.train()
        total, count = 0.0, 0
        batches = self.data.batches("train", self.train.batch_size, self.generator)
        for step, batch in enumerate(batches):
            loss = self._step(batch)
            if not math.isfinite(loss):
                raise TrainingDivergedError(
                    f"{self.run.name}: the loss became {loss} at epoch {self.epoch + 1}, step "
                    f"{step + 1} (a batch of {len(batch['targets'])} training samples from "
                    f"position {step * self.train.batch_size} of the epoch's shuffled order). "
                    "Lower train.lr, check the features for extreme values, or keep "
                    "train.clip_norm; no output was written (a resume file saved under the old "
                    "settings is discarded when they change)."
                )
            total, count = total + loss, count + 1
        return total / max(count, 1)

    def _step(self, batch: dict) -> float:
        batch = to_device(batch, self.device)
        with autocast(self.device):
            logits = self.model(batch)
            loss = self.model.loss(logits.float(), batch["targets"])
            if isinstance(self.model, RetrievalModel):
                loss = loss + self.model.CONTRASTIVE_WEIGHT * self.model.contrastive_loss(batch)
        if not torch.isfinite(loss):
            return float(loss.detach())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.train.clip_norm)
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach())

    def _record(self, loss: float, dev: dict, seconds: float) -> None:
        headline = dev[get_kind(self.data.kind).headline]
        self.history.append({"epoch": self.epoch, "loss": loss, "dev": headline})
        print(
            f"{self.run.name} epoch {self.epoch}: loss {loss:.4f}, dev {headline:.2f}"
            f" ({seconds:.1f} s)"
        )
        if self.best is None or headline > self.best["dev"]:
            state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            self.best = {"epoch": self.epoch, "dev": headline, "state": state}

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, split: str, kept=None):
        with autocast(self.device):
            return evaluate(
                self.model,
                self.data,
                split,
                kept,
                self.train.eval_batch_size,
                self.device,
                rerank_top_k=self.train.rerank_top_k,
            )

    def final_results(self) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
        """Dev and test metrics of the selected model, test predictions, the masked table."""
        self.model.load_state_dict(self.best["state"])
        dev, _ = self.evaluate("dev")
        test, predictions = self.evaluate("test")
        rows = []
        for kept in kept_subsets(self.run.encoders):
            metrics = test if kept == self.run.encoders else self.evaluate("test", kept)[0]
            masked = [e for e in self.run.encoders if e not in kept]
            rows += [
                {
                    **self._run_columns(),
                    "kept": "+".join(kept),
                    "masked": "+".join(masked),
                    "metric": name,
                    "value": value,
                }
                for name, value in metrics.items()
            ]
        return {"dev": dev, "test": test}, predictions, pd.DataFrame(rows)

    def _run_columns(self) -> dict:
        return {
            "task": self.run.task,
            "encoders": "+".join(self.run.encoders),
            "seed": self.run.seed,
            "ve_dropout": self.run.ve_dropout,
            "matched": bool(self.run.matched),
        }

    # ------------------------------------------------------------------ state
    def save_state(self, path: Path) -> None:
        state = {
            "run": asdict(self.run),
            "settings": self.settings,
            "epoch": self.epoch,
            "history": self.history,
            "best": self.best,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }
        _save(state, path)

    def load_state(self, path: Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state["run"] != asdict(self.run):
            raise VecompError(
                f"{path} belongs to run {state['run']}, not {asdict(self.run)}: delete it to "
                "start this run afresh"
            )
        if state.get("settings") != self.settings:
            print(f"{path} was saved under other settings: discarded, training from scratch")
            path.unlink()
            return
        self.epoch, self.history, self.best = state["epoch"], state["history"], state["best"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        print(f"resumed {self.run.name} after epoch {self.epoch}")

    def checkpoint(self) -> dict:
        return {
            "format": "vecomp-fusion-checkpoint",
            "run": asdict(self.run),
            "kind": self.data.kind,
            "labels": self.data.labels,
            "model_config": self.config.to_dict(),
            "train_config": asdict(self.train),
            "pool_grid": self.data.visual.pool_grid,
            "text_store": self.data.text.info,
            "selected_epoch": self.best["epoch"],
            "state_dict": self.best["state"],
            "versions": versions(),
        }


def _check_text_store(text, init: str | None) -> None:
    """Token ids for an LM-initialised model (from its own tokenizer), states otherwise."""
    if init and not text.holds_ids:
        raise VecompError(
            f"model.init {init!r} reads token ids, but the text store holds another model's "
            f"states ({text.info.get('model')}): make it with `vecomp tokenize-text --model {init}`"
        )
    if init and text.info.get("model") != init:
        raise VecompError(
            f"the text store was tokenised for {text.info.get('model')!r}, not model.init "
            f"{init!r}: run `vecomp tokenize-text --model {init}` again"
        )
    if not init and text.holds_ids:
        raise VecompError(
            "the text store holds token ids (made for an LM-initialised model): a model "
            "without model.init reads cached states; run `vecomp encode-text`, or set model.init"
        )


def versions() -> dict[str, str]:
    return {"vecomp": __version__, "torch": torch.__version__, "python": platform.python_version()}


def _save(obj, path: Path) -> None:
    """torch.save, atomically and byte-reproducibly (through a file object, torch names the
    archive's root folder "archive" instead of after the temporary file's random name)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        torch.save(obj, file)


def load_checkpoint(path: Path):
    """Rebuild the task model of a ``checkpoint.pt``; returns (model, checkpoint dict)."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    config = FusionConfig.from_dict(checkpoint["model_config"])
    model = build_task_model(checkpoint["kind"], config, max(1, len(checkpoint["labels"])))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), checkpoint


def train_run(
    run: Run,
    data: TaskData,
    model_settings: dict,
    train: TrainConfig,
    out: Path,
    reference_dims: dict[str, int] | None = None,
):
    """Train, select on dev, evaluate on test (also masked) and write the run's outputs.

    Every output is a function of the inputs alone (no timings: those go to the log), so a
    rerun, here or on a cluster, gives the same bytes.
    """
    trainer = Trainer(run, data, model_settings, train, reference_dims)
    trainer.fit(resume_from=out / RESUME)
    results, predictions, masked = trainer.final_results()
    metrics = {
        **trainer._run_columns(),
        **results,
        "selected_epoch": trainer.best["epoch"],
        "history": trainer.history,
        "parameters": parameter_count(trainer.model),
        "matched_to": "+".join(run.matched),
        "reference_parameters": trainer.reference_parameters,
        "dropped_samples": data.dropped,
        "device": str(trainer.device),
    }
    _save(trainer.checkpoint(), out / "checkpoint.pt")
    with atomic_path(out / "predictions.parquet") as tmp:
        predictions.to_parquet(tmp, index=False)
    with atomic_path(out / "masked.csv") as tmp:
        masked.to_csv(tmp, index=False)
    write_json(out / "metrics.json", metrics)  # last: its presence means the run is complete
    (out / RESUME).unlink(missing_ok=True)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vecomp train", description=__doc__)
    add_task_data_arguments(
        parser, "ENCODER=FOLDER of a feature store, once per encoder of the subset (in order)"
    )
    parser.add_argument(
        "--match-store",
        type=store_argument,
        action="append",
        default=[],
        help="ENCODER=FOLDER of each encoder of a larger model: widen this run's model to that "
        "model's parameter count (the parameter-count control)",
    )
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--ve-dropout", type=float, default=0.0)
    parser.add_argument(
        "--model",
        type=json_setting("model"),
        default={},
        help="JSON: fusion model settings (the config's model: FusionConfig, plus pool_grid)",
    )
    parser.add_argument(
        "--train", type=json_setting("train"), default={}, help="JSON: training settings"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not 0 <= args.ve_dropout < 1:
        parser.error(f"--ve-dropout must be in [0, 1), got {args.ve_dropout}")
    if args.match_store and args.ve_dropout:
        parser.error("--match-store runs train without VE-dropout; drop --ve-dropout")
    train = TrainConfig.from_dict(args.train)
    if train.threads:
        torch.set_num_threads(train.threads)
    stores = dict(args.store)
    model = dict(args.model)
    pool_grid = model.pop("pool_grid", {})
    data = TaskData(
        args.task,
        args.prepared,
        args.text,
        stores,
        pool_grid,
        train.negatives,
        train.preload_features,
        train.loader_workers,
        pin_memory=pick_device(train.device).type == "cuda",
    )
    reference = {name: FeatureStore(folder).dim for name, folder in args.match_store}
    run = Run(args.task, tuple(stores), args.seed, args.ve_dropout, tuple(reference))
    started = time.perf_counter()
    metrics = train_run(run, data, model, train, args.out, reference)
    seconds = round(time.perf_counter() - started, 2)
    print(json.dumps({"run": run.name, "test": metrics["test"], "seconds": seconds}))
    return 0
