"""Image references: what `alpine`, `alpine:3.19` and `ghcr.io/me/app@sha256:...` mean (chapter 3).

A reference names an image somewhere in the world::

    [registry/]path[:tag][@digest]

    alpine                       -> docker.io/library/alpine:latest
    alpine:3.19                  -> docker.io/library/alpine:3.19
    me/app                       -> docker.io/me/app:latest
    localhost:5000/app:v1        -> the registry at localhost:5000, repository app, tag v1
    alpine@sha256:<64 hex>       -> exactly that manifest, whatever the tags say now

The first component is a registry only if it looks like a host name (it has a
'.' or a ':' port, or is 'localhost'); otherwise the image is on Docker Hub,
whose one-word names live under 'library/'.  A tag is a movable label; a digest
is the sha256 of the manifest and so names its content forever.

Locally, minidocker files an image under its *familiar* name, as `docker images`
shows it: `alpine:3.19`, `localhost:5000/app:v1` (Docker Hub's prefixes dropped).
"""

import re
from collections import namedtuple  # not typing.NamedTuple: importing typing costs a container start 3 ms

from minidocker.errors import MinidockerError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"  # where docker.io's distribution API really answers

# The grammar of github.com/distribution/reference, one piece at a time.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"sha256:[0-9a-f]{64}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")


class Reference(namedtuple("Reference", ["domain", "path", "tag", "digest"])):
    """domain: "docker.io", "localhost:5000", "ghcr.io"; path: the repository inside the registry
    ("library/alpine", "me/app"); tag: "latest" when none was given; digest: "" or "sha256:..."."""

    __slots__ = ()

    @property
    def registry(self) -> str:
        """The host (and port) whose /v2/ API serves this repository."""
        return DOCKER_HUB_API if self.domain == DOCKER_HUB else self.domain

    @property
    def familiar_name(self) -> str:
        """The name as people write it: 'alpine', 'me/app', 'localhost:5000/app'."""
        if self.domain == DOCKER_HUB:
            return self.path.removeprefix("library/")
        return f"{self.domain}/{self.path}"

    @property
    def familiar(self) -> str:
        """name:tag (or name@digest when pinned by digest): how the local store files it."""
        return f"{self.familiar_name}@{self.digest}" if self.digest else f"{self.familiar_name}:{self.tag}"

    @property
    def manifest_ref(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag."""
        return self.digest or self.tag

    def __str__(self) -> str:
        return f"{self.domain}/{self.path}:{self.tag}" + (f"@{self.digest}" if self.digest else "")


def parse(text: str) -> Reference:
    """Split a reference into registry, repository path, tag and digest (normalised like Docker's)."""
    match = _REFERENCE.match(text)
    if not match or len(match["name"]) > 255:
        raise MinidockerError(f"invalid reference format: {text!r}")
    name, tag, digest = match["name"], match["tag"], match["digest"]
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = DOCKER_HUB, name
    if domain == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"  # Docker Hub's official images
    if not re.fullmatch(rf"{_COMPONENT}(?:/{_COMPONENT})*", path):
        raise MinidockerError(f"invalid reference format: repository name must be lowercase: {text!r}")
    return Reference(domain, path, tag or "latest", digest or "")
