"""The import contracts (.importlinter): kept by the repository, broken by a back-import.

`lint-imports` runs on the repository, and on a throw-away copy of its app packages with
one deliberate back-import per contract, each of which it must report. The config's root
packages must cover every app in INSTALLED_APPS, or the contracts would not see a new app.
"""

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps

from registry.hooks import HOOKS
from tests.conftest import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _config() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(REPO / ".importlinter")
    return config


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


ROOT_PACKAGES = _lines(_config()["importlinter"]["root_packages"])


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "500"},  # one contract per line
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def app_copy(tmp_path: Path) -> Path:
    """The .importlinter config and the Python files of every root package, in tmp_path."""
    shutil.copy(REPO / ".importlinter", tmp_path / ".importlinter")
    for package in ROOT_PACKAGES:
        for source in (REPO / package).rglob("*.py"):
            target = tmp_path / source.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    return tmp_path


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_repository_keeps_every_contract():
    # when
    result = _lint_imports(REPO)

    # then
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


# (module, deliberate back-import, what lint-imports must report)
BACK_IMPORTS = [
    ("ledger/selectors.py", "import federation.models", "ledger.selectors -> federation.models"),
    ("registry/append_only.py", "from ledger import triggers", "registry.append_only -> ledger"),
    (
        "certificates/crossregistry/exports.py",
        "from federation.models import Peer",
        "certificates.crossregistry.exports -> federation.models",
    ),
    ("ledger/verify/note.py", "import django", "ledger.verify.note -> django"),
    ("federation/anchoring.py", "from federation import tasks", "anchoring -> federation.tasks"),
    ("ledger/merkle.py", "from ledger import services", "No cycles are allowed in ledger."),
    ("assets/selectors.py", "from web import views", "assets.selectors -> web.views"),
]


def test_deliberate_back_imports_break_every_contract(app_copy):
    # given: the web app on top (a root package, as the recipe says), and one back-import
    # per contract in the copy
    assert (app_copy / "web" / "views.py").exists() or (app_copy / "web" / "views").is_dir()
    assert "    web\n" in (app_copy / ".importlinter").read_text()
    for module, back_import, _reported in BACK_IMPORTS:
        _append(app_copy / module, back_import)

    # when
    result = _lint_imports(app_copy)

    # then
    assert result.returncode == 1, result.stdout[-4000:]
    contracts = [line for line in result.stdout.splitlines() if line.endswith(("KEPT", "BROKEN"))]
    contracts += [
        line for line in result.stdout.splitlines() if " BROKEN (" in line or " KEPT (" in line
    ]
    assert len(contracts) == len(_config().sections()) - 1
    assert all(" BROKEN" in line for line in contracts), contracts
    for _module, _back_import, reported in BACK_IMPORTS:
        assert reported in result.stdout, reported


def test_every_installed_project_app_is_a_root_package_of_the_contracts():
    # given
    project_apps = {
        config.name.split(".")[0]
        for config in apps.get_app_configs()
        if Path(config.path).resolve().parent == REPO
    }
    layers = " ".join(_lines(_config()["importlinter:contract:layers"]["layers"]))

    # then: an app left out of root_packages would be invisible to every contract
    assert project_apps == set(ROOT_PACKAGES)
    for app in project_apps:
        assert app in layers.replace("(", " ").replace(")", " ").split()


# Hooks defined for an app that has not landed yet: the app that will fill them. Its
# engineer registers into the hook and removes the line (the test fails while both hold).
HOOKS_AWAITING_APPS: dict[str, str] = {}


def test_every_hook_is_registered_and_documented():
    # given
    architecture = (REPO / "docs" / "architecture.md").read_text()

    # then: every hook an app defines is filled by ready() and listed in the map
    assert HOOKS
    for name, hook in HOOKS.items():
        if name in HOOKS_AWAITING_APPS:
            assert len(hook) == 0, f"{name} is registered now: remove it from HOOKS_AWAITING_APPS"
        else:
            assert len(hook) >= 1, f"nothing registered into {name}"
        assert f"`{name}`" in architecture, f"{name} is not in docs/architecture.md"
