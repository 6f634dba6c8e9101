"""Image references: Docker's rules for registry, repository, tag and digest (chapter 3)."""

import pytest

from minidocker import reference
from minidocker.errors import MinidockerError

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, registry, path, tag, digest, familiar", [
    ("alpine", "registry-1.docker.io", "library/alpine", "latest", "", "alpine:latest"),
    ("alpine:3.19", "registry-1.docker.io", "library/alpine", "3.19", "", "alpine:3.19"),
    ("docker.io/library/alpine:3.19", "registry-1.docker.io", "library/alpine", "3.19", "", "alpine:3.19"),
    ("me/app", "registry-1.docker.io", "me/app", "latest", "", "me/app:latest"),
    ("localhost:5000/app:v1", "localhost:5000", "app", "v1", "", "localhost:5000/app:v1"),
    ("localhost/app", "localhost", "app", "latest", "", "localhost/app:latest"),
    ("ghcr.io/org/team/tool:1.0-rc_2", "ghcr.io", "org/team/tool", "1.0-rc_2", "", "ghcr.io/org/team/tool:1.0-rc_2"),
    (f"alpine@{DIGEST}", "registry-1.docker.io", "library/alpine", "latest", DIGEST, f"alpine@{DIGEST}"),
    (f"127.0.0.1:5000/a/b:t@{DIGEST}", "127.0.0.1:5000", "a/b", "t", DIGEST, f"127.0.0.1:5000/a/b@{DIGEST}"),
])
def test_references_are_split_like_docker_does(text, registry, path, tag, digest, familiar):
    ref = reference.parse(text)
    assert (ref.registry, ref.path, ref.tag, ref.digest, ref.familiar) == (registry, path, tag, digest, familiar)
    assert ref.manifest_ref == (digest or tag)


@pytest.mark.parametrize("text", ["", "Alpine", "alpine:", ":tag", "a//b", "alpine@sha256:123", "-x",
                                  "alpine:tag:more", "a" * 256, "alpine:" + "t" * 129, "registry:5000:1/x"])
def test_bad_references_are_refused(text):
    with pytest.raises(MinidockerError, match="invalid reference format"):
        reference.parse(text)
