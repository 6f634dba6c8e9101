"""Demos that show, on the real kernel, why minidocker does things the way it does (chapter 1).

Why does minidocker change the container's root with pivot_root(2) and not
the simpler chroot(2)?  ``chroot_breakout.c`` answers by experiment: it is
the classic chroot escape, and ``minidocker run --chroot`` lets you watch it
succeed, while a default run (pivot_root) stops it::

    touch /tmp/only-on-the-host
    b=$(python3 -c 'from minidocker.demos import breakout_binary; print(breakout_binary())')
    minidocker run --rm -i --chroot busybox sh -c 'cat > /b && chmod +x /b && /b /tmp/only-on-the-host' < "$b"
    # ESCAPED: /tmp/only-on-the-host is visible
    minidocker run --rm -i busybox sh -c 'cat > /b && chmod +x /b && /b /tmp/only-on-the-host' < "$b"
    # CONTAINED: /tmp/only-on-the-host is not visible

chroot only changes where "/" resolves; the host's mounts stay underneath
and a root process can climb back up to them.  pivot_root makes the
container's tree the root *mount* and lets minidocker detach the host's
tree, so there is nothing left above "/" to climb to.

The program is compiled with ``gcc -static`` (the busybox image has no C
library) once per version of its source, and cached (minidocker/compiled.py).
"""

import os

from minidocker.compiled import CACHE_DIR, compiled

SOURCE = os.path.join(os.path.dirname(__file__), "chroot_breakout.c")


def breakout_binary(cache_dir: str = CACHE_DIR) -> str:
    """Return the path of the compiled chroot_breakout program, compiling it on first use."""
    return compiled(SOURCE, "the chroot breakout demo", ("-static", "-O2"), cache_dir)


PROBE_SOURCE = os.path.join(os.path.dirname(__file__), "syscall_probe.c")


def probe_binary(cache_dir: str = CACHE_DIR) -> str:
    """Return the path of the compiled syscall_probe program (seccomp, chapter 1), compiling it on first use."""
    return compiled(PROBE_SOURCE, "the system call probe", ("-static", "-O2"), cache_dir)
