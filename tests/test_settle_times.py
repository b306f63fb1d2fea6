"""Settling the file times of artifacts restored by DVC."""

from __future__ import annotations

import os

import pytest

from vecomp import cli
from vecomp.settle_times import settle_times


def test_every_file_and_folder_gets_one_time_and_links_are_left_alone(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for i, name in enumerate(("a/x.csv", "a/b/y.parquet", "z.json")):
        (tmp_path / name).write_text(name)
        os.utime(tmp_path / name, (1000 + i, 1000 + i))  # inputs newer than outputs, say
    (tmp_path / "link").symlink_to(tmp_path / "z.json")
    assert settle_times([tmp_path], when=5000.0) == 6  # 3 files, 3 folders
    times = {p.stat().st_mtime for p in tmp_path.rglob("*") if not p.is_symlink()}
    assert times == {5000.0}


def test_the_cli_names_a_missing_folder(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["settle-times", str(tmp_path / "results")])
    assert exit_.value.code == 2
    assert "does not exist; run `dvc checkout` or `dvc pull` first" in capsys.readouterr().err
