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
library) once per version of its source, and cached.
"""

import hashlib
import os
import subprocess
import tempfile

from minidocker.errors import MinidockerError

SOURCE = os.path.join(os.path.dirname(__file__), "chroot_breakout.c")
CACHE_DIR = "/var/cache/minidocker"
_INSTALL_HINT = "install the Debian packages gcc and libc6-dev (apt-get install gcc libc6-dev)"


def breakout_binary(cache_dir: str = CACHE_DIR) -> str:
    """Return the path of the compiled chroot_breakout program, compiling it on first use."""
    with open(SOURCE, "rb") as f:
        source = f.read()
    # Named after the source's hash: an edited source gets a fresh binary, never a stale one.
    path = os.path.join(cache_dir, f"chroot_breakout-{hashlib.sha256(source).hexdigest()[:12]}")
    if os.path.exists(path):
        return path
    os.makedirs(cache_dir, exist_ok=True)
    # Compile to a temporary name in the same directory, then rename: rename(2) is atomic,
    # so a concurrent caller sees either no binary or a complete one, never half of one.
    fd, tmp = tempfile.mkstemp(prefix=".chroot_breakout-", dir=cache_dir)
    os.close(fd)
    try:
        try:
            result = subprocess.run(["gcc", "-static", "-O2", "-o", tmp, SOURCE], capture_output=True, text=True)
        except FileNotFoundError:
            raise MinidockerError(f"cannot build the chroot breakout demo: gcc not found; {_INSTALL_HINT}") from None
        if result.returncode != 0:
            # Without libc6-dev the linker reports "cannot find -lc" (no static libc.a).
            lines = result.stderr.strip().splitlines() or ["gcc failed"]
            why = next((ln for ln in lines if "cannot find" in ln or "error" in ln), lines[-1])
            raise MinidockerError(f"cannot build the chroot breakout demo ({why.strip()}); {_INSTALL_HINT}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
