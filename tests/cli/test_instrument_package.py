"""A driver written only from docs/drivers.md, installed as a package with entry points, is found
by ``ffzero-lab instruments check`` (and its emulator by ``instruments emulate``) without PYTHONPATH.

The package's files are the code blocks of docs/drivers.md marked ``title="acme-lab/<path>"``. It is
installed with ``uv pip install`` into a temporary venv that also sees this project's
environment (a ``.pth`` file), so the project's own venv is left untouched.
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r'^```\w+ title="acme-lab/([^"]+)"\n(.*?)^```$', re.S | re.M)

pytestmark = pytest.mark.skipif(shutil.which("uv") is None, reason="needs uv to install the package")


def doc_files() -> dict[str, str]:
    """Path -> text of every titled code block of docs/drivers.md."""
    return dict(BLOCK.findall((ROOT / "docs" / "drivers.md").read_text(encoding="utf-8")))


def test_the_docs_hold_a_complete_package() -> None:
    assert set(doc_files()) == {"pyproject.toml", "acme_lab/__init__.py", "acme_lab/h4.py",
                                "acme_lab/h4_emulator.py", "tests/test_h4.py"}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the docs' package installed (entry points and all) over this project's environment."""
    tmp = tmp_path_factory.mktemp("acme")
    package = tmp / "acme-lab"
    for path, text in doc_files().items():
        (package / path).parent.mkdir(parents=True, exist_ok=True)
        (package / path).write_text(text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run(["uv", "venv", "--quiet", "--python", sys.executable, str(tmp / "venv")], check=True, env=env)
    python = tmp / "venv" / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    # the project's site-packages (ffzero-lab, its dependencies) as a site dir of the new venv
    project_site = next(p for p in site.getsitepackages() if Path(p).name == "site-packages")
    Path(purelib, "ffzero_lab_project.pth").write_text(f"import site; site.addsitedir({project_site!r})\n")
    # --no-deps: ffzero-lab is there already; build the package offline from uv's cache if it can
    install = ["uv", "pip", "install", "--quiet", "--python", str(python), "--no-deps", str(package)]
    if subprocess.run([*install, "--offline"], env=env, capture_output=True).returncode != 0:
        subprocess.run(install, check=True, env=env)
    return tmp


def run(venv: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(venv / "venv" / "bin" / "python"), *args], capture_output=True, text=True,
                          env=env, cwd=venv, timeout=300, **kwargs)  # type: ignore[call-overload]


def test_the_docs_transcript_test_passes(venv: Path) -> None:
    proc = run(venv, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(venv / "acme-lab" / "tests"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout


def test_instruments_check_finds_the_installed_driver_and_emulator(venv: Path) -> None:
    assert "acme_lab" not in sys.modules and not (ROOT / "acme_lab").exists()  # only the venv has it
    instruments = venv / "instruments.yaml"
    rig_file = venv / "rig.yaml"
    limits = "{voltage_max_V: 5.0, current_max_mA: 20.0, resistance_ohm: 500.0}"

    def write_instruments(resource: str) -> None:
        instruments.write_text(f"power_budget_W: 1.0\nvisa_library: '@py'\ninstruments:\n  heaters:\n"
                               f"    resource: {resource}\n    driver: acme-h4\n"
                               f"    channels: {{count: 4, default: {limits}}}\n")

    write_instruments("TCPIP0::127.0.0.1::1::SOCKET")
    rig_file.write_text("emulator: drivers.emulated.rig:EmulatedRig\ninstruments_file: instruments.yaml\n")
    server = subprocess.Popen([str(venv / "venv" / "bin" / "python"), "-m", "ffzero_lab", "instruments", "emulate",
                               str(rig_file), "--any-port"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=venv, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    try:
        assert server.stdout is not None
        lines = []
        for line in server.stdout:
            lines.append(line.strip())
            if line.strip() == "ready":
                break
        assert lines[-1:] == ["ready"], (lines, server.stderr.read() if server.poll() is not None else "")
        name, resource = lines[0].split()
        assert name == "heaters"
        write_instruments(resource)
        proc = run(venv, "-m", "ffzero_lab", "instruments", "check", "--instruments", str(instruments))
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ACME,H4,SN0042,1.0" in proc.stdout
    assert "4 of 4" in proc.stdout


def test_an_unknown_driver_names_the_installed_ones(tmp_path: Path) -> None:
    from ffzero_lab.core.errors import ConfigError
    from ffzero_lab.rig import parse_rig

    document = {"power_budget_W": 1.0, "instruments": {"m": {"resource": "X", "driver": "no-such-driver"}}}
    with pytest.raises(ConfigError, match=r"instruments\.m\.driver: unknown instrument driver 'no-such-driver' "
                                          r"\(installed: keithley2600, keysight-n774x, ni-analog-input, "
                                          r"ni-analog-output, qontrol, thorlabs-pm100"):
        parse_rig(document, "i.yaml")
