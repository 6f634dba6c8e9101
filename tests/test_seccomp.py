"""Chapter 1, seccomp: a default container may make only the system calls of Docker's default profile.

minidocker/demos/syscall_probe.c makes each named call with harmless arguments and prints
`NAME: ok` or `NAME: ERRNO`.  Its arguments are chosen so that, without a filter, most calls
fail with an errno of their own checks (EINVAL, EFAULT, ENOENT ...) or succeed: an EPERM below
is the filter's, not a missing capability's.  The static binary goes into the container through
stdin, as in test_breakout.py.
"""

import json
import os

import pytest

from conftest import demo_program
from minidocker import seccomp

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

DENIED_BY_DEFAULT = ["keyctl", "add_key", "request_key", "bpf", "perf_event_open", "kexec_load",
                     "open_by_handle_at", "init_module", "finit_module", "clock_settime", "settimeofday",
                     "unshare-user", "mount", "personality"]


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> bytes:
    from minidocker.demos import probe_binary

    return demo_program(tmp_path_factory, probe_binary)


def probe_in(md, probe: bytes, *calls: str, flags: tuple[str, ...] = ()) -> dict[str, str]:
    """{call: "ok" or its errno name}, from the probe run as root in a fresh busybox container."""
    script = f"cat > /p && chmod +x /p && /p {' '.join(calls)}"
    run = md("run", "--rm", "-i", *flags, "busybox", "sh", "-c", script, input=probe)
    assert run.returncode == 0, run.stderr
    return dict(line.decode().split(": ", 1) for line in run.stdout.splitlines())


def seccomp_status(text: str) -> tuple[str, str]:
    fields = dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)
    return fields["Seccomp"], fields.get("Seccomp_filters")


def test_a_default_container_is_filtered_and_ordinary_programs_run(md):
    """/proc/PID/status: "Seccomp: 2" is SECCOMP_MODE_FILTER, with one filter, minidocker's; and the
    busybox tools a container runs every day get through it."""
    out = md.out("run", "--rm", "busybox", "sh", "-c",
                 "cat /proc/1/status && ls / >/dev/null && ps >/dev/null && mkdir /d && echo x > /d/f && "
                 "cat /d/f && (sleep 0.1 & wait) && date >/dev/null && echo done")
    assert seccomp_status(out) == ("2", "1")
    assert out.endswith("\nx\ndone")


def test_dockers_denied_calls_fail_with_eperm(md, probe):
    results = probe_in(md, probe, *DENIED_BY_DEFAULT, "clone3", "personality-query", "getpid")
    assert {call: results[call] for call in DENIED_BY_DEFAULT} == {call: "EPERM" for call in DENIED_BY_DEFAULT}
    assert results["clone3"] == "ENOSYS"  # so that the C library falls back to clone, whose flags are checked
    assert results["personality-query"] == results["getpid"] == "ok"


def test_without_a_filter_the_same_calls_reach_the_kernel(md, probe):
    """The counter-proof: privileged or unconfined, keyctl works and the others fail their own checks."""
    for flags in (("--privileged",), ("--security-opt", "seccomp=unconfined")):
        results = probe_in(md, probe, "keyctl", "add_key", "clock_settime", "unshare-user", "clone3", flags=flags)
        assert results == {"keyctl": "ok", "add_key": "ok", "clock_settime": "EINVAL", "unshare-user": "ok",
                           "clone3": "EINVAL"}, flags
        status = md.out("run", "--rm", *flags, "busybox", "cat", "/proc/1/status")
        assert seccomp_status(status) == ("0", "0"), flags


def test_a_capability_opens_its_calls_too(md, probe):
    """The profile follows the capability set: with CAP_SYS_TIME, clock_settime reaches the kernel (EINVAL:
    the monotonic clock cannot be set); keyctl, which no capability opens, stays shut."""
    results = probe_in(md, probe, "clock_settime", "keyctl", flags=("--cap-add", "SYS_TIME"))
    assert results == {"clock_settime": "EINVAL", "keyctl": "EPERM"}


def test_the_filter_is_in_place_before_setuid_and_allows_it(md):
    out = md.out("run", "--rm", "-u", "1000", "busybox", "sh", "-c", "id -u; cat /proc/self/status")
    assert out.splitlines()[0] == "1000"
    assert seccomp_status(out) == ("2", "1")


def test_init_and_command_are_both_filtered(md):
    out = md.out("run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/status; echo ---; cat /proc/self/status")
    init_status, command_status = out.split("---")
    assert seccomp_status(init_status) == seccomp_status(command_status) == ("2", "1")


