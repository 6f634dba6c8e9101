"""The explain trace and the Python API: one record of the steps, shown as shell commands."""

import json
import os
import subprocess
import sys

from minidocker import cgroups, spec


def test_explain_prints_every_kernel_step_as_a_shell_command(md):
    result = md("--explain", "run", "--rm", "--memory", "32m", "busybox", "true")
    assert result.returncode == 0
    lines = result.stderr.splitlines()
    assert lines[0] == f"MINIDOCKER_ROOT={md.root}" and lines[1].startswith("ID=")
    text = result.stderr
    version, _ = cgroups.detect().hierarchy("memory")
    limit_file = "memory.limit_in_bytes" if version == "v1" else "memory.max"
    expected_in_order = ["echo 33554432 > ", limit_file, "unshare --pid --mount --uts --ipc --net",
                         "mount --make-rprivate /", "mount -t overlay -o lowerdir=", "mount -t proc",
                         "mknod -m 666 $MINIDOCKER_ROOT/containers/$ID/rootfs/dev/null c 1 3",
                         "ip link set lo up", "hostname ", "pivot_root ", "umount -l /.old_root",
                         "mount --bind /dev/null /proc/keys", "exec true"]
    position = 0
    for fragment in expected_in_order:
        found = text.find(fragment, position)
        assert found >= 0, f"{fragment!r} missing (or out of order) in the trace"
        position = found


def test_the_api_returns_the_same_trace_the_cli_prints(md):
    program = f"""
import json
from minidocker import api
from minidocker.store import Store
store = Store({md.root!r})
cid, code = api.run("busybox", ["sh", "-c", "echo hi"], store=store, rm=True)
print(json.dumps({{"code": code, "steps": [s.command for s in api.last_trace()]}}))
"""
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.splitlines()[-1])
    assert result.stdout.startswith("hi\n") and answer["code"] == 0
    steps = answer["steps"]
    pivot = next(i for i, s in enumerate(steps) if s.startswith("pivot_root "))
    assert steps.index("exec sh -c echo hi") > pivot
    assert steps[-1].startswith("rmdir /sys/fs/cgroup/")  # clean-up after the container exited is traced too
    # the CLI prints the same records (up to the exec), with $ID and $MINIDOCKER_ROOT for the long values
    cli = md("--explain", "run", "--rm", "busybox", "sh", "-c", "echo hi").stderr.splitlines()[2:]
    api_until_exec = steps[:steps.index("exec sh -c echo hi") + 1]
    assert cli[-1].startswith("exec sh -c echo hi")
    # minidocker moves init into the cgroup while init mounts: those steps may interleave either way
    assert sorted(line.split()[0] for line in cli) == sorted(s.split()[0] for s in api_until_exec)


def test_detached_run_explains_the_steps_the_supervisor_performed(md):
    result = md("--explain", "run", "-d", "--name", "d", "busybox", "sleep", "30")
    assert result.returncode == 0 and "pivot_root" in result.stderr and "exec sleep 30" in result.stderr


def test_docker_entrypoint_and_cmd_rules():
    image_ep, image_cmd = ["/entry.sh"], ["serve"]
    assert spec.resolve_command(image_ep, image_cmd, None, []) == ["/entry.sh", "serve"]
    assert spec.resolve_command(image_ep, image_cmd, None, ["debug"]) == ["/entry.sh", "debug"]
    assert spec.resolve_command(image_ep, image_cmd, "sh", []) == ["sh"]  # --entrypoint drops the image CMD
    assert spec.resolve_command(image_ep, image_cmd, "sh", ["-c", "id"]) == ["sh", "-c", "id"]
    assert spec.resolve_command(None, ["sh"], None, []) == ["sh"]
    assert spec.resolve_command(None, spec.shell_form("echo $HOME"), None, []) == ["/bin/sh", "-c", "echo $HOME"]


def test_value_parsers_accept_dockers_forms():
    assert spec.parse_memory("32m") == 32 * 1024**2
    assert spec.parse_memory("1g") == 1024**3
    assert spec.parse_memory("8388608") == 8388608
    assert spec.parse_memory("10MB") == 10 * 1024**2
    assert spec.parse_cpus("0.5") == 0.5
    assert spec.parse_env(["A=1", "B="], []) == ["A=1", "B="]
    os.environ["MINIDOCKER_TEST_PASSTHROUGH"] = "yes"
    assert spec.parse_env(["MINIDOCKER_TEST_PASSTHROUGH", "UNSET_VARIABLE_X"], []) == ["MINIDOCKER_TEST_PASSTHROUGH=yes"]
