"""Which command a container runs: ENTRYPOINT + CMD, --entrypoint, the arguments (chapter 2).

A table of cases, each run in a real container (graded by exercises/02_create_and_run).
Three small images share busybox's layer and differ only in their config:

    busybox   no ENTRYPOINT             CMD ["sh"]
    cmdonly   no ENTRYPOINT             CMD ["echo", "from-cmd"]
    shellcmd  no ENTRYPOINT             CMD ["/bin/sh", "-c", "echo $HOME"]   (a Dockerfile's shell form)
    entry     ENTRYPOINT ["echo", "ep"] CMD ["from-cmd"]
    nothing   neither
"""

import json
import os

import pytest

from minidocker import images
from minidocker.store import Store

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

IMAGES = {
    "cmdonly": {"Cmd": ["echo", "from-cmd"]},
    "shellcmd": {"Cmd": ["/bin/sh", "-c", "echo $HOME"]},
    "entry": {"Entrypoint": ["echo", "ep"], "Cmd": ["from-cmd"]},
    "nothing": {},
}

# (rule, image, --entrypoint or None, arguments after the image, the argv the container must run)
TABLE = [
    ("args_replace_cmd", "busybox", None, ["echo", "hi"], ["echo", "hi"]),
    ("args_replace_cmd", "cmdonly", None, [], ["echo", "from-cmd"]),
    ("args_replace_cmd", "cmdonly", None, ["echo", "mine"], ["echo", "mine"]),
    ("args_replace_cmd", "shellcmd", None, [], ["/bin/sh", "-c", "echo $HOME"]),
    ("entrypoint_plus_cmd", "entry", None, [], ["echo", "ep", "from-cmd"]),
    ("entrypoint_plus_cmd", "entry", None, ["x", "y"], ["echo", "ep", "x", "y"]),
    ("flag_drops_image_cmd", "entry", "echo", [], ["echo"]),
    ("flag_drops_image_cmd", "entry", "echo", ["a", "b"], ["echo", "a", "b"]),
    ("flag_drops_image_cmd", "cmdonly", "hostname", [], ["hostname"]),
    ("flag_drops_image_cmd", "entry", "", ["echo", "no-ep"], ["echo", "no-ep"]),
]
EXPECTED_OUTPUT = {("echo", "hi"): "hi", ("echo", "from-cmd"): "from-cmd", ("echo", "mine"): "mine",
                   ("/bin/sh", "-c", "echo $HOME"): "/root", ("echo", "ep", "from-cmd"): "ep from-cmd",
                   ("echo", "ep", "x", "y"): "ep x y", ("echo",): "", ("echo", "a", "b"): "a b",
                   ("hostname",): "h1", ("echo", "no-ep"): "no-ep"}


@pytest.fixture
def md_images(md):
    """md, with the images above added to its store (busybox's layer, another config)."""
    store = Store(md.root)
    busybox = images.get(store, "busybox")
    for name, run_config in IMAGES.items():
        config = {**busybox.config, "config": {"Env": busybox.runtime_config["Env"], **run_config}}
        images.add_image(store, config, [f"{name}:latest"])
    return md


def run_case(md, image, entrypoint, args):
    flags = ["--entrypoint", entrypoint] if entrypoint is not None else []
    name = f"case{abs(hash((image, entrypoint, tuple(args)))):x}"
    result = md("run", "--name", name, "--hostname", "h1", *flags, image, *args)
    recorded = md.inspect(name, "{{json .Path}} {{json .Args}}") if result.returncode == 0 else None
    md("rm", "-f", name)
    return result, recorded


def check_rule(md, rule):
    for _rule, image, entrypoint, args, argv in (row for row in TABLE if row[0] == rule):
        case = f"image {image}, --entrypoint {entrypoint!r}, arguments {args}"
        result, recorded = run_case(md, image, entrypoint, args)
        assert result.returncode == 0, f"{case}: exited {result.returncode}: {result.stderr.strip()}"
        path, arguments = recorded.split(" ", 1)
        assert [json.loads(path)] + json.loads(arguments) == argv, f"{case}: ran {path} {arguments}, not {argv}"
        assert result.stdout.strip() == EXPECTED_OUTPUT[tuple(argv)], f"{case}: printed {result.stdout!r}"


def test_arguments_after_the_image_replace_its_cmd(md_images):
    check_rule(md_images, "args_replace_cmd")


def test_entrypoint_and_cmd_are_joined(md_images):
    check_rule(md_images, "entrypoint_plus_cmd")


def test_the_entrypoint_flag_replaces_the_entrypoint_and_drops_the_image_cmd(md_images):
    check_rule(md_images, "flag_drops_image_cmd")


@pytest.mark.parametrize("image,flags", [("nothing", []), ("entry", ["--entrypoint", ""])])
def test_nothing_to_run_is_refused_and_nothing_is_created(md_images, image, flags):
    result = md_images("create", *flags, image)
    assert (result.returncode, result.stderr) == (125, "minidocker: No command specified\n")
    assert md_images.out("ps", "-aq") == ""
