"""requirements.lock (what the image installs, with --require-hashes) keeps up with pyproject.toml:
every runtime dependency and the build backend pinned, within its declared range, with hashes."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def locked() -> dict[str, tuple[str, int]]:
    """Each pinned name: its version and how many hashes it carries."""
    text = (REPO / "requirements.lock").read_text()
    pins = {}
    for block in re.split(r"\n(?=\S)", text):
        match = re.match(r"([A-Za-z0-9_.-]+)==(\S+)", block)
        if match:
            pins[canonicalize_name(match.group(1))] = (match.group(2), len(re.findall(r"--hash=sha256:[0-9a-f]{64}", block)))
    return pins


def test_the_lock_pins_every_dependency_within_its_range_with_hashes():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    pins = locked()
    wanted = [Requirement(spec) for spec in project["project"]["dependencies"] + project["build-system"]["requires"]]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: run make lock"
        version, hashes = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock has {name}=={version}, pyproject.toml wants {requirement.specifier}: run make lock")
    assert all(hashes >= 1 for _, hashes in pins.values())
    assert "--find-links" not in (REPO / "requirements.lock").read_text()  # nothing of this machine's
