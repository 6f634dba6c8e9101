"""Chapter 2: create, start, run, stop, kill, rm, ps, logs, inspect, wait, exec, rename."""

import json
import os
import threading
import time

import pytest


def test_run_prints_output_and_returns_the_exit_code(md):
    result = md("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert md.out("ps", "-aq") == ""  # --rm removed it


def test_create_then_start_then_wait_and_logs(md):
    cid = md.out("create", "busybox", "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7")
    assert len(cid) == 64 and all(c in "0123456789abcdef" for c in cid)
    assert md.inspect(cid, "{{.State.Status}}") == "created"
    md.out("start", cid[:12])  # a unique prefix is enough
    assert md.out("wait", cid) == "7"
    logs = md("logs", cid)
    assert (logs.stdout, logs.stderr) == ("to-stdout\n", "to-stderr\n")
    state = json.loads(md.out("inspect", cid))[0]["State"]
    assert (state["Status"], state["ExitCode"], state["Running"]) == ("exited", 7, False)
    # start again: the same container, its writable layer kept
    md.out("start", cid)
    assert md.out("wait", cid) == "7"
    assert md("logs", cid).stdout == "to-stdout\n" * 2


def test_detached_web_server_serves_bytes_inside_its_network_namespace(md):
    md.out("run", "-d", "--name", "web", "busybox", "httpd", "-f", "-p", "8080")
    assert md.inspect("web", "{{.State.Status}}") == "running"
    assert "web" in md.out("ps")
    md.out("exec", "web", "sh", "-c", "echo hello-from-httpd > /index.html")
    body = md.wait_for(lambda: md("exec", "web", "wget", "-qO-", "http://127.0.0.1:8080/").stdout,
                       what="httpd to answer")
    assert body == "hello-from-httpd\n"
    ps = md.out("exec", "web", "ps", "-o", "pid,comm")
    assert ps.splitlines()[1].split() == ["1", "httpd"]  # the server is PID 1 of its own namespace
    assert md.out("stop", "-t", "1", "web") == "web"
    assert md.inspect("web", "{{.State.Status}}") == "exited"
    assert md.out("rm", "web") == "web"
    assert md.out("ps", "-aq") == ""


def test_cidfile_is_written_and_a_second_create_with_it_fails(md, tmp_path):
    cidfile = tmp_path / "web.cid"
    cid = md.out("create", "--cidfile", str(cidfile), "busybox", "true")
    assert cidfile.read_text() == cid
    second = md("create", "--cidfile", str(cidfile), "busybox", "true")
    assert second.returncode == 125
    assert "Container ID file found" in second.stderr and second.stderr.count("\n") == 1
    assert md.out("ps", "-aq", "--no-trunc") == cid  # nothing else was created
    assert cidfile.read_text() == cid  # and the file was not touched


def test_names_are_unique_generated_and_renamable(md):
    md.out("create", "--name", "app", "busybox", "true")
    clash = md("create", "--name", "app", "busybox", "true")
    assert clash.returncode == 125 and "is already in use" in clash.stderr
    generated = md.out("create", "busybox", "true")
    name = md.inspect(generated, "{{.Name}}").lstrip("/")
    assert "_" in name and name.replace("_", "").isalpha()
    md.out("rename", "app", "app2")
    assert md.inspect("app2", "{{.Name}}") == "/app2"
    assert md("inspect", "app").returncode == 125


def test_ps_lists_running_by_default_and_all_with_a(md):
    md.out("run", "-d", "--name", "sleeper", "busybox", "sleep", "30")
    md.out("create", "--name", "idle", "busybox", "true")
    running = md.out("ps")
    assert "sleeper" in running and "idle" not in running
    everything = md.out("ps", "-a")
    assert "idle" in everything and "Created" in everything
    assert len(md.out("ps", "-aq").split()) == 2
    md.out("kill", "sleeper")
    assert md.out("wait", "sleeper") == "137"


def test_stop_without_init_waits_for_the_timeout_then_kills(md):
    md.out("run", "-d", "--name", "s", "busybox", "sleep", "30")
    started = time.monotonic()
    md.out("stop", "-t", "1", "s")
    elapsed = time.monotonic() - started
    # PID 1 has no SIGTERM handler, so the kernel ignores SIGTERM for it: stop has to SIGKILL.
    assert elapsed >= 1
    assert md.inspect("s", "{{.State.ExitCode}}") == "137"


def test_init_forwards_sigterm_so_stop_is_immediate(md):
    md.out("run", "-d", "--init", "--name", "s", "busybox", "sleep", "30")
    assert md.out("exec", "s", "cat", "/proc/1/comm") == "minidocker-init"
    started = time.monotonic()
    md.out("stop", "-t", "10", "s")
    assert time.monotonic() - started < 5
    assert md.inspect("s", "{{.State.ExitCode}}") == "143"  # 128 + SIGTERM: sleep died of the forwarded signal


def _zombies(pid: int) -> list[str]:
    """Zombie processes among the descendants of `pid` (read from the host's /proc)."""
    found = []
    for child in open(f"/proc/{pid}/task/{pid}/children").read().split():
        status = open(f"/proc/{child}/status").read()
        if "State:\tZ" in status:
            found.append(child)
    return found


@pytest.mark.parametrize("init", [False, True])
def test_orphans_become_zombies_unless_init_reaps_them(md, init):
    flags = ["--init"] if init else []
    # The subshell starts `sleep 0.2` and exits at once: the orphan is re-parented to PID 1.
    md.out("run", "-d", *flags, "--name", "z", "busybox", "sh", "-c", "(sleep 0.2 &); exec sleep 30")
    pid = md.pid("z")
    time.sleep(1)
    if init:
        assert _zombies(pid) == []
    else:  # PID 1 is `sleep 30`, which never calls wait(): the orphan stays a zombie
        assert len(_zombies(pid)) == 1
    md.out("rm", "-f", "z")


def test_kill_sends_the_named_signal(md):
    md.out("run", "-d", "--name", "trap", "busybox", "sh", "-c", "trap 'exit 42' USR1; while :; do sleep 0.1; done")
    time.sleep(0.3)
    md.out("kill", "-s", "USR1", "trap")
    assert md.out("wait", "trap") == "42"


def test_env_workdir_user_and_hostname(md):
    out = md.out("run", "--rm", "-e", "GREETING=hi", "-w", "/tmp/work", "-u", "nobody", "--hostname", "box",
                 "busybox", "sh", "-c", 'echo $GREETING; pwd; id -u; hostname; cat /etc/hostname; echo $HOME')
    assert out.split("\n") == ["hi", "/tmp/work", "65534", "box", "box", "/home"]


def test_entrypoint_replaces_the_image_cmd(md):
    assert md.out("run", "--rm", "--entrypoint", "echo", "busybox", "a", "b") == "a b"
    assert md.out("run", "--rm", "--entrypoint", "hostname", "--hostname", "h1", "busybox") == "h1"


def test_interactive_stdin_reaches_the_container(md):
    assert md.out("run", "--rm", "-i", "busybox", "tr", "a-z", "A-Z", input="shout\n") == "SHOUT"


def test_tty_gives_the_container_a_pseudo_terminal(md):
    out = md.out("run", "--rm", "-t", "busybox", "sh", "-c", "tty; [ -t 1 ] && echo is-a-tty")
    assert out.replace("\r", "").split("\n") == ["/dev/pts/0", "is-a-tty"]


def test_exec_joins_every_namespace_of_the_container(md):
    md.out("run", "-d", "--name", "c", "busybox", "sleep", "30")
    pid = md.pid("c")
    out = md.out("exec", "-e", "X=1", "-w", "/tmp", "c", "sh", "-c",
                 "echo $X; pwd; for n in pid uts mnt ipc net; do readlink /proc/self/ns/$n; done")
    lines = out.split("\n")
    assert lines[:2] == ["1", "/tmp"]
    assert lines[2:] == [os.readlink(f"/proc/{pid}/ns/{n}") for n in ("pid", "uts", "mnt", "ipc", "net")]
    assert md("exec", "c", "sh", "-c", "exit 5").returncode == 5
    md.out("kill", "c")
    md.out("wait", "c")
    stopped = md("exec", "c", "true")
    assert stopped.returncode == 125 and "is not running" in stopped.stderr


def test_rm_refuses_a_running_container_unless_forced(md):
    md.out("run", "-d", "--name", "r", "busybox", "sleep", "30")
    refused = md("rm", "r")
    assert refused.returncode == 1 and "cannot remove a running container" in refused.stderr
    md.out("rm", "-f", "r")
    assert md.out("ps", "-aq") == ""


def test_system_prune_cleans_up_after_a_killed_supervisor(md):
    md.out("run", "-d", "--name", "orphan", "busybox", "sleep", "30")
    record = json.loads(md.out("inspect", "orphan"))[0]
    os.kill(record["State"]["SupervisorPid"], 9)  # minidocker's shim dies; the container runs on
    container_pid = record["State"]["Pid"]
    assert os.path.exists(f"/proc/{container_pid}")
    assert "orphan" in md.out("ps")  # its record still says running: nobody is left to update it
    pruned = md.out("system", "prune")
    assert record["Id"] in pruned
    md.wait_for(lambda: not os.path.exists(f"/proc/{container_pid}"), what="the orphaned container to die")
    assert md.out("ps", "-aq") == ""


def test_parallel_runs_and_name_races_never_corrupt_state(md):
    results = {}

    def run(i):
        results[i] = md("run", "--rm", "busybox", "sh", "-c", f"echo {i}")

    def create_named(i):
        results[f"named{i}"] = md("create", "--name", "contested", "busybox", "true")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    threads += [threading.Thread(target=create_named, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        assert (results[i].returncode, results[i].stdout) == (0, f"{i}\n")
    named = [results[f"named{i}"] for i in range(4)]
    assert sorted(r.returncode for r in named) == [0, 125, 125, 125]
    ids = md.out("ps", "-aq", "--no-trunc").split()
    assert len(ids) == 1 and md.inspect(ids[0], "{{.Name}}") == "/contested"


def test_interactive_tty_session_through_a_real_terminal(md):
    """-it: our terminal is put in raw mode and relayed to a pseudo-terminal inside the container."""
    import pty
    import select
    import subprocess

    from conftest import MINIDOCKER

    master, slave = pty.openpty()
    proc = subprocess.Popen([MINIDOCKER, "run", "--rm", "-it", "busybox", "sh"], env=md.env,
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    os.write(master, b"echo $((6 * 7)); tty; exit 3\n")  # typed ahead, before the shell is even up
    output = b""
    deadline = time.monotonic() + 20
    while proc.poll() is None and time.monotonic() < deadline:
        if select.select([master], [], [], 0.1)[0]:
            try:
                output += os.read(master, 4096)
            except OSError:  # EIO: nobody holds the terminal any more
                time.sleep(0.05)
    assert proc.wait(timeout=10) == 3
    os.close(master)
    text = output.decode(errors="replace").replace("\r", "")
    assert "\n42\n" in text and "/dev/pts/0" in text


def test_logs_follow_streams_until_the_container_exits(md):
    md.out("run", "-d", "--name", "talker", "busybox", "sh", "-c", "echo first; sleep 1; echo second")
    started = time.monotonic()
    assert md.out("logs", "-f", "talker").split("\n") == ["first", "second"]
    assert time.monotonic() - started >= 0.5  # it waited for the second line


def test_prune_removes_debris_of_an_interrupted_create(md):
    debris = os.path.join(md.root, "containers", "ab" * 32)
    os.makedirs(os.path.join(debris, "upper"))  # as if minidocker died before writing the record
    assert "ab" * 32 in md.out("system", "prune")
    assert not os.path.exists(debris)


def test_a_reader_that_goes_away_does_not_stop_the_container(md):
    import subprocess

    from conftest import MINIDOCKER

    # `| head -1` closes the pipe after one line; minidocker keeps logging and waits for the container.
    piped = subprocess.run(f"{MINIDOCKER} --explain run --name p busybox sh -c 'seq 100000; echo done' 2>&1 | head -1",
                           shell=True, env=md.env, capture_output=True, text=True, timeout=60)
    assert piped.stdout.startswith("MINIDOCKER_ROOT=")
    assert md.out("wait", "p") == "0"
    assert md.out("logs", "p").split("\n")[-2:] == ["100000", "done"]
