"""chroot vs pivot_root on the real kernel: the classic chroot escape works under --chroot, not by default.

minidocker/demos/chroot_breakout.c climbs out of its root with chdir("..")
and reports whether a marker file that exists only on the host is visible.
There are no volumes yet, so the static binary goes into the container
through stdin (`run -i`) and `cat` writes it to /tmp/b.

Needs root and gcc + libc6-dev.  Each test uses its own MINIDOCKER_ROOT and
checks that its container left no mounts and no cgroup directories behind.
"""

import glob
import os
import shlex
import subprocess

import pytest

from conftest import MINIDOCKER, demo_program  # MINIDOCKER: the learner's minidocker, under `minidocker grade`

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")


@pytest.fixture(scope="module")
def binary(tmp_path_factory) -> bytes:
    from minidocker.demos import breakout_binary

    return demo_program(tmp_path_factory, breakout_binary)


@pytest.fixture
def marker(tmp_path) -> str:
    """A file only the host has: a container can see it only by escaping."""
    path = tmp_path / "marker-only-on-the-host"
    path.write_text("host\n")
    return str(path)


def mounts_mentioning(path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(path) in line]


def run(tmp_path, flags: list[str], command: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess:
    """`minidocker run --rm` in this test's own MINIDOCKER_ROOT; afterwards, prove nothing is left."""
    root = tmp_path / "root"
    cidfile = tmp_path / "cid"
    if cidfile.exists():
        cidfile.unlink()
    before = mounts_mentioning(tmp_path)
    result = subprocess.run([MINIDOCKER, "run", "--rm", "--cidfile", str(cidfile), *flags, "busybox", *command],
                            env={**os.environ, "MINIDOCKER_ROOT": str(root)}, input=stdin,
                            capture_output=True, timeout=60)
    assert mounts_mentioning(tmp_path) == before
    cid = cidfile.read_text().strip()
    assert len(cid) == 64, (cid, result.stderr)
    assert glob.glob(f"/sys/fs/cgroup/*/minidocker/{cid}") == []
    assert os.listdir(root / "containers") == []  # --rm removed the container's directory too
    return result


def breakout(tmp_path, binary: bytes, marker: str, *flags: str) -> subprocess.CompletedProcess:
    script = f"cat > /tmp/b && chmod +x /tmp/b && /tmp/b {shlex.quote(marker)}"
    return run(tmp_path, ["-i", *flags], ["sh", "-c", script], stdin=binary)


@pytest.mark.parametrize("flags", [[], ["--chroot"]], ids=["pivot_root", "chroot"])
def test_marker_is_not_simply_visible(tmp_path, marker, flags):
    """Without the escape neither mode shows the host's file -- so an ESCAPED below really means escaped."""
    result = run(tmp_path, flags, ["test", "-e", marker])
    assert result.returncode == 1, result.stderr


def test_chroot_can_be_escaped(tmp_path, binary, marker):
    result = breakout(tmp_path, binary, marker, "--chroot")
    assert (result.returncode, result.stdout.decode()) == (0, f"ESCAPED: {marker} is visible\n"), result.stderr


def test_pivot_root_cannot_be_escaped(tmp_path, binary, marker):
    result = breakout(tmp_path, binary, marker)
    assert (result.returncode, result.stdout.decode()) == (1, f"CONTAINED: {marker} is not visible\n"), result.stderr
