"""deploy/systemd/tillit.service runs an existing `tillit serve` with the flags
docs/operations.md documents, and systemd accepts the unit (`systemd-analyze verify`,
where it is installed)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tillit.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "systemd" / "tillit.service"
OPERATIONS = ROOT / "docs" / "operations.md"


def _lines(key: str) -> list[str]:
    prefix = f"{key}="
    return [line[len(prefix):] for line in UNIT.read_text().splitlines()
            if line.startswith(prefix)]


def test_execstart_runs_tillit_serve_with_documented_flags() -> None:
    [exec_start] = _lines("ExecStart")
    argv = shlex.split(exec_start)
    assert Path(argv[0]).name == "tillit"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "serve" and args.host == "127.0.0.1"
    assert args.data_dir and args.config_dir and args.port
    [check] = _lines("ExecStartPre")
    assert build_parser().parse_args(shlex.split(check)[1:]).db_command == "check"
    docs = OPERATIONS.read_text(encoding="utf-8")
    assert "deploy/systemd/tillit.service" in docs
    for flag in ("--host", "--port", "--config-dir", "--data-dir"):
        assert flag in argv and flag in docs
    assert _lines("EnvironmentFile") == ["/etc/tillit/tillit.env"]
    assert "NoNewPrivileges=yes" in UNIT.read_text()


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    # The unit names the installed path; here the virtualenv's tillit stands in for it.
    here = Path(sys.executable).parent / "tillit"
    unit = tmp_path / "tillit.service"
    unit.write_text(UNIT.read_text().replace("/opt/tillit/.venv/bin/tillit", str(here)))
    res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                         text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
