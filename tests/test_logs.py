"""Chapter 2: the container's log -- `logs` streams it, and --log-opt rotates it as Docker's json-file does.

Both writers of the log are tested: the supervisor itself when the container runs attached
(logfile.LogWriter, Python) and the shim beside a detached one (shim.c).  What `logs` prints is
checked line by line: the newest lines, in order, none twice, none cut in half.
"""

import hashlib
import json
import os
import subprocess
import threading
import time

import pytest

from conftest import MINIDOCKER

SEQ = "".join(f"{n}\n" for n in range(1, 100_001)).encode()  # what `seq 1 100000` writes: 588,895 bytes
TIMES = 170  # ... that many times over: 100 MB


def _log_files(md, ref: str) -> dict[str, int]:
    """The container's log files (container.log, container.log.1, ...) and their sizes."""
    directory = os.path.join(md.root, "containers", md.inspect(ref, "{{.Id}}"))
    return {name: os.path.getsize(os.path.join(directory, name))
            for name in os.listdir(directory) if name.startswith("container.log")}


def _numbers(text: str) -> list[int]:
    assert text.endswith("\n"), text[-20:]
    return [int(line) for line in text[:-1].split("\n")]  # a torn line would not be a number in the run


def test_logs_streams_a_100_mb_log_in_little_memory(md):
    """100 MB of output come back byte for byte, while `logs` itself stays under 60 MB of memory
    (it read the whole log into memory before: 225 MB of RSS for 200 MB)."""
    md.out("run", "-d", "--name", "talkative", "busybox", "sh", "-c",
           f"seq 1 100000 > /tmp/seq; for i in $(seq {TIMES}); do cat /tmp/seq; done")
    assert md.out("wait", "talkative", timeout=120) == "0"
    expected = hashlib.sha256()
    for _ in range(TIMES):
        expected.update(SEQ)

    reader = subprocess.Popen([MINIDOCKER, "logs", "talkative"], env=md.env, stdout=subprocess.PIPE)
    too_slow = threading.Timer(120, reader.kill)  # bounded in time too: a stuck reader fails the test
    too_slow.start()
    started = time.monotonic()
    got, size, peak_kib = hashlib.sha256(), 0, 0
    try:
        while chunk := reader.stdout.read(1 << 20):
            got.update(chunk)
            size += len(chunk)
            # VmHWM: the peak RSS of `logs` since its execve (wait4's ru_maxrss would also count the
            # moments before it, as a fork of this big pytest process)
            peak_kib = max(peak_kib, _vm_hwm_kib(reader.pid))
    finally:
        too_slow.cancel()
        reader.stdout.close()
        reader.wait()
    assert reader.returncode == 0, f"logs exited {reader.returncode} after {time.monotonic() - started:.0f} s"
    assert (size, got.hexdigest()) == (len(SEQ) * TIMES, expected.hexdigest())
    assert 0 < peak_kib < 60 * 1024, f"peak RSS of `logs`: {peak_kib // 1024} MB"


def _vm_hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0  # it has just exited


@pytest.mark.parametrize("detach", [True, False], ids=["detached-the-shim-writes", "attached-python-writes"])
def test_a_rotated_log_keeps_the_newest_files_and_logs_reads_them_in_order(md, detach):
    """max-size=100k max-file=3 and 1 MB of output: container.log, .1 and .2 only, each about 100 kB
    at most; `logs` prints the newest lines in order, none twice, none torn; the exit code is
    recorded (by the shim's finishing supervisor, detached); `rm` removes the rotated files too."""
    run = md("run", *(["-d"] if detach else []), "--name", "rotating", "--log-opt", "max-size=100k",
             "--log-opt", "max-file=3", "busybox", "sh", "-c", "seq 1 150000; exit 3")
    assert run.returncode == (0 if detach else 3), run.stderr
    assert md.out("wait", "rotating") == "3"
    assert md.inspect("rotating", "{{.State.Status}} {{.State.ExitCode}} {{.State.SupervisorPid}}") == "exited 3 0"

    files = _log_files(md, "rotating")
    assert sorted(files) == ["container.log", "container.log.1", "container.log.2"]
    assert all(size <= 101_000 for size in files.values()), files  # (what ends a line may overshoot a little)
    # rotated before the entry (up to 64 KiB of output) that would not fit: not near empty, though
    assert files["container.log.1"] > 25_000 and files["container.log.2"] > 25_000, files

    logs = md("logs", "rotating", check=True)
    numbers = _numbers(logs.stdout)
    assert numbers == list(range(numbers[0], 150_001))  # the newest, in order, no line twice or torn
    assert 150_000 <= len(logs.stdout) <= 300_000 and logs.stderr == ""

    directory = os.path.join(md.root, "containers", md.inspect("rotating", "{{.Id}}"))
    md.out("rm", "rotating")
    assert not os.path.exists(directory)


