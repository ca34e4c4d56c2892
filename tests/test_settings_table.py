"""One table of settings: default.toml, the docs and the TILLIT_* variables agree with it.

tillit/chat_server/settings_table.py declares every setting (name, type, unit, help);
default.toml holds the defaults. An operator's typo or a wrong type stops the start with
a message naming the setting, never a default silently left in force.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tillit.chat_server.settings import load_settings, shipped_defaults
from tillit.chat_server.settings_table import (
    BY_NAME,
    SETTINGS,
    SettingsError,
    check_value,
    markdown_table,
)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "operations.md"


def test_default_toml_and_the_table_name_the_same_settings_with_the_declared_types() -> None:
    shipped = shipped_defaults()
    in_file = {f"{section}.{key}" for section, values in shipped.items() for key in values}
    assert in_file - set(BY_NAME) == set(), "in default.toml but not in the table"
    assert set(BY_NAME) - in_file == set(), "in the table but without a default"
    for row in SETTINGS:
        section, key = row.name.split(".")
        check_value(row, shipped[section][key], "default.toml")  # raises if mistyped
        assert row.help.strip(), f"{row.name} has no help text"


def test_the_docs_settings_table_is_the_one_tillit_settings_prints() -> None:
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(r"<!-- settings table:[^\n]*-->\n(.*?)<!-- end of settings table -->",
                      text, re.S)
    assert found, "docs/operations.md has lost its settings table markers"
    expected = markdown_table(shipped_defaults())
    assert found.group(1) == expected, (
        "docs/operations.md's settings table differs from the code's: paste the output of "
        "`tillit settings` between the markers")
    printed = subprocess.run([sys.executable, "-m", "tillit", "settings"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    assert printed == expected


def test_variables_are_read_by_the_settings_type() -> None:
    settings = load_settings(environ={
        "TILLIT_SERVER_PORT": "9001",
        "TILLIT_SERVER_DEVELOPMENT": "yes",
        "TILLIT_CHAT_SWEEP_INTERVAL_S": "0.5",
        "TILLIT_SITE_LANGUAGES": "sv, en",
        "TILLIT_HOURS_MON": "",
        "TILLIT_STORE": "redis",
    })
    assert settings.server.port == 9001
    assert settings.server.development is True
    assert settings.chat.sweep_interval_s == 0.5
    assert settings.site.languages == ["sv", "en"]
    assert settings.hours.mon == []  # an empty list: closed on Mondays
    assert settings.server.store == "redis"
    # A whole-number duration in default.toml is still a float to the code.
    assert isinstance(settings.chat.resume_window_s, float)


@pytest.mark.parametrize(("name", "value", "said"), [
    ("TILLIT_SERVER_PORT", "80 80", "TILLIT_SERVER_PORT='80 80': server.port must be an integer"),
    ("TILLIT_SERVER_DEVELOPMENT", "maybe", "server.development must be true or false"),
    ("TILLIT_QUEUE_PUSH_INTERVAL_S", "soon", "queue.push_interval_s must be a number"),
    ("TILLIT_CHAT_RESUME_WINDOW", "60", "TILLIT_CHAT_RESUME_WINDOW names no setting"),
])
def test_a_wrong_variable_is_refused_by_name(name: str, value: str, said: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(environ={name: value})
    assert said in str(refused.value)


def test_other_tillit_variables_are_not_settings() -> None:
    # The test suite's and the nginx template's variables share the prefix only.
    settings = load_settings(environ={"TILLIT_TEST_STORE": "redis", "TILLIT_CHROMIUM": "x",
                                      "TILLIT_SERVER_NAME": "chatt.example.se"})
    assert settings.server.store == "sqlite"


def test_an_operator_file_with_an_unknown_or_mistyped_setting_is_refused(tmp_path: Path) -> None:
    typo = tmp_path / "typo.toml"
    typo.write_text("[queue]\nmax_lenght = 50\n")
    with pytest.raises(SettingsError, match=r"queue\.max_lenght is not a setting"):
        load_settings(typo, environ={})
    section = tmp_path / "section.toml"
    section.write_text("[limit]\nmax_connections = 50\n")
    with pytest.raises(SettingsError, match=r"\[limit\] is not a settings section"):
        load_settings(section, environ={})
    mistyped = tmp_path / "mistyped.toml"
    mistyped.write_text('[server]\nport = "8080"\n')
    with pytest.raises(SettingsError, match=r"server\.port \(.*mistyped\.toml\) must be an "
                                            r"integer"):
        load_settings(mistyped, environ={})
    good = tmp_path / "good.toml"
    good.write_text("[queue]\nmax_length = 50\n")
    assert load_settings(good, environ={}).queue.max_length == 50


def test_tillit_serve_stops_at_a_misspelt_variable_and_names_it(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "TILLIT_SERVER_DEVELOPMENT": "true",
           "TILLIT_LIMITS_MAX_CONECTIONS": "10"}
    res = subprocess.run(
        [sys.executable, "-m", "tillit", "serve", "--port", "1", "--data-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "TILLIT_LIMITS_MAX_CONECTIONS names no setting" in res.stderr


def test_no_setting_is_read_with_a_default_at_the_call_site() -> None:
    names = "|".join(re.escape(name) for name in BY_NAME)
    pattern = re.compile(rf"""\.get\(\s*["']({names})["']""")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in (ROOT / "tillit").rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == [], "read settings as typed attributes: settings.section.key"
