"""Atomic writes: the old file or the new one, never half, and no temporary file left behind."""

import os

import pytest

from agents import atomic
from agents.atomic import atomic_write_bytes, atomic_write_text


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    """A successful atomic write replaces the content; only the target file remains."""
    target = tmp_path / "file.txt"
    atomic_write_text(target, "old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["file.txt"]


def test_failed_atomic_write_keeps_the_old_file(tmp_path, monkeypatch):
    """If the final rename fails, the old content stays and the temporary file is removed."""
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"old")

    def broken_replace(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file.bin"]


def test_missing_parent_folders_are_created(tmp_path):
    target = tmp_path / "a" / "b" / "file.txt"
    atomic_write_text(target, "text")
    assert target.read_text() == "text"


def test_an_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    """A KeyboardInterrupt while writing removes the temporary file and keeps the old content."""
    target = tmp_path / "file.bin"
    atomic_write_bytes(target, b"old")

    def interrupted(descriptor):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file.bin"]
