"""Chapter 1: root inside a container keeps only Docker's default capabilities."""

from minidocker import capabilities

DOCKER_DEFAULT_MASK = 0xA80425FB  # CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE
#                                   NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP


def _caps(md, *flags, field="CapBnd") -> int:
    status = md.out("run", "--rm", *flags, "busybox", "cat", "/proc/self/status")
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(field + ":")), 16)


def test_default_capabilities_are_dockers():
    mask = sum(1 << capabilities.NAMES.index(name) for name in capabilities.DEFAULT)
    assert mask == DOCKER_DEFAULT_MASK


def test_a_default_container_keeps_only_the_default_set(md):
    assert _caps(md) == DOCKER_DEFAULT_MASK
    assert _caps(md, field="CapEff") == DOCKER_DEFAULT_MASK
    assert not _caps(md) & (1 << capabilities.NAMES.index("SYS_MODULE"))  # no loading kernel modules


def test_a_default_container_cannot_mount_or_make_network_devices(md):
    mount = md("run", "--rm", "busybox", "mount", "-t", "tmpfs", "none", "/tmp")
    assert mount.returncode != 0 and "permission denied" in mount.stderr
    link = md("run", "--rm", "busybox", "ip", "link", "add", "v0", "type", "veth")
    assert link.returncode != 0 and "Operation not permitted" in link.stderr


def test_cap_add_net_admin_allows_exactly_the_network_case(md):
    out = md.out("run", "--rm", "--cap-add", "NET_ADMIN", "busybox", "sh", "-c",
                 "ip link add v0 type veth && ip -o link")
    assert "v0" in out
    still = md("run", "--rm", "--cap-add", "NET_ADMIN", "busybox", "mount", "-t", "tmpfs", "none", "/tmp")
    assert still.returncode != 0


def test_cap_drop_all_and_privileged(md):
    assert _caps(md, "--cap-drop", "ALL") == 0
    assert _caps(md, "--cap-drop", "all", "--cap-add", "cap_chown") == 1
    assert md.out("run", "--rm", "--privileged", "busybox", "sh", "-c", "mount -t tmpfs none /tmp && echo mounted") \
        == "mounted"


def test_no_new_privileges(md):
    status = md.out("run", "--rm", "--security-opt", "no-new-privileges", "busybox", "cat", "/proc/self/status")
    assert "NoNewPrivs:\t1" in status
    assert "NoNewPrivs:\t0" in md.out("run", "--rm", "busybox", "cat", "/proc/self/status")


def test_unknown_capability_is_refused(md):
    result = md("run", "--rm", "--cap-add", "bogus", "busybox", "true")
    assert result.returncode == 125 and "unknown capability: 'bogus'" in result.stderr
