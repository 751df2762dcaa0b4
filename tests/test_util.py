"""Atomic writes: the file, then the rename, then the directory reach the disk, in that order."""

import os
import stat

from genmodels.core import paths as util


def test_atomic_write_fsyncs_file_then_renames_then_fsyncs_the_directory(tmp_path, monkeypatch):
    """After a power loss a rename whose directory was never fsynced can be lost."""
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        calls.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        real_fsync(fd)

    def replace(src, dst):
        calls.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(util.os, "fsync", fsync)
    monkeypatch.setattr(util.os, "replace", replace)
    util.atomic_write(tmp_path / "f.json", "{}")
    assert calls == ["fsync-file", "replace", "fsync-dir"]
    assert (tmp_path / "f.json").read_text() == "{}"
