"""Exercise 07_union_filesystem: Apply a layer's whiteouts: turn OCI .wh. files into overlayfs whiteouts and opaque directories

Generated from minidocker's own minidocker.layers.apply_whiteout() by
`minidocker grade --reset-stub 07_union_filesystem`.
Write the body of apply_whiteout(), then run `sudo minidocker grade 07_union_filesystem`.
Read README.md in this folder first.  You may use everything imported below.
"""

import os
from minidocker import jsoncore, kernel, trace
from minidocker.errors import MinidockerError, NotFound
from minidocker.store import remove_tree
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"


def apply_whiteout(directory: str, whiteout: str) -> None:
    """Turn the OCI whiteout file named `whiteout`, met in a layer tar in `directory`, into overlayfs's form.

    ``.wh..wh..opq`` makes `directory` opaque: the xattr
    ``trusted.overlay.opaque`` set to ``y``.  ``.wh.NAME`` deletes NAME: a
    character device with device number 0/0 named NAME in `directory`,
    replacing whatever this layer itself put there.  (The names have been
    checked: `directory` is inside the layer, NAME is a plain name.)
    """
    raise NotImplementedError("'.wh..wh..opq' -> set the xattr trusted.overlay.opaque=y on directory; '.wh.NAME' -> a character device 0/0 named NAME there (remove what is in the way first); README.md has the hints")
