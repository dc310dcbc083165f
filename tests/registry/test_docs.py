"""The README keeps its first lines and documents every setting and process command."""

import re

from tests.conftest import REPO
from tests.registry.support import settings_env_vars

README = (REPO / "README.md").read_text()
OPERATIONS = (REPO / "docs" / "operations.md").read_text()

TOP = (
    "# GridProof\n"
    "\n"
    "```sh\n"
    "make run    # serve the registry with demo data on http://127.0.0.1:8000 "
    "(SQLite, no services needed)\n"
    "make test   # install everything into .venv and run the whole test suite\n"
    "```\n"
)


def _section(text: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"no section {title!r}"
    return match.group(1)


def test_the_readme_starts_with_the_two_commands():
    assert README.startswith(TOP)


def test_every_variable_the_settings_read_is_in_the_configuration_table():
    table = _section(README, "Configuration")
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", table, re.MULTILINE))
    read = settings_env_vars()

    assert sorted(read - documented) == [], "add these to README.md, Configuration"
    assert sorted(documented - read) == [], "registry/settings.py does not read these"


def test_the_readme_shows_the_documented_process_commands():
    production = _section(README, "Production")
    commands = re.findall(r"^(?:release|web|worker|beat): +(.+)$", OPERATIONS, re.MULTILINE)
    assert len(commands) == 4
    for command in commands:
        assert command in production


def test_the_readme_has_its_sections():
    assert "docs/architecture.md" in _section(README, "Code layout")
    for title in ("Roles", "Getting started as a new user", "API", "Configuration"):
        _section(README, title)
    for title in ("Production", "Development", "Code layout"):
        _section(README, title)
