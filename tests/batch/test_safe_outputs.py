"""Outputs stay inside OUT: planted links are replaced, never written through; paths are checked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from medmm.cli import main
from medmm.errors import ExportError
from medmm.io.atomic import atomic_path, ensure_inside, open_append_no_follow
from tests.batch.conftest import copy_series


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_planted_links_in_the_output_folder_are_not_followed(tmp_path: Path) -> None:
    series_root = tmp_path / "in"
    key = copy_series("case_normal", series_root / "s", "links")
    outside = tmp_path / "outside"
    (outside / "victim_dir").mkdir(parents=True)
    (outside / "victim.txt").write_text("keep me\n")
    (outside / "victim_dir" / "keep.txt").write_text("keep me too\n")
    before = _snapshot(outside)
    out = tmp_path / "out"
    out.mkdir()
    for name in ("manifest.jsonl", "summary.csv", "index.html", "skipped_files.csv"):
        (out / name).symlink_to(outside / "victim.txt")
    (out / key).symlink_to(outside / "victim_dir", target_is_directory=True)
    (out / ".tmp-stale").symlink_to(outside / "victim_dir", target_is_directory=True)
    # The series folder is a link out of OUT: that series is refused (the user may have
    # meant the link, so it is not deleted); the run's own files replace their links.
    assert main(["analyze", str(series_root), "-o", str(out), "--no-detect", "--format", "json", "-q"]) == 1
    assert _snapshot(outside) == before, "a file outside OUT was changed"
    assert "outside the output folder" in (out / "summary.csv").read_text()
    for name in ("manifest.jsonl", "summary.csv", "index.html", "skipped_files.csv"):
        assert not (out / name).is_symlink(), name
    (out / key).unlink()
    assert main(["analyze", str(series_root), "-o", str(out), "--no-detect", "--format", "json", "-q"]) == 0
    assert (out / key / "result.json").is_file() and not (out / key).is_symlink()
    assert _snapshot(outside) == before
    # --resume appends to the manifest: a link planted there is refused, not appended through.
    os.replace(out / "manifest.jsonl", tmp_path / "real-manifest")
    (out / "manifest.jsonl").symlink_to(outside / "victim.txt")
    assert main(["analyze", str(series_root), "-o", str(out), "--no-detect", "--resume", "-q"]) != 0
    assert _snapshot(outside) == before


def test_ensure_inside_refuses_dot_dot_and_links_out(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert ensure_inside(out, out / "a" / "b.json") == out / "a" / "b.json"
    with pytest.raises(ExportError, match="outside the output folder"):
        ensure_inside(out, out / ".." / "escape.json")
    (out / "link").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(ExportError, match="outside the output folder"):
        ensure_inside(out, out / "link" / "x.json")
    with pytest.raises(ExportError, match="outside the output folder"):
        ensure_inside(out, out / "link")


def test_atomic_write_replaces_a_link_and_append_refuses_one(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    link = tmp_path / "out.txt"
    link.symlink_to(victim)
    with atomic_path(link) as tmp:
        tmp.write_text("new")
    assert victim.read_text() == "keep" and not link.is_symlink() and link.read_text() == "new"
    link.unlink()
    link.symlink_to(victim)
    with pytest.raises(ExportError, match="symbolic link"):
        open_append_no_follow(link)
    with open_append_no_follow(tmp_path / "log.jsonl") as fh:
        fh.write("{}\n")
    assert (tmp_path / "log.jsonl").read_text() == "{}\n"


def test_atomic_write_gives_the_usual_permissions_whatever_the_writer_chose(tmp_path: Path) -> None:
    # safetensors creates its files 0o600; a shipped weights file must be readable by others.
    umask = os.umask(0o022)
    os.umask(umask)
    if 0o666 & ~umask == 0o600:
        pytest.skip(f"umask {umask:o} makes 0o600 the usual mode: the check would be vacuous")
    target = tmp_path / "w.bin"
    with atomic_path(target) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"x")
        os.close(fd)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
