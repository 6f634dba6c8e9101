"""Exercise 02_create_and_run: Decide which command a container runs: ENTRYPOINT, CMD, --entrypoint and the arguments

Generated from minidocker's own minidocker.spec.resolve_command() by
`minidocker grade --reset-stub 02_create_and_run`.
Write the body of resolve_command(), then run `sudo minidocker grade 02_create_and_run`.
Read README.md in this folder first.  You may use everything imported below.
"""

import os
from minidocker.errors import MinidockerError
_SIZE = r"^(\d+(?:\.\d+)?)\s*([bkmg]?)b?$"
_HOSTNAME = r"^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$"


def resolve_command(image_entrypoint: list[str] | None, image_cmd: list[str] | None,
                    entrypoint: str | None, args: list[str]) -> list[str]:
    """Docker's rule: ENTRYPOINT + CMD, where --entrypoint also drops the image's CMD."""
    raise NotImplementedError("return the argv the container runs: the entrypoint part followed by the command part; README.md has Docker's table")
