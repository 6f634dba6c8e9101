"""Helpers that run part of the test suite inside a virtual machine.

:mod:`vm.cgroup2` boots a pure cgroup v2 Linux under QEMU, so that the v2
cgroup driver gets tested even on a host whose own cgroups are v1 or hybrid.
(pytest puts tests/ on sys.path, so the test files import it as ``vm.cgroup2``.)
"""
