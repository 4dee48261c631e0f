"""The install: the lock file pins every package the install pulls in, and the Python floor in
pyproject.toml is one that every pinned package supports."""

import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def _lock() -> dict[str, str]:
    pins = {}
    for number, line in enumerate((ROOT / "requirements.lock").read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", \
            f"requirements.lock line {number}: {line!r} is not an exact pin (name==version)"
        pins[canonicalize_name(requirement.name)] = specs[0].version
    return pins


def _floor() -> Version:
    spec = SpecifierSet(_pyproject()["project"]["requires-python"])
    floors = [Version(s.version) for s in spec if s.operator == ">="]
    assert len(floors) == 1, f"requires-python {spec} should state one floor (>=X.Y)"
    return floors[0]


def _wanted(requirement: Requirement, extras: set[str], python: Version) -> bool:
    if requirement.marker is None:
        return True
    environment = default_environment()
    environment["python_version"] = f"{python.major}.{python.minor}"
    environment["python_full_version"] = str(python)
    return any(requirement.marker.evaluate({**environment, "extra": extra})
               for extra in extras | {""})


def test_python_floor_matches_every_pinned_package():
    floor = _floor()
    assert sys.version_info[:2] >= (floor.major, floor.minor), \
        f"running Python {sys.version_info[:2]} is below the declared floor {floor}"
    refusing = []
    for name, version in _lock().items():
        dist = metadata.distribution(name)
        assert Version(dist.version).public == Version(version).public, \
            f"{name} {dist.version} is installed but the lock pins {version}"
        requires = dist.metadata.get("Requires-Python")
        if requires and not SpecifierSet(requires).contains(floor, prereleases=True):
            refusing.append(f"{name}=={version} (Requires-Python {requires})")
    assert not refusing, (f"requires-python says >= {floor}, but these pinned packages do not "
                          f"install on {floor}: {refusing}; raise the floor or change the pins")


def test_lock_pins_the_whole_dependency_closure():
    """Every package that installing ursa (with all its extras: the tests run them) pulls in,
    at the floor Python and this platform, is pinned: a fresh machine gets exactly the locked
    versions."""
    pins = _lock()
    project = _pyproject()["project"]
    floor = _floor()
    pending = [(Requirement(r), set()) for r in project["dependencies"]]
    pending += [(Requirement(r), set()) for extra in project["optional-dependencies"].values()
                for r in extra]
    seen, missing = set(), []
    while pending:
        requirement, extras = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        if name not in pins:
            missing.append(name)
            continue
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"the lock pins {name}=={pins[name]}, outside ursa's requirement {requirement}"
        for text in metadata.requires(name) or []:
            child = Requirement(text)
            if _wanted(child, set(requirement.extras), floor):
                pending.append((child, set(child.extras)))
    assert not missing, f"requirements.lock does not pin {sorted(missing)}: add them"
    unused = sorted(set(pins) - seen)
    assert not unused, f"requirements.lock pins {unused}, which nothing in the install needs"


@pytest.mark.parametrize("name", ["py.typed"])
def test_package_ships_its_typing_marker(name):
    import ursa

    assert (Path(ursa.__file__).parent / name).is_file()
