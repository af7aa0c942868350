"""The atomic writer: whole files only, killed writers' temp files cleaned up, permissions from the umask."""

import os
import subprocess
import sys

import pytest

from agents.util.atomic import atomic_write, atomic_write_text, remove_stale_temp_files


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")

    def boom(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_a_killed_writers_temp_file_is_removed_on_the_next_write(tmp_path):
    # a child process starts a write and is killed (SIGKILL) before it renames its temp file
    code = (
        "import os, signal, sys\n"
        "from agents.util.atomic import atomic_write\n"
        "atomic_write(sys.argv[1], lambda f: (f.write(b'x'), f.flush(), os.kill(os.getpid(), signal.SIGKILL)))\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "ckpt.pt")], check=False)
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".ckpt.pt.")
    live = tmp_path / f".other.{os.getpid()}.abc.tmp"  # a temp file of a live writer (this process) stays
    live.write_text("in progress")
    atomic_write_text(tmp_path / "metrics.csv", "a,b\n")
    assert sorted(os.listdir(tmp_path)) == [live.name, "metrics.csv"]
    assert remove_stale_temp_files(tmp_path) == []


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "x.json", "{}")
        assert (p.stat().st_mode & 0o777) == 0o644
        os.umask(0o077)
        q = atomic_write_text(tmp_path / "y.json", "{}")
        assert (q.stat().st_mode & 0o777) == 0o600
    finally:
        os.umask(old)
