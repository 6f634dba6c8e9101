"""Bad input: one clear line on stderr, Docker's exit code, nothing stored changed, never a traceback."""

import os
import subprocess

import pytest

from conftest import MINIDOCKER

CASES = [
    (["run", "nosuchimage", "true"], 125, "Unable to find image"),
    (["run", "--memory", "12q", "busybox", "true"], 125, "invalid value '12q' for --memory"),
    (["run", "--memory", "1k", "busybox", "true"], 125, "minimum memory limit"),
    (["run", "--cpus", "abc", "busybox", "true"], 125, "--cpus"),
    (["run", "--cpus", "999", "busybox", "true"], 125, "range of CPUs"),
    (["run", "--pids-limit", "many", "busybox", "true"], 125, "--pids-limit"),
    (["run", "--pid", "sideways", "busybox", "true"], 125, "--pid"),
    (["run", "--network", "bridge", "busybox", "true"], 125, "--network"),
    (["run", "--name", "bad name!", "busybox", "true"], 125, "Invalid container name"),
    (["run", "--frobnicate", "busybox", "true"], 125, "unknown flag: --frobnicate"),
    (["run", "busybox", "no-such-command"], 127, 'exec: "no-such-command": executable file not found in $PATH'),
    (["run", "busybox", "/etc/passwd"], 126, "permission denied"),
    (["run", "-u", "ghost", "busybox", "true"], 125, "unable to find user ghost"),
    (["run", "-e", "=x", "busybox", "true"], 125, "invalid environment variable"),
    (["run", "-h", "no\nway", "busybox", "true"], 125, "invalid value 'no\\nway' for --hostname"),
    (["kill", "-s", "99", "keeper"], 1, "invalid signal: '99'"),
    (["stop", "-t", "nan", "keeper"], 125, "invalid value 'nan' for --time"),
    (["stop", "nosuch"], 1, "No such container: nosuch"),
    (["logs", "nosuch"], 125, "No such container: nosuch"),
    (["inspect", "-f", "{{.Nope}}", "nosuch"], 125, "No such container"),
    (["kill", "-s", "SIGNOPE", "nosuch"], 1, "No such container"),
    ([], 125, "required"),
    (["run", "--name", "ab" * 32, "busybox", "true"], 125, "64 hex digits are read as a container ID"),
    (["run", "-u", "4294967295", "busybox", "true"], 125, "uids and gids must be in range 0-2147483647"),
    (["run", "-u", "99999999999", "busybox", "true"], 125, "uids and gids must be in range 0-2147483647"),
    (["run", "-u", "0:4294967295", "busybox", "true"], 125, "uids and gids must be in range 0-2147483647"),
    (["run", "-w", "/etc/passwd", "busybox", "true"], 125,
     'chdir to cwd ("/etc/passwd") set in config.json failed: not a directory'),
    (["run", "-w", "/bin/sh/x", "busybox", "true"], 125, "mkdir /bin/sh/x: not a directory"),
    (["run", "--pids-limit", "1", "busybox", "true"], 125,
     "fork: resource temporarily unavailable: --pids-limit 1 leaves no room for the container's init"),
    (["rename", "keeper", "0123456789abcdef" * 4], 125, "64 hex digits are read as a container ID"),
    (["tag", "busybox", "a@sha256:" + "0" * 64], 125, "refusing to create a tag with a digest reference"),
    (["commit", "keeper", "snap@sha256:" + "0" * 64], 125, "refusing to create a tag with a digest reference"),
]


@pytest.mark.parametrize("args, code, message", CASES, ids=[" ".join(c[0]) or "nothing" for c in CASES])
def test_bad_input_gets_one_line_and_the_right_exit_code(md, args, code, message):
    md.out("create", "--name", "keeper", "busybox", "true")
    result = md(*args)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert md.out("ps", "-a", "-q") and md.inspect("keeper", "{{.Name}}") == "/keeper"  # nothing lost
    if args and args[0] == "run":
        assert len(md.out("ps", "-aq").split()) in (1, 2)  # at most the failed container itself, "Created"


def test_a_failed_start_is_recorded_and_rm_run_leaves_nothing(md):
    failed = md("run", "--name", "f", "busybox", "nope")
    assert failed.returncode == 127
    assert md.inspect("f", "{{.State.Status}} {{.State.ExitCode}}") == "created 127"
    assert "executable file not found" in md.inspect("f", "{{.State.Error}}")
    assert md("run", "--rm", "busybox", "nope").returncode == 127
    assert md.out("ps", "-aq").split() == [md.inspect("f", "{{.Id}}")[:12]]


def test_stale_cidfile_is_refused(md, tmp_path):
    stale = tmp_path / "stale.cid"
    stale.write_text("0123456789abcdef")
    result = md("run", "--cidfile", str(stale), "busybox", "true")
    assert result.returncode == 125 and "Container ID file found" in result.stderr
    assert stale.read_text() == "0123456789abcdef"
    assert md.out("ps", "-aq") == ""


