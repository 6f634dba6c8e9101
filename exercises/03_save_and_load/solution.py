"""Exercise 03_save_and_load: Where an image lives inside a saved tar: write manifest.json's entry

Generated from minidocker's own minidocker.archive.manifest_entry() by
`minidocker grade --reset-stub 03_save_and_load`.
Write the body of manifest_entry(), then run `sudo minidocker grade 03_save_and_load`.
Read README.md in this folder first.  You may use everything imported below.
"""

import io
import json
import os
import tarfile
from minidocker import content, images, reference, trace
from minidocker.errors import MinidockerError
from minidocker.store import Store
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"


def manifest_entry(image_id: str, diff_ids: list[str], tags: list[str]) -> dict:
    """One image's entry in manifest.json: its tags, and where its config and layers are in the archive.

    The config is stored as "<image ID hex>.json" and each layer as "<diff ID hex>/layer.tar",
    bottom layer first (the order of the config's rootfs.diff_ids).  For example
    manifest_entry("sha256:ab…", ["sha256:12…", "sha256:34…"], ["web:1"]) ->
    {"Config": "ab….json", "RepoTags": ["web:1"], "Layers": ["12…/layer.tar", "34…/layer.tar"]}
    """
    raise NotImplementedError('return the dict {Config, RepoTags, Layers} that names where save put the config and each layer; README.md has the hints')
