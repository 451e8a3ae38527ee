"""pyproject.toml, environment.yml and the Makefile say the same thing, and the installed versions fit it."""

import re
import sys

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from course_lib.environment import check_environment

from repo_files import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DECLARED = [Requirement(r)
            for r in PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["dev"]]


def test_every_requirement_has_a_tested_range():
    for req in DECLARED:
        operators = {spec.operator for spec in req.specifier}
        assert ">=" in operators, f"{req}: needs a lower bound"
        assert "<" in operators, f"{req}: needs an upper bound (the first release not tested)"


def test_environment_yml_names_the_same_packages_and_ranges():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python"))
    assert python.replace("python", "") == PYPROJECT["project"]["requires-python"]
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict))
    conda_reqs = {Requirement(line).name: Requirement(line) for line in pip_section if not line.startswith("-")}
    assert set(conda_reqs) == {r.name for r in DECLARED}
    for req in DECLARED:
        assert conda_reqs[req.name].specifier == req.specifier, f"{req.name}: {conda_reqs[req.name]} vs {req}"
        assert conda_reqs[req.name].marker == req.marker, req.name
    assert '-e ".[dev]"' in pip_section, "environment.yml installs the course itself with its dev extra"


def test_makefile_torch_pin_is_inside_the_tested_range():
    pinned = re.search(r"^TORCH_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE).group(1)
    torch_req = next(r for r in DECLARED if r.name == "torch")
    assert Version(pinned) in torch_req.specifier


def test_installed_packages_are_in_their_tested_ranges():
    failed = [c.line() for c in check_environment(extras=("dev",), verbose=False) if not c.ok]
    assert not failed, "\n".join(failed)
