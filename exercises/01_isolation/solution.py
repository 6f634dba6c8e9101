"""Exercise 01_isolation: Change the container's root with pivot_root, so nothing of the host stays reachable

Generated from minidocker's own minidocker.rootfs.pivot_into() by
`minidocker grade --reset-stub 01_isolation`.
Write the body of pivot_into(), then run `sudo minidocker grade 01_isolation`.
Read README.md in this folder first.  You may use everything imported below.
"""

import errno
import os
import stat
from minidocker import kernel
from minidocker.errors import MinidockerError
from minidocker.kernel import (MNT_DETACH, MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY,
                               MS_REC, MS_REMOUNT, MS_STRICTATIME)
MAX_SYMLINKS = 40


def pivot_into(root: str) -> None:
    """Make `root` the root mount and detach the host's tree entirely."""
    raise NotImplementedError('make root the root mount with kernel.pivot_root(), then detach the old root and remove its directory; README.md has the hints')