@pytest.mark.parametrize("detach", [True, False], ids=["detached-the-shim-writes", "attached-python-writes"])
def test_max_file_1_keeps_one_file_that_starts_afresh_when_full(md, detach):
    """max-file defaults to 1: when container.log is full it is replaced by an empty one (no .1)."""
    md("run", *(["-d"] if detach else []), "--name", "one-file", "--log-opt", "max-size=100k",
       "busybox", "seq", "1", "150000")
    assert md.out("wait", "one-file") == "0"
    files = _log_files(md, "one-file")
    assert list(files) == ["container.log"] and files["container.log"] <= 101_000, files
    numbers = _numbers(md.out("logs", "one-file") + "\n")
    assert numbers == list(range(numbers[0], 150_001)) and len(numbers) < 150_000


def test_logs_follow_goes_on_across_rotations(md):
    """`logs -f` started before the first rotation prints every line once, in order, through several
    rotations (the file it reads is renamed away; it finishes it, then opens the new one)."""
    bursts = " ".join(str(n) for n in range(10))
    md.out("run", "-d", "--name", "follow", "--log-opt", "max-size=10k", "--log-opt", "max-file=3",
           "busybox", "sh", "-c",
           f"sleep 0.5; for i in {bursts}; do seq $((i*1000+1)) $((i*1000+1000)); sleep 0.2; done")
    followed = md("logs", "-f", "follow", check=True)
    assert _numbers(followed.stdout) == list(range(1, 10_001))
    assert sorted(_log_files(md, "follow")) == ["container.log", "container.log.1", "container.log.2"]


def test_the_log_config_is_recorded_in_host_config_as_docker_does(md):
    md.out("create", "--name", "plain", "busybox", "true")
    assert json.loads(md.inspect("plain", "{{json .HostConfig.LogConfig}}")) == {"Type": "json-file", "Config": {}}
    md.out("create", "--name", "limited", "--log-opt", "max-size=10m", "--log-opt", "max-file=3", "busybox", "true")
    assert json.loads(md.inspect("limited", "{{json .HostConfig.LogConfig}}")) == {
        "Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}


def test_log_driver_none_keeps_no_log_and_logs_says_so(md):
    attached = md("run", "--name", "silent", "--log-driver", "none", "busybox", "echo", "hi")
    assert attached.stdout == "hi\n"  # the terminal still gets it: only the log is gone
    md.out("run", "-d", "--name", "silent-d", "--log-driver", "none", "busybox", "echo", "hi")
    assert md.out("wait", "silent-d") == "0"
    for ref in ("silent", "silent-d"):
        assert md.inspect(ref, "{{.LogPath}}") == ""
        assert _log_files(md, ref) == {}
        for follow in ([], ["-f"]):
            logs = md("logs", *follow, ref)
            assert (logs.returncode, logs.stdout) == (125, "")
            assert logs.stderr == "minidocker: configured logging driver does not support reading\n"


@pytest.mark.parametrize("flags, message", [
    (["--log-opt", "max-size=abc"], "failed to initialize logging driver: invalid size: 'abc'"),
    (["--log-opt", "max-size=10x"], "failed to initialize logging driver: invalid suffix: 'x'"),
    (["--log-opt", "max-size=0"], "failed to initialize logging driver: max-size must be a positive number"),
    (["--log-opt", "max-file=0"], "failed to initialize logging driver: max-file cannot be less than 1"),
    (["--log-opt", "max-file=three"],
     'failed to initialize logging driver: strconv.Atoi: parsing "three": invalid syntax'),
    (["--log-opt", "x=1"], "unknown log opt 'x' for json-file log driver"),
    (["--log-driver", "syslog"], "logger: no log driver named 'syslog' is registered"),
    (["--log-driver", "none", "--log-opt", "max-size=1m"], "invalid logging opts for driver none"),
])
@pytest.mark.parametrize("command", ["create", "run"])
def test_bad_log_options_are_one_line_exit_125_and_create_nothing(md, command, flags, message):
    result = md(command, *flags, "busybox", "true")
    assert (result.returncode, result.stderr, result.stdout) == (125, f"minidocker: {message}\n", "")
    assert md.out("ps", "-aq") == ""
