"""constraints.txt, the versions the README's commands install: one exact pin for every
package, every dependency of pyproject.toml (the dev extra's too) pinned within its range."""

from __future__ import annotations

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO


def pins() -> dict[str, str]:
    found = {}
    for number, line in enumerate((REPO / "constraints.txt").read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", \
            f"constraints.txt line {number}: {line!r} is not one exact pin (NAME==VERSION)"
        name = canonicalize_name(requirement.name)
        assert name not in found, f"constraints.txt line {number}: {name} pinned twice"
        found[name] = specifiers[0].version
    return found


def test_every_dependency_is_pinned_exactly_and_within_its_range():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pinned = pins()
    assert "mer-bench" not in pinned  # the project itself is installed from the checkout
    for line in project["dependencies"] + project["optional-dependencies"]["dev"]:
        requirement = Requirement(line.split("#")[0])
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} ({line}) is not pinned in constraints.txt"
        assert requirement.specifier.contains(pinned[name], prereleases=True), \
            f"constraints.txt pins {name}=={pinned[name]}, outside pyproject's {line!r}"


def test_the_readme_pins_torch_as_the_constraints_do():
    readme = (REPO / "README.md").read_text()
    pinned = pins()
    assert f"torch=={pinned['torch']} torchvision=={pinned['torchvision']}" in readme
