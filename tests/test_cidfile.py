"""--cidfile is claimed exclusively: the "metadata conflict" of chapter 2 (graded by exercises/02_cidfile).

`create --cidfile F` must fail, changing nothing, when F already exists -- even
as a dangling symbolic link -- and of several creates racing for the same F,
exactly one may win.  open(2) with O_CREAT | O_EXCL asks the kernel for exactly
that, in one atomic step.
"""

import os
import subprocess

import pytest

from conftest import MINIDOCKER

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")


def test_a_dangling_symlink_at_the_cidfile_path_is_refused_not_followed(md, tmp_path):
    cidfile, target = tmp_path / "web.cid", tmp_path / "somewhere-else"
    cidfile.symlink_to(target)  # points at nothing: a check with stat() finds no file here
    result = md("create", "--cidfile", str(cidfile), "busybox", "true")
    assert result.returncode == 125 and "Container ID file found" in result.stderr, result.stderr
    assert not target.exists(), "the ID was written through the symbolic link"
    assert md.out("ps", "-aq") == ""


def test_a_cidfile_that_cannot_be_created_is_one_line_and_125(md, tmp_path):
    result = md("create", "--cidfile", str(tmp_path / "no-such-dir" / "web.cid"), "busybox", "true")
    assert result.returncode == 125, result.stderr
    assert result.stderr.startswith("minidocker: cannot create cidfile") and result.stderr.count("\n") == 1
    assert md.out("ps", "-aq") == ""


def test_of_creates_racing_for_one_cidfile_exactly_one_wins(md, tmp_path):
    cidfile = tmp_path / "race.cid"
    racers = [subprocess.Popen([MINIDOCKER, "create", "--cidfile", str(cidfile), "busybox", "true"], env=md.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
    outcomes = [(p.wait(timeout=60), *p.communicate()) for p in racers]
    winners = [out.strip() for code, out, _err in outcomes if code == 0]
    assert len(winners) == 1, outcomes
    assert all(code == 125 and "Container ID file found" in err for code, _out, err in outcomes if code != 0)
    assert cidfile.read_text() == winners[0]
    assert md.out("ps", "-aq", "--no-trunc") == winners[0]
