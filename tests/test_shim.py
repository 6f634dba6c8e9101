"""The shim beside a detached container (minidocker/shim.c): the supervisor becomes it.

The supervisor execs the shim once the container runs: same PID (so the container is still its
child), a small C program with nothing of Python in it; it copies the container's output into the
log and, when the container exits, execs the supervisor again, which records the exit.

Two kinds of test: the compiled shim run by hand, as the supervisor runs it, to check its log
lines against what supervisor._copy would write for the same bytes; and whole containers, whose
output must come back from `minidocker logs` byte for byte, whatever bytes they are.
"""

import fcntl
import json
import os
import random
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidocker import logfile, supervisor

# Bytes a UTF-8 decoder must get right: what is text must stay text, the rest must come back as is.
TRICKY = [
    b"ASCII, quotes \" and backslashes \\, controls \x00\x01\x1b\x1f\x7f\b\f\n\r\t",
    "caf\u00e9, \u20ac, \U0001f600, U+FFFF \uffff, U+10FFFF \U0010ffff".encode(),
    b"\xc0\x80 \xc1\xbf \xe0\x80\x80 \xe0\x9f\xbf \xf0\x80\x80\x80 \xf0\x8f\xbf\xbf",  # overlong forms
    b"\xed\xa0\x80 \xed\xbf\xbf \xed\x9f\xbf",  # encoded surrogates U+D800, U+DFFF; U+D7FF is fine
    b"\xf4\x90\x80\x80 \xf5\x80\x80\x80 \xf8\x88\x80\x80\x80 \xfe\xff",  # beyond U+10FFFF; never UTF-8
    b"\x80 \xbf\xbf \xe2\x82 \xf0\x9f\x98 \xc3",  # lone continuation bytes; sequences cut short
    bytes(range(256)),
]
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")  # RFC 3339, UTC, microseconds


def run_shim(tmp_path, payloads: dict[str, bytes], exit_code: int = 0, exit_first: bool = False,
             max_size: int = -1, max_files: int = 1) -> tuple[str, int]:
    """Run the compiled shim as supervisor._exec_shim does, beside a forked "container" that writes
    `payloads` to its stdout and stderr pipes and exits; return the log's path and the wait status
    that the shim handed to its finish command.  With `exit_first`, the container has written
    everything into (enlarged) pipes and exited before the shim starts: all of it must be drained."""
    shim = supervisor.shim_binary()
    log, status = tmp_path / "container.log", tmp_path / "status"
    pipes = {stream: os.pipe() for stream in payloads}
    finish = [sys.executable, "-S", "-c", "import sys; open(sys.argv[1], 'w').write(sys.argv[2])", str(status)]
    shim_pid = os.fork()
    if shim_pid == 0:
        try:
            container = os.fork()  # the shim must be its parent, to wait for it
            if container == 0:
                for stream, data in payloads.items():
                    if exit_first:  # room for all of it: writing must not wait for a reader
                        fcntl.fcntl(pipes[stream][1], fcntl.F_SETPIPE_SZ, max(len(data), 4096))
                    with open(pipes[stream][1], "wb", closefd=False) as out:
                        out.write(data)
                os._exit(exit_code)
            if exit_first:  # wait until it has exited, but leave it a zombie, for the shim to reap
                os.waitid(os.P_PID, container, os.WEXITED | os.WNOWAIT)
            streams = []
            for stream, (read_end, write_end) in pipes.items():
                os.close(write_end)
                os.set_inheritable(read_end, True)
                streams.append(f"{read_end}:{stream}")
            os.execv(shim, [shim, str(log), str(max_size), str(max_files), str(container), ",".join(streams), "--",
                            *finish])
        finally:
            os._exit(127)
    for read_end, write_end in pipes.values():
        os.close(read_end)
        os.close(write_end)
    assert os.waitstatus_to_exitcode(os.waitpid(shim_pid, 0)[1]) == 0
    return str(log), int(status.read_text())


def check_log(log_path, payloads: dict[str, bytes]) -> None:
    """Each line is exactly what supervisor._copy writes for its chunk, and the chunks of each
    stream, read back by logfile.entries (as `minidocker logs` does), are that stream's bytes."""
    with open(log_path, "rb") as f:
        for line in f:
            entry = json.loads(line)
            chunk = entry["log"].encode("utf-8", "surrogateescape")
            assert TIMESTAMP.fullmatch(entry["time"]), entry["time"]
            python_line = json.dumps({"log": chunk.decode("utf-8", "surrogateescape"), "stream": entry["stream"],
                                      "time": entry["time"]}) + "\n"  # as supervisor._copy writes it
            assert line.decode("ascii") == python_line
    entries = list(logfile.entries(str(log_path)))
    for stream, data in payloads.items():
        assert b"".join(chunk for s, chunk in entries if s == stream) == data


@pytest.mark.parametrize("exit_first", [False, True], ids=["while-it-runs", "drained-after-it-exited"])
def test_the_shim_logs_any_bytes_as_supervisor_copy_would_and_hands_on_the_wait_status(tmp_path, exit_first):
    # Larger than a pipe and than one read: chunks end in the middle of UTF-8 sequences too.
    random_bytes = random.Random(5).randbytes(300_000)
    payloads = {"stdout": b"".join(TRICKY) + random_bytes, "stderr": b"to stderr \xff\n" + b"".join(TRICKY)}
    log, status = run_shim(tmp_path, payloads, exit_code=5, exit_first=exit_first)
    check_log(log, payloads)
    assert os.waitstatus_to_exitcode(status) == 5


@settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(st.lists(st.one_of(st.binary(max_size=40), st.text(max_size=20).map(
    lambda t: t.encode("utf-8", "surrogatepass")), st.sampled_from(TRICKY)), max_size=8).map(b"".join))
def test_the_log_gives_back_whatever_bytes_the_container_wrote(tmp_path_factory, data):
    tmp_path = tmp_path_factory.mktemp("shim")
    log, _status = run_shim(tmp_path, {"stdout": data})
    check_log(log, {"stdout": data})


def _printf(data: bytes) -> str:
    """A busybox printf format that writes exactly `data` (every byte in octal: no % or \\ to mind)."""
    return "".join(f"\\{byte:03o}" for byte in data)


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().decode().split("\0")


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"  # exited, not reaped yet
    except FileNotFoundError:
        return True


def _kilobytes(pid: int, path: str, field: str) -> int:
    with open(f"/proc/{pid}/{path}") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def test_a_detached_container_is_watched_by_the_shim_that_logs_and_records_its_exit(md):
    md.out("run", "-d", "--name", "quiet", "busybox", "sh", "-c",
           "echo out; echo err >&2; read line < /dev/fd/0 || sleep 30; exit 3")
    shim = int(md.inspect("quiet", "{{.State.SupervisorPid}}"))
    md.wait_for(lambda: _cmdline(shim)[0] == supervisor.shim_binary(), what="the shim")
    assert _parent(md.pid("quiet")) == shim  # the same process that started the container
    with open(f"/proc/{shim}/maps") as f:
        assert "python" not in f.read()  # the C program, not an interpreter
    md.wait_for(lambda: md("logs", "quiet").stdout == "out\n", what="the log")
    assert md("logs", "quiet").stderr == "err\n"
    md.out("kill", "-s", "TERM", "quiet")  # sh as PID 1 ignores TERM ...
    md.out("kill", "quiet")  # ... not KILL
    assert md.out("wait", "quiet") == "137"
    assert md.inspect("quiet", "{{.State.Status}}") == "exited"
    md.wait_for(lambda: _gone(shim), what="the shim, then the finishing supervisor, to exit")


def test_the_shim_takes_less_than_3_mb_of_memory(md):
    md.out("run", "-d", "--name", "sleeper", "busybox", "sleep", "1000")
    shim = int(md.inspect("sleeper", "{{.State.SupervisorPid}}"))
    md.wait_for(lambda: _cmdline(shim)[0] == supervisor.shim_binary(), what="the shim")
    assert _kilobytes(shim, "status", "VmRSS") < 3 * 1024  # the Python shim took 8 MB


def test_binary_output_comes_back_from_logs_byte_for_byte_with_stdout_and_stderr_apart(md):
    out, err = b"".join(TRICKY), b"err \xc3\x28 \xe2\x82\xac\x00\n"
    md.out("run", "-d", "--name", "binary", "busybox", "sh", "-c",
           f"printf '{_printf(out)}'; printf '{_printf(err)}' >&2; exit 7")
    assert md.out("wait", "binary") == "7"
    logs = md("logs", "binary", input=b"", check=True)
    assert (logs.stdout, logs.stderr) == (out, err)


def test_a_detached_terminal_is_logged_until_the_container_closes_it(md):
    md.out("run", "-d", "-t", "--name", "tty", "busybox", "sh", "-c", r"printf 'a\377b\n'; exit 4")
    assert md.out("wait", "tty") == "4"
    assert md("logs", "tty", input=b"", check=True).stdout == b"a\xffb\r\n"  # the terminal's \n is \r\n


def test_detached_run_with_rm_is_removed_by_the_finishing_supervisor(md):
    md.out("run", "-d", "--rm", "--name", "brief", "busybox", "sh", "-c", "echo bye")
    md.wait_for(lambda: md("inspect", "brief").returncode != 0, what="the container to be removed")
    assert md.out("ps", "-aq") == ""


def test_without_a_shim_or_gcc_to_build_it_the_supervisor_waits_itself(md):
    """No compiled shim and no compiler (shim_binary raises, as it does without gcc): the container
    still runs, logs and records its exit -- the Python supervisor stays beside it instead."""
    program = f"""
from minidocker import api, supervisor
from minidocker.errors import MinidockerError
from minidocker.store import Store

def no_gcc():
    raise MinidockerError("cannot build the shim: gcc not found")

supervisor.shim_binary = no_gcc  # the daemon forked by api.run inherits this
api.run("busybox", ["sh", "-c", "echo out; echo err >&2; exec sleep 30"], detach=True, name="fallback",
        store=Store({md.root!r}))
"""
    subprocess.run([sys.executable, "-c", program], env=md.env, check=True, timeout=60)
    waiting = int(md.inspect("fallback", "{{.State.SupervisorPid}}"))
    assert _cmdline(waiting)[0] == sys.executable and _parent(md.pid("fallback")) == waiting
    md.wait_for(lambda: md("logs", "fallback").stdout == "out\n", what="the log")
    assert md("logs", "fallback").stderr == "err\n"
    md.out("kill", "fallback")
    assert md.out("wait", "fallback") == "137"
    md.wait_for(lambda: _gone(waiting), what="the supervisor to exit")
