"""Chapter 1: cgroups through the CLI -- memory, pids and CPU limits enforced by the kernel."""

import json
import os
import time

from minidocker import cgroups


def test_a_memory_hog_is_oom_killed(md):
    result = md("run", "--name", "hog", "-m", "32m", "busybox", "tail", "/dev/zero")
    assert result.returncode == 137  # 128 + SIGKILL, from the kernel's OOM killer
    state = json.loads(md.out("inspect", "hog"))[0]["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137
    assert md.inspect("hog", "{{.State.OOMKilled}}") == "true"


def test_memory_limit_is_written_to_the_kernel(md):
    md.out("run", "-d", "--name", "c", "-m", "48m", "busybox", "sleep", "30")
    version, _mount = cgroups.detect().hierarchy("memory")
    memory_dir = md.cgroup("c").dirs["memory"][1]
    path = f"{memory_dir}/" + ("memory.limit_in_bytes" if version == "v1" else "memory.max")
    assert int(open(path).read()) == 48 * 1024 * 1024
    assert md.inspect("c", "{{.HostConfig.Memory}}") == str(48 * 1024 * 1024)


def test_a_process_flood_hits_the_pids_limit(md):
    # The inner shell forks sleeps until fork(2) fails (then ash gives up); PID 1 stays to be inspected.
    md.out("run", "-d", "--name", "flood", "--pids-limit", "20", "busybox", "sh", "-c",
           "sh -c 'for i in $(seq 40); do sleep 30 & done'; echo flood-stopped; exec sleep 30")
    group = md.cgroup("flood")
    md.wait_for(lambda: "flood-stopped" in md.out("logs", "flood"), what="the flood to hit the limit")
    assert "can't fork" in md("logs", "flood").stderr
    assert 15 <= len(group.pids()) <= 20
    pids_dir = group.dirs["pids"][1]
    assert open(f"{pids_dir}/pids.max").read().strip() == "20"
    assert int(open(f"{pids_dir}/pids.events").read().split()[-1]) >= 1  # "max N": refused forks
    md.out("rm", "-f", "flood")
    assert not any(os.path.exists(p) for p in group.paths)


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_cpus_caps_a_busy_loop_to_a_fraction_of_a_core(md):
    md.out("run", "-d", "--name", "burn", "--cpus", "0.2", "busybox", "sh", "-c", "while :; do :; done")
    pid = md.pid("burn")
    time.sleep(0.5)
    used_before, started = _cpu_seconds(pid), time.monotonic()
    time.sleep(3)
    share = (_cpu_seconds(pid) - used_before) / (time.monotonic() - started)
    assert 0.1 <= share <= 0.3, f"got {share:.2f} of a CPU under --cpus 0.2"


def test_the_cgroup_is_removed_when_the_container_exits(md):
    cid = md.out("create", "-m", "32m", "busybox", "true")
    group = md.cgroup(cid)
    md.out("start", cid)
    md.out("wait", cid)
    md.wait_for(lambda: not any(os.path.exists(p) for p in group.paths), what="cgroup removal")
    parents = {os.path.dirname(p) for p in group.paths}
    assert all(md.cgroup_parent in p for p in parents) and not any(os.path.exists(p) for p in parents)
