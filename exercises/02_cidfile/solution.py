"""Exercise 02_cidfile: Claim the --cidfile exclusively: the metadata conflict

Generated from minidocker's own minidocker.api._claim_cidfile() by
`minidocker grade --reset-stub 02_cidfile`.
Write the body of _claim_cidfile(), then run `sudo minidocker grade 02_cidfile`.
Read README.md in this folder first.  You may use everything imported below.
"""

import _signal as signal
import os
import time
from minidocker import (capabilities, cgroups, images, kernel, logfile, rootfs, seccomp, spec,
                        store as store_module, supervisor, trace)
from minidocker.cgroups import devices
from minidocker.errors import Conflict, MinidockerError, NotFound
from minidocker.store import NEVER, Store, now


def _claim_cidfile(path: str | None) -> int | None:
    """--cidfile: created exclusively, so two containers can never claim the same file."""
    raise NotImplementedError('create the file in one open() that fails when anything is already at that path, and return the descriptor (None when there is no path); README.md has the hints')
