"""docker pause / unpause, and commit's --pause: the cgroup freezer through the CLI (chapters 1, 2 and 7).

A paused container's processes stay where they are, frozen by the kernel: a
counter it writes stops growing, and grows again after unpause.  Also runs in
the cgroup v2 VM tier (tests/test_cgroup2_vm.py), where the freezer is v2's.
"""

import os
import time

COUNTER = "while :; do echo x >> /tmp/c; usleep 50000; done"  # one line every 50 ms


def counter_container(md, name="w") -> str:
    """A running container counting into /tmp/c; returns the path of that file as the host sees it."""
    md.out("run", "-d", "--name", name, "busybox", "sh", "-c", COUNTER)
    counter = os.path.join(md.inspect(name, "{{.GraphDriver.Data.UpperDir}}"), "tmp", "c")
    md.wait_for(lambda: lines(counter) >= 2, what="the counter to count")
    return counter


def freezer_steps(explained: str) -> list[str]:
    return [s for s in explained.splitlines() if "freezer.state" in s or "cgroup.freeze" in s]


def lines(path: str) -> int:
    try:
        with open(path) as f:
            return f.read().count("\n")
    except FileNotFoundError:
        return 0


def test_pause_stops_the_counter_and_unpause_lets_it_go_on(md):
    counter = counter_container(md)
    assert md.out("pause", "w") == "w"
    assert md.inspect("w", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}") == "paused true true"
    assert "(Paused)" in md.out("ps")
    frozen_at = lines(counter)
    time.sleep(0.5)  # ten lines' worth
    assert lines(counter) == frozen_at
    assert md.out("unpause", "w") == "w"
    assert md.inspect("w", "{{.State.Status}} {{.State.Paused}}") == "running false"
    md.wait_for(lambda: lines(counter) > frozen_at, what="the counter to go on")
    assert "(Paused)" not in md.out("ps")


def test_pause_errors_are_one_line_with_dockers_wording(md):
    md.out("create", "--name", "idle", "busybox", "true")
    cid = md.inspect("idle", "{{.Id}}")
    not_running = md("pause", "idle")
    assert (not_running.returncode, not_running.stderr) == (125, f"minidocker: Container {cid[:12]} is not running\n")
    not_paused = md("unpause", "idle")
    assert (not_paused.returncode, not_paused.stderr) == (125, f"minidocker: Container {cid[:12]} is not paused\n")
    counter_container(md)
    cid = md.inspect("w", "{{.Id}}")
    md.out("pause", "w")
    again = md("pause", "w")
    assert (again.returncode, again.stderr) == (125, f"minidocker: Container {cid[:12]} is already paused\n")
    refused = md("exec", "w", "true")
    assert (refused.returncode, refused.stderr) == (
        125, f"minidocker: Container {cid[:12]} is paused, unpause the container before exec\n")
    assert md("pause", "nosuch").returncode == 125


def test_kill_stop_and_rm_f_of_a_paused_container_finish_quickly_and_leave_no_cgroup(md):
    for name, command in [("k", ["kill"]), ("s", ["stop", "-t", "1"]), ("r", ["rm", "-f"])]:
        counter_container(md, name)
        group = md.cgroup(name)
        md.out("pause", name)
        started = time.monotonic()
        assert md.out(*command, name, timeout=20) == name
        took = time.monotonic() - started
        # Nothing hangs on the frozen processes.  (sh as PID 1 ignores SIGTERM: stop ends with its
        # SIGKILL after 1 s.  The bound is loose for the cgroup v2 VM, where every command is slow.)
        assert took < 8, (command, took)
        if command != ["rm", "-f"]:
            assert md.out("wait", name, timeout=20) == "137"
            assert md.inspect(name, "{{.State.Status}} {{.State.Paused}}") == "exited false"
        md.wait_for(lambda: not [p for p in group.paths if os.path.exists(p)], what="the cgroup to go")
    assert md.out("ps", "-q") == ""


def test_commit_freezes_the_container_around_the_copy_and_leaves_it_running(md):
    md.out("run", "-d", "--name", "w", "busybox", "sh", "-c", COUNTER)
    explained = md("--explain", "commit", "w", "snap")
    assert explained.returncode == 0, explained.stderr
    steps = explained.stderr.splitlines()
    freeze = [i for i, s in enumerate(steps) if "freezer.state" in s or "cgroup.freeze" in s]
    copy = [i for i, s in enumerate(steps) if s.startswith("tar -c")]
    assert len(freeze) == 2 and len(copy) == 1 and freeze[0] < copy[0] < freeze[1], explained.stderr
    assert "FROZEN" in steps[freeze[0]] or "echo 1 " in steps[freeze[0]]
    assert md.inspect("w", "{{.State.Status}} {{.State.Paused}}") == "running false"
    assert md.out("run", "--rm", "snap", "sh", "-c", "test -s /tmp/c && echo layer-has-it") == "layer-has-it"
    for no_pause in ("--pause=false", "-p=false", "--pause=0"):
        quiet = md("--explain", "commit", no_pause, "w")
        assert quiet.returncode == 0 and not freezer_steps(quiet.stderr), (no_pause, quiet.stderr)
    paused = md("--explain", "commit", "-p", "w")  # -p is a boolean flag: "w" is the container, not its value
    assert paused.returncode == 0 and len(freezer_steps(paused.stderr)) == 2, paused.stderr


def test_commit_of_a_paused_container_leaves_it_paused(md):
    md.out("run", "-d", "--name", "w", "busybox", "sh", "-c", COUNTER)
    md.out("pause", "w")
    explained = md("--explain", "commit", "w")
    assert explained.returncode == 0 and not freezer_steps(explained.stderr), explained.stderr
    assert md.inspect("w", "{{.State.Status}} {{.State.Paused}}") == "paused true"
    md.out("unpause", "w")


def test_kill_of_a_paused_rm_container_is_quiet_when_it_is_removed_at_once(md):
    for _ in range(3):  # the container may exit, and --rm remove it, before kill has recorded the thaw
        md.out("run", "-d", "--rm", "--name", "gone", "busybox", "sh", "-c", COUNTER)
        md.out("pause", "gone")
        killed = md("kill", "gone")
        assert (killed.returncode, killed.stdout, killed.stderr) == (0, "gone\n", "")
        md.wait_for(lambda: md.out("ps", "-aq") == "", what="--rm to remove it")
