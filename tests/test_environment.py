"""environment.yml (conda) and pyproject.toml (pip) must not drift apart."""

import re
import tomllib

import yaml

from .conftest import ROOT


def _requirements(specs):
    """{normalised name: specifier set} from requirement strings like 'torch>=2.3,<3'."""
    out = {}
    for spec in specs:
        name, rest = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", spec).groups()
        out[name.lower().replace("_", "-")] = frozenset(s.strip() for s in rest.split(",") if s.strip())
    return out


def test_environment_yml_lists_exactly_pyprojects_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = _requirements(project["dependencies"] + project["optional-dependencies"]["dev"])
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_section, "the conda environment must install the package itself"
    listed = _requirements(p for p in pip_section if not p.startswith("-e"))
    assert listed == wanted, (
        f"only in environment.yml: {set(listed.items()) - set(wanted.items())}; "
        f"only in pyproject.toml: {set(wanted.items()) - set(listed.items())}"
    )


def test_environment_python_matches_requires_python():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in environment["dependencies"] if isinstance(d, str) and d.startswith("python="))
    minimum = project["requires-python"].removeprefix(">=")
    assert python == f"python={minimum}"