def test_ambiguous_prefix_is_refused(md):
    ids = {md.out("create", "busybox", "true") for _ in range(20)}
    first_chars = [i[0] for i in ids]
    shared = next(c for c in first_chars if first_chars.count(c) > 1)
    result = md("inspect", shared)
    assert result.returncode == 125 and "multiple IDs found" in result.stderr


def test_an_env_file_must_be_a_regular_file_of_at_most_16_mib(md, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # nobody ever writes: reading it would wait forever
    big = tmp_path / "big.env"
    big.write_bytes(b"K=v\n" * ((16 << 20) // 4 + 1))
    small = tmp_path / "ok.env"
    small.write_bytes(b"# a comment\r\nGREETING=hi\r\n\nOTHER=x")
    for path, message in [(fifo, "is not a regular file"), ("/dev/zero", "is not a regular file"),
                          (big, "is larger than 16 MiB, minidocker's limit"), (tmp_path, "is not a regular file")]:
        result = md("run", "--rm", "--env-file", str(path), "busybox", "true", timeout=20)
        assert result.returncode == 125 and message in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert md.out("run", "--rm", "--env-file", str(small), "busybox", "sh", "-c", 'echo "$GREETING $OTHER"') == "hi x"
    assert md.out("ps", "-aq") == ""


def test_a_command_line_of_200_kib_runs_in_the_foreground_and_detached(md):
    words = ["a" * 100_000, "b" * 100_000]  # one argument may be at most 128 KiB (execve(2), MAX_ARG_STRLEN)
    result = md("run", "--rm", "busybox", "echo", *words, timeout=30)
    assert result.returncode == 0 and result.stdout == " ".join(words) + "\n", result.stderr[-300:]
    md.out("run", "-d", "--name", "big", "busybox", "echo", *words, timeout=30)
    md.wait_for(lambda: md.inspect("big", "{{.State.Status}}") == "exited", what="the detached echo to end")
    assert md.inspect("big", "{{.State.ExitCode}}") == "0"
    assert md.out("logs", "big") == " ".join(words)
    md.out("rm", "big")
    assert md.out("ps", "-aq") == ""


def test_a_refused_tag_or_name_stores_nothing(md):
    def repositories():
        return [line.split()[:2] for line in md.out("images").splitlines()]

    before = repositories()
    assert md("tag", "busybox", "a@sha256:" + "0" * 64).returncode == 125
    assert repositories() == before == [["REPOSITORY", "TAG"], ["busybox", "latest"]]
    cid = md.out("create", "busybox", "true")
    assert md("create", "--name", cid, "busybox", "true").returncode == 125  # another container's full ID
    assert md("rename", cid, cid).returncode == 125
    assert md.out("ps", "-aq", "--no-trunc") == cid and md.inspect(cid, "{{.Id}}") == cid


def test_an_image_with_its_own_old_root_is_refused_in_one_line_and_runs_with_chroot(md):
    """pivot_root(2) needs an empty directory for the host's tree, /.old_root: the image's own file or dir is refused."""
    md.out("run", "--name", "f", "busybox", "sh", "-c", "echo mine > /.old_root")
    md.out("commit", "f", "oldroot:file")
    md.out("run", "--name", "d", "busybox", "sh", "-c", "mkdir /.old_root && echo mine > /.old_root/x")
    md.out("commit", "d", "oldroot:dir")
    for image, kind in [("oldroot:file", "a file"), ("oldroot:dir", "a directory that is not empty")]:
        result = md("run", "--rm", image, "true")
        assert result.returncode == 125 and result.stderr == (
            f"minidocker: the image's /.old_root is {kind}: pivot_root(2) needs that name for an empty directory "
            f"(run it with --chroot, or remove /.old_root from the image)\n")
    assert md.out("run", "--rm", "--chroot", "oldroot:dir", "cat", "/.old_root/x") == "mine"
    assert md.out("run", "--rm", "busybox", "sh", "-c", "ls -a / | grep -c old_root || true") == "0"


def test_exec_in_a_working_directory_that_is_not_one_says_so(md):
    md.out("run", "-d", "--name", "w", "busybox", "sleep", "60")
    for workdir, reason in [("/nonexist", "no such file or directory"), ("/etc/passwd", "not a directory")]:
        result = md("exec", "-w", workdir, "w", "true")
        assert result.returncode == 125 and result.stderr == \
            f'minidocker: chdir to cwd ("{workdir}") set in config.json failed: {reason}\n'
    assert md.out("exec", "-w", "/tmp", "w", "pwd") == "/tmp"


def test_not_root_is_one_line_and_exit_1(md):
    """A student who forgets sudo: Docker's CLI, refused by its daemon, says so in a line and exits 1."""
    def become_nobody():
        os.setgid(65534)
        os.setuid(65534)

    for argv in (["ps"], ["run", "--rm", "busybox", "true"]):
        run = subprocess.run([MINIDOCKER, *argv], env=md.env, capture_output=True, text=True, timeout=60,
                             preexec_fn=become_nobody, cwd="/")
        assert run.returncode == 1, run.stderr
        assert run.stderr.startswith("minidocker: permission denied:") and len(run.stderr.splitlines()) == 1
        assert "run it as root" in run.stderr
