"""Helpers that run part of the test suite inside a virtual machine.

:mod:`tests.vm.cgroup2` boots a pure cgroup v2 Linux under QEMU, so the v2
cgroup driver gets tested on a host whose own cgroups are v1 or hybrid.
"""
