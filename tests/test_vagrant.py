"""The lab VM's Vagrantfile: Vagrant accepts it, rejects a broken one, and it provisions with scripts/setup.

Booting the VM is not possible here (no nested virtualisation in CI), so these
tests check what can be checked without it: `vagrant validate` (Debian's
vagrant, with the vagrant-libvirt provider plugin, which makes the libvirt
block be validated too; the VirtualBox block is only evaluated, since
VirtualBox is not installed), and that the provisioning commands are the set-up
CI runs -- by evaluating the Vagrantfile and running its set-up command here.
"""

import json
import os
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VAGRANTFILE = os.path.join(REPO, "Vagrantfile")

# Evaluates a Vagrantfile with a recorder in place of Vagrant's config object and prints, as JSON,
# the synced folders and provisioners it declares.
RECORDER = r"""
require "json"
$seen = {"synced_folders" => [], "provisioners" => [], "providers" => [], "box" => nil}
class Recorder
  def initialize(path) = @path = path
  def method_missing(name, *args, **opts, &block)
    key = name.to_s
    if key.end_with?("=")
      $seen["box"] = args[0] if @path == "vm" && key == "box="
      return
    end
    case [@path, key]
    when ["vm", "synced_folder"] then $seen["synced_folders"] << {"host" => args[0], "guest" => args[1], "opts" => opts}
    when ["vm", "provision"] then $seen["provisioners"] << {"name" => args[0], "opts" => opts}
    when ["vm", "provider"] then $seen["providers"] << args[0].to_s; block&.call(Recorder.new("provider"))
    else return Recorder.new(key)
    end
  end
  def respond_to_missing?(*) = true
end
module Vagrant
  def self.configure(_version) = yield(Recorder.new("config"))
end
load ARGV[0]
puts JSON.generate($seen)
"""


def vagrant(*args, cwd) -> subprocess.CompletedProcess:
    if shutil.which("vagrant") is None:
        pytest.fail("vagrant is not installed: run scripts/setup (it installs Debian's vagrant and vagrant-libvirt)")
    env = {**os.environ, "VAGRANT_HOME": str(cwd / "vagrant.d"), "VAGRANT_CHECKPOINT_DISABLE": "1"}
    return subprocess.run(["vagrant", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def copy_vagrantfile(tmp_path, replace: tuple[str, str] | None = None):
    with open(VAGRANTFILE) as f:
        text = f.read()
    if replace:
        assert replace[0] in text
        text = text.replace(*replace)
    (tmp_path / "Vagrantfile").write_text(text)
    return tmp_path


def test_the_vagrantfile_validates(tmp_path):
    result = vagrant("validate", cwd=copy_vagrantfile(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "validated successfully" in result.stdout


@pytest.mark.parametrize("bad, complaint", [
    (('host: 8888, host_ip', 'host: "eighty-eighty-eight", host_ip'), "Ports to forward must be 1 to 65535"),
    (("lv.memory = 2048", "lv.memory = 2048\n    lv.no_such_setting = 1"),  # checked by the libvirt plugin
     "The following settings shouldn't exist: no_such_setting"),
], ids=["forwarded-port", "libvirt-setting"])
def test_an_invalid_setting_fails_validation(tmp_path, bad, complaint):
    result = vagrant("validate", cwd=copy_vagrantfile(tmp_path, bad))
    assert result.returncode != 0
    assert complaint in result.stdout + result.stderr


def declared() -> dict:
    done = subprocess.run(["ruby", "-e", RECORDER, VAGRANTFILE], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_pure_cgroup_v2_debian_guest_with_both_providers_and_the_lab_port():
    seen = declared()
    assert seen["box"] == "debian/bookworm64"
    assert sorted(seen["providers"]) == ["libvirt", "virtualbox"]
    [repo] = [f for f in seen["synced_folders"] if f["host"] == "." and not f["opts"].get("disabled")]
    assert repo["opts"]["type"] == "rsync"
    with open(VAGRANTFILE) as f:
        assert 'forwarded_port", guest: 8888, host: 8888' in f.read()


def test_provisioning_runs_the_set_up_ci_runs():
    """The VM's set-up is scripts/setup in the synced repository -- run here, it sets this checkout up."""
    seen = declared()
    [repo] = [f["guest"] for f in seen["synced_folders"] if not f["opts"].get("disabled")]
    setup = next(p for p in seen["provisioners"] if p["name"] == "setup")["opts"]["inline"]
    assert setup.startswith(f"cd {repo} && ") and setup.endswith("scripts/setup")
    lab = next(p for p in seen["provisioners"] if p["name"] == "lab")["opts"]["inline"]
    assert f"{repo}/scripts/lab" in lab
    with open(os.path.join(REPO, "scripts", "test")) as f:
        assert "\nscripts/setup\n" in f.read()  # CI runs scripts/test, which runs scripts/setup first
    if os.geteuid() != 0:
        pytest.fail("scripts/setup needs root: run the tests as root (sudo scripts/test)")
    result = subprocess.run(["bash", "-c", setup.replace(repo, REPO, 1)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
