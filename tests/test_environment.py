"""environment.yml (conda) installs what `make setup` + `make lab` install: the same pins, the
same extras, the same Python, the same kernel; and `make lab` is wired (no server started)."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = (ROOT / "Makefile").read_text()


def _key(spec: str) -> tuple[str, tuple[str, ...], str]:
    r = Requirement(spec)
    return canonicalize_name(r.name), tuple(sorted(r.extras)), str(r.specifier)


def _make_extras() -> set[str]:
    """Extras the setup and lab recipes install (``-e '.[dev]'``, ``-e '.[dev,lab]'``)."""
    found: set[str] = set()
    for target in (r"\$\(STAMP\)", r"\$\(VENV\)/\.polylab-lab"):
        recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", MAKEFILE, re.M)
        assert recipe, f"no {target} recipe in the Makefile"
        for group in re.findall(r"-e '\.\[([a-z,]+)\]'", recipe.group(1)):
            found |= set(group.split(","))
    return found


def _make_pins() -> set[tuple[str, tuple[str, ...], str]]:
    """pyproject's dependencies plus those of the extras make installs (self-references such
    as ``polylab[sweep]`` expanded)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    pins: set[tuple[str, tuple[str, ...], str]] = set()
    todo, seen = list(_make_extras()), set()
    for spec in project["dependencies"]:
        pins.add(_key(spec))
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for spec in extras[extra]:
            r = Requirement(spec)
            if canonicalize_name(r.name) == "polylab":
                todo.extend(r.extras)
            else:
                pins.add(_key(spec))
    return pins


def _env() -> dict[str, object]:
    env: dict[str, object] = yaml.safe_load((ROOT / "environment.yml").read_text())
    return env


def _env_pip() -> list[str]:
    deps = _env()["dependencies"]
    assert isinstance(deps, list)
    pip = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert len(pip) == 1, "environment.yml needs one pip: section"
    return list(pip[0])


def test_environment_pins_are_the_pins_make_installs() -> None:
    env_pins = {_key(s) for s in _env_pip() if not s.startswith("-e ")}
    make_pins = _make_pins()
    missing, extra = make_pins - env_pins, env_pins - make_pins
    assert not missing and not extra, f"not in environment.yml: {missing}; only there: {extra}"
    assert all(spec.startswith("==") for _, _, spec in env_pins), "pins are exact"
    assert ("jupyterlab", (), "==" + _lab_version()) in env_pins


def _lab_version() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (spec,) = [s for s in project["optional-dependencies"]["lab"] if s.startswith("jupyterlab")]
    return spec.split("==")[1]


def test_environment_installs_polylab_with_the_extras_make_installs() -> None:
    editable = [s for s in _env_pip() if s.startswith("-e ")]
    assert len(editable) == 1
    m = re.fullmatch(r"-e \.\[([a-z,]+)\]", editable[0])
    assert m, editable[0]
    assert set(m.group(1).split(",")) == _make_extras() == {"dev", "lab"}


def test_environment_python_and_kernel_match_make_setup() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floor = re.fullmatch(r">=(\d+\.\d+)", project["requires-python"])
    assert floor
    deps = _env()["dependencies"]
    assert isinstance(deps, list)
    assert f"python={floor.group(1)}" in deps
    # the kernel make setup registers is the one make lab opens and environment.yml registers
    reg = re.search(r"-m (ipykernel install --sys-prefix --name (\S+))", MAKEFILE)
    assert reg, "make setup registers no kernel"
    assert f"python -m {reg.group(1)}" in (ROOT / "environment.yml").read_text()
    assert f"default_kernel_name={reg.group(2)}" in MAKEFILE


def _make(*args: str, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    return out.stdout


def test_make_lab_is_listed_and_wired() -> None:
    assert re.search(r"^\s+lab\s+JupyterLab", _make("help"), re.M)
    plan = _make("-n", "lab", "VENV=/nonexistent/venv")
    assert "pip install -q --python /nonexistent/venv/bin/python -e '.[dev,lab]'" in plan
    assert "/nonexistent/venv/bin/jupyter lab" in plan
    assert "--allow-root" in plan and "id -u" in plan


def _script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


@pytest.mark.parametrize("uid", [0, 1000])
def test_make_lab_passes_allow_root_only_as_root(tmp_path: Path, uid: int) -> None:
    """``make lab`` on a venv whose stamps are current and whose ``jupyter`` only prints its
    arguments (the real recipe runs, no server starts), as root and as a user (an ``id`` on
    PATH that answers ``uid``)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    _script(venv / "bin" / "jupyter", 'echo "jupyter $*"')
    _script(venv / "bin" / "python", 'echo "python $*"')  # setup's compile step (native_build)
    fake = tmp_path / "fakebin"
    fake.mkdir()
    _script(fake / "id", f"echo {uid}")
    t = (ROOT / "pyproject.toml").stat().st_mtime + 10
    for stamp in (".polylab-installed", ".polylab-lab"):
        (venv / stamp).touch()
        os.utime(venv / stamp, (t, t))
    env = os.environ | {"PATH": f"{fake}:{os.environ['PATH']}"}
    out = _make("lab", f"VENV={venv}", "LAB_ARGS=--no-browser", env=env)
    assert "python -m polylab.native_build ensure" in out  # setup compiles when stale
    launched = [ln for ln in out.splitlines() if ln.startswith("jupyter lab")]
    assert len(launched) == 1, out
    args = launched[0].split()
    assert "--MappingKernelManager.default_kernel_name=python3" in args
    assert "--no-browser" in args
    root = uid == 0
    assert ("--allow-root" in args) is root
    assert ("note: running as root" in out) is root
