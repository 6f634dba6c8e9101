"""The cgroup v2 tier: the cgroup tests, on a pure cgroup v2 kernel, on every run.

minidocker/cgroups/v2.py is the driver that the students' machines use (they
are pure cgroup v2), but the machine this project is developed and tested on
is a v1 hybrid, which cannot be switched over.  So, unless the host is pure v2
already, this test boots a small VM that is (tests/vm/cgroup2.py: QEMU, Debian's
kernel, the host's / shared read-only) and runs these test files inside it:

* tests/test_cgroups.py -- the driver against the kernel: limits written,
  usage read, OOM kills seen, pids.max, kill_all, cgroup removal, concurrency;
* tests/test_limits.py -- the same through the CLI: ``run -m 32m`` OOM-killed
  with 137 and OOMKilled, --pids-limit, --cpus, the cgroup removed on exit;
* tests/test_cgroup2.py -- v2's own rules: controllers handed down, no internal
  processes, delegation to a child cgroup -- and that detect() says "v2" there.

On a pure v2 host those files run natively in the ordinary suite, and this
test is skipped: a student's VM needs no QEMU.

Only this tier: ``scripts/test -m cgroup2_vm``; all but it: ``scripts/test -m "not cgroup2_vm"``.
"""

import re

import pytest

from minidocker import cgroups
from vm.cgroup2 import pytest_summary, run_in_cgroup2_vm

IN_THE_VM = ["tests/test_cgroups.py", "tests/test_limits.py", "tests/test_cgroup2.py", "tests/test_pause.py",
             "tests/test_devices.py"]
VM_TIMEOUT = 540  # seconds; measured: ~100 s from boot to power-off, on 2 cores without KVM

HOST_IS_PURE_V2 = cgroups.detect().version == "v2"


@pytest.mark.cgroup2_vm
@pytest.mark.skipif(HOST_IS_PURE_V2, reason="this host is pure cgroup v2: the v2 tests "
                    f"({', '.join(IN_THE_VM)}) run natively, no VM needed")
@pytest.mark.timeout(VM_TIMEOUT + 60)  # the helper kills QEMU at VM_TIMEOUT; this is the backstop
def test_the_cgroup_tests_pass_on_a_pure_cgroup_v2_kernel(capsys):
    result = run_in_cgroup2_vm(["-q", "-rfEs", *IN_THE_VM], timeout=VM_TIMEOUT,
                               env={"MINIDOCKER_EXPECT_CGROUP": "v2"},
                               echo=print)  # the guest's console: live with -s, else shown on failure
    summary = pytest_summary(result.output)
    with capsys.disabled():  # into CI's log even when the test passes
        print(f"\ncgroup v2 VM: {summary or 'no pytest summary'} "
              f"(boot to power-off {result.seconds:.0f} s)")
    timed_out, exit_code = result.timed_out, result.exit_code  # (not the whole result in pytest's report)
    assert not timed_out, f"the VM was still running after {VM_TIMEOUT} s: killed (its console is above)"
    assert exit_code == 0, f"pytest in the VM exited {exit_code} (its console is above)"
    # Every test ran and passed: none failed, none skipped (a VM that was not v2 would skip some).
    counts = outcome_counts(summary)
    assert counts.get("passed", 0) > 0 and set(counts) <= {"passed", "warning", "warnings"}, summary


def outcome_counts(summary: str | None) -> dict[str, int]:
    """"26 passed, 1 skipped in 151.20s" -> {"passed": 26, "skipped": 1}."""
    found = re.findall(r"(\d+) (\w+)", (summary or "").split(" in ")[0])
    return {outcome: int(number) for number, outcome in found}
