"""The small C programs minidocker ships as source and compiles on the host (chapters 1 and 2).

Two pieces of minidocker are better written in C than in Python: the
chroot-breakout demo (demos/chroot_breakout.c), which must run inside the
busybox image where there is no Python, and the shim (shim.c) that stays
beside every detached container, where a Python interpreter would cost
several megabytes of memory per container.  Both are compiled with gcc the
first time they are needed and kept in /var/cache/minidocker, under a name
that carries the hash of their source and compiler flags: an edited source
gets a fresh binary, never a stale one.  scripts/setup builds the shim up
front so that the first ``run -d`` does not wait for gcc.
"""

import os

from minidocker.errors import MinidockerError

CACHE_DIR = "/var/cache/minidocker"
INSTALL_HINT = "install the Debian packages gcc and libc6-dev (apt-get install gcc libc6-dev)"


def compiled(source: str, what: str, flags: tuple[str, ...] = ("-O2",), cache_dir: str = CACHE_DIR) -> str:
    """The path of `source` compiled with `gcc flags`, compiling it on first use; `what` names it in errors."""
    import hashlib  # here, not above: its OpenSSL core costs 4 ms to import, and only `run -d` needs this

    with open(source, "rb") as f:
        key = hashlib.sha256(f.read() + "\0".join(flags).encode())
    name = os.path.basename(source).removesuffix(".c")
    path = os.path.join(cache_dir, f"{name}-{key.hexdigest()[:12]}")
    if os.path.exists(path):
        return path
    import subprocess  # only on a miss: the common case is the stat above
    import tempfile

    os.makedirs(cache_dir, exist_ok=True)
    # Compile to a temporary name in the same directory, then rename: rename(2) is atomic,
    # so a concurrent caller sees either no binary or a complete one, never half of one.
    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", dir=cache_dir)
    os.close(fd)
    try:
        try:
            result = subprocess.run(["gcc", *flags, "-o", tmp, source], capture_output=True, text=True)
        except FileNotFoundError:
            raise MinidockerError(f"cannot build {what}: gcc not found; {INSTALL_HINT}") from None
        if result.returncode != 0:
            # Without libc6-dev: "stdio.h: No such file", or "cannot find -lc" for a static link.
            lines = result.stderr.strip().splitlines() or ["gcc failed"]
            why = next((ln for ln in lines if "cannot find" in ln or "error" in ln), lines[-1])
            raise MinidockerError(f"cannot build {what} ({why.strip()}); {INSTALL_HINT}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
