"""Atomic writes: the temporaries of a write killed mid-way go with the next write of the target."""

from __future__ import annotations

from vecomp.io import atomic_dir, atomic_path, write_json


def test_the_next_write_removes_what_a_killed_write_left(tmp_path):
    target = tmp_path / "resume.pt"
    killed = tmp_path / ".resume.pt.k1ll3d.tmp"  # what mkstemp named the killed write's file
    killed.write_bytes(b"half")
    other = tmp_path / ".metrics.json.k1ll3d.tmp"  # another target's: not this write's business
    other.write_bytes(b"half")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".metrics.json.k1ll3d.tmp", "resume.pt"]


def test_a_folder_write_removes_a_killed_folder_write(tmp_path):
    killed = tmp_path / ".run.k1ll3d.tmp"
    (killed / "sub").mkdir(parents=True)
    (killed / "sub" / "half.bin").write_bytes(b"half")
    with atomic_dir(tmp_path / "run") as tmp:
        write_json(tmp / "metrics.json", {"accuracy": 1.0})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["metrics.json"]
