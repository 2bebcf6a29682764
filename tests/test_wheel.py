"""The wheel, installed the way a user installs it: its author is shown the bundled exemplars, and an
installation that lost them says so in one line instead of drafting blind.

The wheel is installed into a fresh virtualenv that borrows this one's dependencies through a `.pth`
line (nothing is downloaded). A path in a `.pth` file is put on sys.path without its own `.pth` files
being run, so this virtualenv's editable finder stays off and `resyn` is the wheel's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CHECKOUT_EXEMPLARS = ROOT / "agents" / "exemplar_environments"
# What a checkout holds besides the package: the build must not see it, nor write into the checkout.
NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "resyn-data")

DRAFT_PROBE = """
import json, sys
import resyn.agents
from resyn.agents.author import draft_messages
from resyn.agents.exemplars import choose_exemplars, load_exemplars

exemplars = load_exemplars()
chosen = choose_exemplars(sys.argv[1], exemplars, 2)
print(json.dumps({
    "package": resyn.agents.__file__,
    "count": len(exemplars),
    "prompt": draft_messages(sys.argv[1], chosen)[-1].content,
    "sources": [exemplar.source.strip() for exemplar in chosen],
}))
"""


@dataclass(frozen=True)
class Installed:
    """A fresh virtualenv with the wheel installed, and a working directory outside the checkout."""

    venv: Path
    workdir: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        return Path(sysconfig.get_path("purelib", vars={"base": self.venv}))

    @property
    def exemplars(self) -> Path:
        return self.site_packages / "resyn" / "agents" / "exemplar_environments"

    def run(self, *command: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        return subprocess.run(
            [str(part) for part in command],
            cwd=self.workdir,
            env={**environment, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )


def _check(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    installed = Installed(venv=work / "venv", workdir=work)
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "-q")
    # Without build isolation the backend is this virtualenv's setuptools: no download.
    _check(installed.run(*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", work / "dist", source))
    [wheel] = (work / "dist").glob("resyn-*.whl")
    _check(installed.run(sys.executable, "-m", "venv", "--without-pip", installed.venv))
    # A .pth line goes on sys.path after the venv's own site-packages: the wheel's resyn comes first.
    borrowed = sysconfig.get_path("purelib")
    (installed.site_packages / "borrowed_dependencies.pth").write_text(borrowed + "\n")
    # This pip installs into the fresh virtualenv (`--python`): it needs no pip of its own.
    _check(installed.run(*pip, "--python", installed.python, "install", "--no-deps", "--no-compile", wheel))
    return installed


@pytest.fixture
def exemplars_lost(installed: Installed) -> Iterator[None]:
    """The installed package without its exemplar environments, as a wheel built without them was."""
    hidden = installed.workdir / "hidden-exemplars"
    installed.exemplars.rename(hidden)
    try:
        yield
    finally:
        hidden.rename(installed.exemplars)


def test_the_installed_authors_draft_prompt_carries_the_bundled_exemplars(installed: Installed) -> None:
    done = installed.run(installed.python, "-I", "-c", DRAFT_PROBE, "graph coloring")
    _check(done)
    probe = json.loads(done.stdout)
    assert Path(probe["package"]).is_relative_to(installed.venv), f"not the wheel's: {probe['package']}"
    assert probe["count"] == len(list(CHECKOUT_EXEMPLARS.glob("*.py"))) == 12
    assert "Here are 2 complete, valid environments" in probe["prompt"]
    assert "Example 1:" in probe["prompt"] and "Example 2:" in probe["prompt"]
    assert all(source in probe["prompt"] for source in probe["sources"])


@pytest.mark.usefixtures("exemplars_lost")
def test_an_installation_without_exemplars_says_how_to_fix_it_in_one_line(installed: Installed) -> None:
    done = installed.run(
        installed.venv / "bin" / "resyn",
        "synthesize",
        "graph coloring",
        "--no-probe",
        RESYN_LLM_BASE_URL="http://127.0.0.1:9/v1",  # never asked: the exemplars are missed first
        RESYN_LLM_MODEL="unused",
        RESYN_DATA_DIR=str(installed.workdir / "workspace"),
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    [line] = lines
    assert line.startswith("error: this resyn installation is missing its exemplar environments")
    assert "reinstall resyn" in line
