"""The import contract and the shape of the tree, checked on the source (``ast``), so CI fails when
someone breaks them. import-linter (``lint-imports`` in .ci/run) checks the app contracts too.

1. ``cohorts`` never imports ``safety`` (safety builds on cohorts; cohorts reads safety data only
   through ``cohorts.ports``).
2. Nobody imports another module's ``_private`` name, nor reaches one through a module
   (``services._rate``): a name starting with ``_`` stays in its module.
3. No function-local import in production code, except where Django wants one (``AppConfig.ready``,
   data migrations, ``manage.py``): a local import must not hide an import cycle.
4. Only the cohort lifecycle module assigns a cohort's state; only the participant lifecycle module a
   participant's status.
5. No production module is over about 450 lines, rule tables aside.
"""

import ast
import importlib.util
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from cohorts import ports
from safety.cohort_reader import SafetyReaderForCohorts

ROOT = Path(settings.BASE_DIR)
APPS = ("api", "cohorts", "config", "core", "reminders", "safety", "trial")
PROJECT = (*APPS, "tests", "bench")
MAX_LINES = 450
# Rule tables that are data may run longer; none does yet.
LONG_TABLES: frozenset[str] = frozenset()


def _modules(packages=APPS, *, migrations=False):
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            if migrations or "migrations" not in path.parts:
                yield path


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path):
    """(module imported, names imported from it, line) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            yield module, [alias.name for alias in node.names], node.lineno


def _is_project(module: str) -> bool:
    return module.split(".")[0] in PROJECT


def test_cohorts_never_imports_safety():
    found = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in _modules(("cohorts",), migrations=True)
        for module, _, line in _imports(path)
        if module == "safety" or module.startswith("safety.")
    ]
    assert found == []


def test_no_module_imports_a_private_name_of_another_module():
    found = []
    for path in _modules(PROJECT):
        for module, names, line in _imports(path):
            if not _is_project(module):
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                found.append(f"{path.relative_to(ROOT)}:{line}: from {module} import {', '.join(private)}")
    assert found == []


def test_no_module_reaches_a_private_name_through_another_module():
    """``services._rate`` where ``services`` is an imported project module."""
    found = []
    for path in _modules(PROJECT):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = set()
        for module, names, _ in _imports(path):
            if not _is_project(module):
                continue
            for name in names:
                if importlib.util.find_spec(f"{module}.{name}") if _is_package(module) else None:
                    modules.add(name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules.update((a.asname or a.name).split(".")[0] for a in node.names if _is_project(a.name))
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
    assert found == []


def _is_package(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    return spec is not None and spec.submodule_search_locations is not None


def test_production_code_has_no_function_local_import():
    allowed = {("safety/apps.py", "ready"), ("core/apps.py", "ready")}
    found = []
    for path in _modules(APPS):
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (where, node.name) not in allowed:
                found += [
                    f"{where}:{inner.lineno}: in {node.name}()"
                    for inner in ast.walk(node)
                    if isinstance(inner, ast.Import | ast.ImportFrom)
                ]
    assert found == []


def _assigns_state(node) -> bool:
    """``x.state = …`` / ``x.state, y = …`` on a cohort, or ``Cohort(…, state=…)`` / ``.update(state=…)``."""
    if isinstance(node, ast.Assign):
        targets = [t for target in node.targets for t in (target.elts if isinstance(target, ast.Tuple) else [target])]
        return any(
            isinstance(t, ast.Attribute)
            and t.attr in ("state", "state_before_pause")
            and "cohort" in ast.unparse(t.value).lower()
            for t in targets
        )
    if isinstance(node, ast.Call):
        name = ast.unparse(node.func)
        creates = name in ("Cohort", "Cohort.objects.create") or (name.endswith(".update") and "cohort" in name.lower())
        return creates and any(kw.arg in ("state", "state_before_pause") for kw in node.keywords)
    return False


def test_only_the_lifecycle_module_assigns_a_cohort_state():
    lifecycle = ROOT / "cohorts" / "services" / "lifecycle.py"
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)[:80]}"
        for path in _modules(APPS)
        if path != lifecycle
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if _assigns_state(node)
    ]
    assert found == []
    lifecycle_nodes = list(ast.walk(ast.parse(lifecycle.read_text(encoding="utf-8"))))
    assert any(_assigns_state(node) for node in lifecycle_nodes), "the check finds nothing: it is broken"


def _assigns_participant_status(node) -> bool:
    """``participant.status = …`` (any name with "participant"), or ``Participant(…, status=…)`` /
    ``Participant.objects….update(status=…)``."""
    if isinstance(node, ast.Assign):
        targets = [t for target in node.targets for t in (target.elts if isinstance(target, ast.Tuple) else [target])]
        return any(
            isinstance(t, ast.Attribute) and t.attr == "status" and "participant" in ast.unparse(t.value).lower()
            for t in targets
        )
    if isinstance(node, ast.Call):
        name = ast.unparse(node.func)
        creates = name in ("Participant", "Participant.objects.create") or (
            name.endswith(".update") and "participant" in name.lower()
        )
        return creates and any(kw.arg == "status" for kw in node.keywords)
    return False


def test_only_the_participant_lifecycle_module_assigns_a_participant_status():
    lifecycle = ROOT / "cohorts" / "services" / "participant_lifecycle.py"
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)[:80]}"
        for path in _modules(APPS)
        if path != lifecycle
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if _assigns_participant_status(node)
    ]
    assert found == []
    lifecycle_nodes = list(ast.walk(ast.parse(lifecycle.read_text(encoding="utf-8"))))
    assert any(_assigns_participant_status(node) for node in lifecycle_nodes), "the check finds nothing: it is broken"


def test_no_production_module_is_over_about_450_lines():
    long = {
        str(path.relative_to(ROOT)): n
        for path in _modules(APPS)
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        and str(path.relative_to(ROOT)) not in LONG_TABLES
    }
    assert long == {}


def test_the_safety_app_provides_the_cohorts_port_at_start_up():
    assert isinstance(ports.safety_reader(), SafetyReaderForCohorts)


def test_without_the_safety_app_the_cohorts_port_fails_loudly():
    provided = ports.safety_reader()
    ports.provide_safety_reader(None)
    try:
        with pytest.raises(ImproperlyConfigured):
            ports.safety_reader()
    finally:
        ports.provide_safety_reader(provided)
