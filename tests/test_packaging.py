"""An installed Tillit, as an IT operator gets it: a wheel built from the tracked files,
`pip install`ed (not editable) into a fresh virtualenv, serving from another folder,
with the operator's own settings and files in a config folder of their own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from support import ROOT, free_port


def wait_for_health(base: str, proc: subprocess.Popen[bytes], within_s: float = 60) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"tillit exited with {proc.returncode}: {proc.stdout.read().decode()}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    pytest.fail(f"tillit not healthy within {within_s} s")


def _tracked_copy(dest: Path) -> Path:
    """The files `git ls-files` names, as a fresh clone of this tree holds them."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, names):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("packaging")
    source = _tracked_copy(work / "clone")
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
    pip = [str(work / "venv" / "bin" / "python"), "-m", "pip", "-q",
           "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(work / "dist"), str(source)],
                   check=True, cwd=work)
    wheel = next((work / "dist").glob("tillit-*.whl"))
    subprocess.run([*pip, "install", str(wheel)], check=True, cwd=work)
    return {"work": work, "wheel": wheel, "bin": work / "venv" / "bin"}


def test_the_wheel_carries_the_defaults_and_the_browser_code(installed: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for needed in ("tillit/config/default.toml", "tillit/config/resources.toml",
                   "tillit/config/locales/sv/LC_MESSAGES/visitor.po",
                   "tillit/config/locales/ar/LC_MESSAGES/visitor.po",
                   "tillit/static/e2e.js", "tillit/static/vendor/socket.io.min.js",
                   "tillit/chat_server/templates/visitor.html",
                   "tillit/counselor_console/templates/login.html",
                   "tillit/chat_server/stores/redis_store.py",
                   "tillit/chat_server/transport/engineio_socket.py"):
        assert needed in names, f"the wheel lacks {needed}"
    assert not any(n.startswith(("tests/", "chat_server/", "safety/")) for n in names)


def test_installed_tillit_serves_from_another_folder_with_the_operators_files(
        installed: dict[str, Path], tmp_path: Path) -> None:
    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    operator = tmp_path / "etc-tillit"
    operator.mkdir()
    (operator / "tillit.toml").write_text('[site]\ntitle = "Väder idag"\n', encoding="utf-8")
    shipped = (ROOT / "tillit" / "config" / "resources.toml").read_text(encoding="utf-8")
    (operator / "resources.toml").write_text(
        shipped + '\n[[resources]]\nid = "invented_line"\ntopics = []\n'
        'label = "Invented helpline"\nphone = "0700000001"\ndisplay_phone = "070-000 00 01"\n'
        'audience = "all"\n', encoding="utf-8")

    python = installed["bin"] / "python"
    where = subprocess.run([str(python), "-c", "import tillit; print(tillit.__file__)"],
                           cwd=elsewhere, check=True, capture_output=True, text=True).stdout
    assert str(installed["work"] / "venv") in where, where  # the installed copy, not ours

    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TILLIT_") and k != "PYTHONPATH"}
    env["TILLIT_SERVER_DEVELOPMENT"] = "true"
    proc = subprocess.Popen(
        [str(installed["bin"] / "tillit"), "serve", "--port", str(port),
         "--data-dir", str(tmp_path / "data"), "--config-dir", str(operator)],
        cwd=elsewhere, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_health(base, proc)
        page = urllib.request.urlopen(f"{base}/?lang=sv").read().decode()
        assert "<title>Väder idag</title>" in page  # the operator's tillit.toml
        assert 'href="tel:0700000001"' in page  # the operator's resources.toml
        assert "Prata med oss" in page  # the shipped Swedish catalogue
        js = urllib.request.urlopen(f"{base}/static/e2e.js").read().decode()
        assert "AES-GCM" in js
        assert not (elsewhere / "var").exists()  # nothing lands in the working directory
    finally:
        proc.terminate()
        proc.wait(timeout=30)