def test_an_exec_process_gets_the_containers_filter(md):
    md.out("run", "-d", "--name", "c", "busybox", "sleep", "60")
    assert seccomp_status(md.out("exec", "c", "cat", "/proc/self/status")) == ("2", "1")
    md.out("run", "-d", "--name", "p", "--privileged", "busybox", "sleep", "60")
    assert seccomp_status(md.out("exec", "p", "cat", "/proc/self/status")) == ("0", "0")


def test_a_profile_file_in_dockers_format(md, tmp_path):
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}))
    opt = f"seccomp={profile}"
    denied = md("run", "--rm", "--security-opt", opt, "busybox", "mkdir", "/d")
    assert denied.returncode == 1 and "Operation not permitted" in denied.stderr, denied.stderr
    assert md.out("run", "--rm", "--security-opt", opt, "busybox", "sh", "-c", "touch /f && echo ok") == "ok"
    # The record keeps the profile itself (Docker's CLI stores its JSON), so the file may go.
    md.out("create", "--name", "kept", "--security-opt", opt, "busybox", "mkdir", "/d")
    profile.unlink()
    [kept] = json.loads(md.out("inspect", "-f", "{{json .HostConfig.SecurityOpt}}", "kept"))
    assert kept.startswith("seccomp={") and json.loads(kept.removeprefix("seccomp="))["defaultAction"] == \
        "SCMP_ACT_ALLOW"
    started = md("start", "-a", "kept")
    assert started.returncode == 1 and "Operation not permitted" in started.stderr


def test_docker_s_own_default_json_gives_our_default_rules():
    """Our data is Docker's profile: the same resolved rules from moby's JSON form (a fragment of its
    structure, written here) and from seccomp.py, for a capability set with and without SYS_ADMIN."""
    document = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
                "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                              "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
                              "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
                             {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                              "excludes": {"caps": ["CAP_SYS_ADMIN"]}}]}
    ours = {"rules": [r for r in seccomp.DEFAULT_PROFILE["rules"] if r["names"] in (["clone"], ["clone3"])],
            "default_action": seccomp.DEFAULT_PROFILE["default_action"]}
    theirs = seccomp.from_docker_json(document, "test")
    for caps in (set(), {"SYS_ADMIN"}):
        mine = seccomp.resolve(ours, "amd64", caps, (6, 1))
        docker = seccomp.resolve(theirs, "amd64", caps, (6, 1))
        assert mine["rules"] == docker["rules"] and mine["default_action"] == docker["default_action"]
        assert docker["arches"] == ["X86_64", "X86", "X32"] if os.uname().machine == "x86_64" else True


@pytest.mark.parametrize("content, message", [
    (None, "opening seccomp profile ({path}) failed: open {path}: no such file or directory"),
    ("{not json", "compacting json for seccomp profile ({path}) failed: "),
    ('{"defaultAction": "SCMP_ACT_MAYBE"}', "decoding seccomp profile ({path}) failed: unknown action 'SCMP_ACT_MAYBE'"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", '
     '"args": [{"index": 9, "value": 0, "op": "SCMP_CMP_EQ"}]}]}', "decoding seccomp profile ({path}) failed: bad "),
], ids=["missing", "not-json", "unknown-action", "bad-arg"])
def test_a_bad_profile_file_is_one_line_and_125(md, tmp_path, content, message):
    path = tmp_path / "profile.json"
    if content is not None:
        path.write_text(content)
    result = md("run", "--rm", "--security-opt", f"seccomp={path}", "busybox", "true")
    assert result.returncode == 125
    assert result.stderr.count("\n") == 1 and message.format(path=path) in result.stderr, result.stderr
    assert md.out("ps", "-aq") == ""  # nothing was created


def test_the_program_is_cached_and_a_start_does_not_import_the_compiler(tmp_path):
    """Compiled once per (profile, architecture, capabilities); a second call only reads the bytes."""
    import subprocess
    import sys

    code = ("import sys; from minidocker import seccomp, capabilities\n"
            f"p = seccomp.compiled_program(seccomp.resolve(seccomp.DEFAULT_PROFILE, 'amd64', capabilities.DEFAULT, (6, 1)), "
            f"'amd64', cache_dir={str(tmp_path)!r})\n"
            "print(len(p), 'pyseccomp' in sys.modules)")
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    [cached] = os.listdir(tmp_path)
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert first == [again[0], "True"] and again[1] == "False"
    assert int(first[0]) % 8 == 0 and int(first[0]) > 8 * 100  # struct sock_filter: 8 bytes an instruction
    assert os.listdir(tmp_path) == [cached]
    with_admin = seccomp.resolve(seccomp.DEFAULT_PROFILE, "amd64", {"SYS_ADMIN"}, (6, 1))
    seccomp.compiled_program(with_admin, "amd64", cache_dir=str(tmp_path))
    assert len(os.listdir(tmp_path)) == 2  # another capability set, another program
