"""Reproducible builds (issue 12, item 10): the lock files, and the files that install from them.

No Docker engine runs here, so docker-compose.yml and the Dockerfile are checked by reading them. The
locks are checked against pyproject.toml without the network: every dependency pinned at a version
its specifier allows, with hashes, and nothing pinned as direct that pyproject no longer asks for.
``make lock`` regenerates them (pip-compile).
"""

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(settings.BASE_DIR)
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
UPPER = {"<", "<=", "==", "~=", "==="}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s\\;]+)", re.MULTILINE)
DIRECT = "cohort-manager (pyproject.toml)"


def _requirements(*extras: str) -> list[Requirement]:
    found = [Requirement(line) for line in PROJECT["dependencies"]]
    for extra in extras:
        found += [Requirement(line) for line in PROJECT["optional-dependencies"][extra]]
    return found


def _lock(name: str) -> tuple[dict[str, str], set[str], str]:
    """(name → pinned version, the names pip-compile marks as direct dependencies, the text)."""
    text = (ROOT / "requirements" / name).read_text(encoding="utf-8")
    pins, direct = {}, set()
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = PIN.match(block)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
            if DIRECT in block:
                direct.add(canonicalize_name(match.group(1)))
    return pins, direct, text


LOCKS = {"prod.lock": (), "dev.lock": ("dev",)}


def test_every_dependency_has_an_upper_bound():
    unbounded = [
        str(req)
        for req in _requirements(*PROJECT["optional-dependencies"])
        if not {s.operator for s in req.specifier} & UPPER
    ]
    assert unbounded == []


@pytest.mark.parametrize(("lock", "extras"), LOCKS.items())
def test_the_lock_pins_every_dependency_at_a_version_pyproject_allows(lock, extras):
    pins, direct, _ = _lock(lock)
    wrong = {}
    for req in _requirements(*extras):
        version = pins.get(canonicalize_name(req.name))
        if version is None or not req.specifier.contains(version, prereleases=True):
            wrong[str(req)] = version
    assert wrong == {}, "run `make lock`"
    stale = direct - {canonicalize_name(req.name) for req in _requirements(*extras)}
    assert stale == set(), "pinned as direct dependencies but no longer in pyproject.toml: run `make lock`"


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_has_hashes_and_no_machine_paths(lock):
    pins, _, text = _lock(lock)
    assert len(pins) >= 20
    blocks = [b for b in re.split(r"\n(?=[A-Za-z0-9])", text) if PIN.match(b)]
    assert all("--hash=sha256:" in block for block in blocks)
    assert not re.search(r"--(index-url|extra-index-url|find-links)|file://", text)


def test_the_client_generators_lock_pins_what_its_input_asks_for_with_hashes():
    """requirements/clientgen.lock (an environment of its own, .venv/clientgen) pins clientgen.in's requirements."""
    wanted = [
        Requirement(line)
        for line in (ROOT / "requirements" / "clientgen.in").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    pins, _, text = _lock("clientgen.lock")
    assert wanted
    assert all({s.operator for s in req.specifier} & UPPER for req in wanted)
    wrong = {str(req): pins.get(canonicalize_name(req.name)) for req in wanted}
    assert {k: v for k, v in wrong.items() if v is None or not Requirement(k).specifier.contains(v)} == {}, (
        "run `make lock`"
    )
    blocks = [b for b in re.split(r"\n(?=[A-Za-z0-9])", text) if PIN.match(b)]
    assert blocks and all("--hash=sha256:" in block for block in blocks)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "pip install --quiet --require-hashes -r requirements/clientgen.lock" in makefile


def test_the_production_lock_holds_no_development_tool():
    pins, _, _ = _lock("prod.lock")
    assert not {"pytest", "ruff", "playwright", "factory-boy", "pip-tools"} & set(pins)


def test_make_installs_from_the_development_lock_with_hashes_then_the_project_without_dependencies():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "pip install --quiet --require-hashes -r requirements/dev.lock" in makefile
    assert "pip install --quiet --no-deps -e ." in makefile
    assert '.[dev]"' not in makefile
    assert re.search(r"^lock:", makefile, re.MULTILINE)


def test_the_image_installs_from_the_production_lock_with_hashes_then_the_project_without_dependencies():
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()]
    locked = lines.index("RUN pip install --require-hashes -r requirements/prod.lock")
    project = next(i for i, line in enumerate(lines) if line.startswith("RUN pip install --no-deps ."))
    assert locked < project
    assert [
        line for line in lines if "pip install" in line and "--require-hashes" not in line and "--no-deps" not in line
    ] == []


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_compose_runs_one_image_for_migrate_web_worker_and_beat(compose):
    services = compose["services"]
    images = {name: services[name]["image"] for name in ("migrate", "web", "worker", "beat")}
    assert len(set(images.values())) == 1, images
    assert all(services[name]["build"] == "." for name in images)


def test_migrations_the_protocol_and_the_ctcae_table_load_in_a_one_off_service_before_the_others(compose):
    services = compose["services"]
    migrate = services["migrate"]
    script = " ".join(migrate["command"])
    steps = [script.index(f"manage.py {step}") for step in ("migrate", "load_protocol", "load_ctcae_terms")]
    assert steps == sorted(steps)
    assert migrate["restart"] == "no"
    assert "migrate" not in migrate["depends_on"]
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
        assert "manage.py" not in " ".join(services[name]["command"]), name
