"""commit --pause=false and export of a container that changes its files meanwhile (chapter 7, security issue 14).

The container keeps running while its writable layer is tarred.  These
tests change that layer from the host while commits and exports run, the
way a hostile or just busy container would: files swapped for symlinks
with renameat2(RENAME_EXCHANGE), files truncated and deleted.  The tar must
never contain a host file, and the command must never fail on a file that
merely changed.
"""

import ctypes
import os
import threading
import time

_libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD = -100
RENAME_EXCHANGE = 2  # renameat2(2): "atomically exchange oldpath and newpath"


def exchange(a: str, b: str) -> None:
    if _libc.renameat2(AT_FDCWD, a.encode(), AT_FDCWD, b.encode(), RENAME_EXCHANGE) != 0:
        raise OSError(ctypes.get_errno(), f"renameat2({a}, {b}, RENAME_EXCHANGE)")


class Meddler(threading.Thread):
    """Runs `step` over and over until stopped (bounded by the test's own loop)."""

    def __init__(self, step):
        super().__init__(daemon=True)
        self.step, self.stop, self.rounds = step, threading.Event(), 0

    def run(self):
        while not self.stop.is_set():
            self.step()
            self.rounds += 1


def upper_of(md, name: str) -> str:
    return md.inspect(name, "{{.GraphDriver.Data.UpperDir}}")


def stored_bytes(root: str) -> list[bytes]:
    """The content of every regular file in the image store (layers, tar-split records, blobs)."""
    import gzip

    found = []
    for dirpath, _dirs, files in os.walk(os.path.join(root, "images")):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            found.append(data)
            if data[:2] == b"\x1f\x8b":
                try:
                    found.append(gzip.decompress(data))
                except OSError:
                    pass
    return found


def test_a_file_swapped_for_a_symlink_during_commit_or_export_never_copies_the_host_file(md, tmp_path):
    secret = os.urandom(16).hex().encode()  # 32 bytes, exactly as long as the container's own files
    marker = tmp_path / "host-secret"
    marker.write_bytes(secret)
    md.out("run", "-d", "--name", "c", "busybox", "sleep", "300")
    upper = upper_of(md, "c")
    pairs = 40
    for i in range(pairs):  # many pairs: each commit has many chances to look at a name mid-swap
        with open(f"{upper}/file{i}", "wb") as f:
            f.write(b"x" * len(secret))
        os.symlink(str(marker), f"{upper}/link{i}")

    def swap_all():
        for i in range(pairs):
            exchange(f"{upper}/file{i}", f"{upper}/link{i}")

    meddler = Meddler(swap_all)
    meddler.start()
    try:
        deadline, commits = time.monotonic() + 30, 0
        exported = tmp_path / "c.tar"
        while commits < 20 and time.monotonic() < deadline:
            result = md("commit", "--pause=false", "c", f"snap:{commits}")
            assert result.returncode == 0, result.stderr
            assert "Traceback" not in result.stderr
            assert md("export", "-o", str(exported), "c").returncode == 0
            assert secret not in exported.read_bytes(), "export copied the host file"
            commits += 1
    finally:
        meddler.stop.set()
        meddler.join(10)
    assert commits >= 5 and meddler.rounds > 100  # the race really ran
    leaked = [data for data in stored_bytes(md.root) if secret in data]
    assert not leaked, "a layer holds the host file's content"


def test_export_and_commit_succeed_while_files_are_truncated_and_deleted(md, tmp_path):
    md.out("run", "-d", "--name", "busy", "busybox", "sleep", "300")
    upper = upper_of(md, "busy")
    os.makedirs(f"{upper}/churn")
    content = b"y" * 200_000

    def churn():
        for i in range(30):
            path = f"{upper}/churn/f{i}"
            with open(path, "wb") as f:
                f.write(content)
        for i in range(0, 30, 2):
            os.truncate(f"{upper}/churn/f{i}", 10)
        for i in range(1, 30, 2):
            os.unlink(f"{upper}/churn/f{i}")
        os.rmdir(f"{upper}/churn/d") if os.path.isdir(f"{upper}/churn/d") else os.mkdir(f"{upper}/churn/d")

    meddler = Meddler(churn)
    meddler.start()
    try:
        deadline, done = time.monotonic() + 30, 0
        while done < 10 and time.monotonic() < deadline:
            exported = md("export", "-o", str(tmp_path / "busy.tar"), "busy")
            assert exported.returncode == 0 and not exported.stderr, exported.stderr
            committed = md("commit", "--pause=false", "busy", f"busy:{done}")
            assert committed.returncode == 0 and not committed.stderr, committed.stderr
            done += 1
    finally:
        meddler.stop.set()
        meddler.join(10)
    assert done >= 3 and meddler.rounds > 10
