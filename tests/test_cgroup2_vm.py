"""The pure cgroup v2 tier: the cgroup and isolation tests, on a student's kind of kernel, on every run.

minidocker/cgroups/v2.py is the driver that the students' machines use (they
are pure cgroup v2), but the machine this project is developed and tested on
is a v1 hybrid, which cannot be switched over.  So, unless the host is pure v2
already, this test boots a small VM that is (tests/vm/cgroup2.py: QEMU, Debian's
kernel, the host's / shared read-only, a fresh /run, loopback up, the host's root
made the real root with switch_root) and runs the files of IN_THE_VM inside it:
the cgroup tests, which need v2, and the isolation tests, which must hold on
the kernel set-up a student has (pure v2, no v1 devices controller, nothing
loaded or mounted by an earlier run).  Each file in the list says why it is there.

On a pure v2 host those files run natively in the ordinary suite, and this
test is skipped: a student's VM needs no QEMU.

Only this tier: ``scripts/test -m cgroup2_vm``; all but it: ``scripts/test -m "not cgroup2_vm"``.
"""

import re
import shlex

import pytest

from minidocker import cgroups
from vm.cgroup2 import pytest_summary, run_in_cgroup2_vm, run_in_vm

# What runs in the VM (one file a line; add a file here, and it runs on every CI run):
IN_THE_VM = [
    "tests/test_cgroups.py",  # the v2 driver against the kernel: limits written, usage read, OOM kills seen
    "tests/test_limits.py",  # the same through the CLI: run -m 32m killed with 137 and OOMKilled, --pids-limit
    "tests/test_cgroup2.py",  # v2's own rules: controllers handed down, no internal processes, delegation
    "tests/test_pause.py",  # pause/unpause: v2's cgroup.freeze, not v1's freezer
    "tests/test_devices.py",  # the v2 devices controller: an eBPF program, not v1's devices.allow
    "tests/test_isolation.py",  # namespaces, seen from /proc on a kernel of a student's kind
    "tests/test_security.py",  # capabilities, --userns remap (a user namespace needs a real, unchrooted root)
    "tests/test_entrypoint_and_cmd.py",  # the image's ENTRYPOINT and CMD, run on a pure v2 kernel
    "tests/test_rootfs.py",  # pivot_root: /proc/PID/root is "/", measured from the VM's real root
    "tests/test_seccomp.py",  # Docker's seccomp profile, on a kernel of a student's kind
    "tests/test_confinement.py",  # exec confined as PID 1 (it joins the v2 cgroup), signals, rlimits, /etc symlinks
]
# ... but not these, which prove nothing more there and cost the VM's time (the host runs them):
NOT_IN_THE_VM = [
    "tests/test_confinement.py::test_pid_1_and_exec_are_confined_as_podman_confines_them",  # podman: ~40 s there
]
VM_TIMEOUT = 900  # seconds; measured on 2 shared cores without KVM: ~250 s from boot to power-off alone,
# ~450 s beside the host's tests (scripts/test runs them at the same time)

HOST_IS_PURE_V2 = cgroups.detect().version == "v2"


@pytest.mark.cgroup2_vm
@pytest.mark.xdist_group("cgroup2_vm")  # a worker of its own in a parallel run (scripts/test)
@pytest.mark.skipif(HOST_IS_PURE_V2, reason="this host is pure cgroup v2: the v2 tests "
                    f"({', '.join(IN_THE_VM)}) run natively, no VM needed")
@pytest.mark.timeout(VM_TIMEOUT + 60)  # the helper kills QEMU at VM_TIMEOUT; this is the backstop
def test_the_cgroup_tests_pass_on_a_pure_cgroup_v2_kernel(record_property):
    deselected = [arg for test in NOT_IN_THE_VM for arg in ("--deselect", test)]
    result = run_in_cgroup2_vm(["-q", "-rfEs", *deselected, *IN_THE_VM], timeout=VM_TIMEOUT,
                               env={"MINIDOCKER_EXPECT_CGROUP": "v2"},
                               echo=print)  # the guest's console: live with -s, else shown on failure
    summary = pytest_summary(result.output)
    # Into CI's log even when the test passes (conftest prints it at the end, from any worker).
    record_property("shown_at_the_end", f"cgroup v2 VM: {summary or 'no pytest summary'} "
                                        f"(boot to power-off {result.seconds:.0f} s)")
    timed_out, exit_code = result.timed_out, result.exit_code  # (not the whole result in pytest's report)
    assert not timed_out, f"the VM was still running after {VM_TIMEOUT} s: killed (its console is above)"
    assert exit_code == 0, f"pytest in the VM exited {exit_code} (its console is above)"
    # Every test ran and passed: none failed, none skipped (a VM that was not v2 would skip some).
    counts = outcome_counts(summary)
    assert counts.get("passed", 0) > 0 and set(counts) <= {"passed", "deselected", "warning", "warnings"}, summary


def outcome_counts(summary: str | None) -> dict[str, int]:
    """"26 passed, 1 skipped in 151.20s" -> {"passed": 26, "skipped": 1}."""
    found = re.findall(r"(\d+) (\w+)", (summary or "").split(" in ")[0])
    return {outcome: int(number) for number, outcome in found}


# What a student's machine has, asked of the VM in one boot: a line per fact, each "NAME=value".
STUDENT_MACHINE_PROBE = r"""
fstypes() { awk '{ for (i = 7; $i != "-"; i++); print $5, $(i + 1) }' /proc/self/mountinfo; }  # mount point, type
echo "root=$(fstypes | awk '$1 == "/" { print $2 }')"
echo "cgroup_v1_mounts=$(fstypes | awk '$2 == "cgroup"' | wc -l)"
unshare --user true && echo "user_namespace=ok"
echo "proc_root=$(sh -c 'readlink /proc/$$/root')"
ip -o link show lo | grep -q 'UP' && echo "loopback=up"
ip -o -4 addr show eth0 | grep -q 'inet ' && echo "eth0=address"
ip route | grep -q '^default ' && echo "default_route=yes"
ip link add mdprobe0 type veth peer name mdprobe1 && echo "veth=ok"
test -c /dev/net/tun && echo "tun=device"
test -d /proc/sys/net/bridge && echo "br_netfilter=loaded"
nft add table ip mdprobe && nft add chain ip mdprobe post '{ type nat hook postrouting priority 100; }' \
    && nft add rule ip mdprobe post masquerade && echo "nft_masquerade=ok"
iptables -t nat -A POSTROUTING -s 172.31.0.0/16 -j MASQUERADE && echo "iptables_masquerade=ok"
"""


@pytest.mark.cgroup2_vm
@pytest.mark.xdist_group("cgroup2_vm")
@pytest.mark.skipif(HOST_IS_PURE_V2, reason="this host is pure cgroup v2: no VM needed")
@pytest.mark.timeout(300)
def test_the_vm_is_a_student_kind_of_machine():
    """The VM is what the tests in it need: its root the real root of its mount namespace (not a
    chroot, which unshare(CLONE_NEWUSER) refuses), cgroup2 alone, loopback and eth0 up, and the
    network modules there -- loaded at boot or, once PID 1's root is the host's, on demand."""
    result = run_in_vm(f"sh -c {shlex.quote(STUDENT_MACHINE_PROBE)}", timeout=240)
    assert result.exit_code is not None, result.output
    facts = dict(re.findall(r"^(\w+)=(.*)$", result.output, re.MULTILINE))
    assert facts == {"root": "overlay", "cgroup_v1_mounts": "0", "user_namespace": "ok", "proc_root": "/",
                     "loopback": "up", "eth0": "address", "default_route": "yes", "veth": "ok",
                     "tun": "device", "br_netfilter": "loaded", "nft_masquerade": "ok",
                     "iptables_masquerade": "ok"}, result.output
