"""The `resyn` command line, run as a user runs it: a subprocess, exit codes, stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
VALID = FIXTURES / "valid_minimal.py"
DEFECTIVE = FIXTURES / "defective" / "no_leak.py"


def resyn(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "resyn", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def test_validate_json_is_one_array_with_an_object_per_file() -> None:
    done = resyn("validate", str(VALID), str(DEFECTIVE), "--json", "--seeds", "4")
    assert done.returncode == 1
    rows = json.loads(done.stdout)
    assert [row["path"] for row in rows] == [str(VALID), str(DEFECTIVE)]
    assert [row["valid"] for row in rows] == [True, False]
    assert set(rows[0]) == {"path", "name", "valid", "checks", "seconds"}
    assert all(set(check) == {"name", "passed", "skipped", "detail"} for check in rows[1]["checks"])
    failed = [check for check in rows[1]["checks"] if not check["passed"]]
    assert [check["name"] for check in failed] == ["no_leak", "no_shortcut"]  # the hint states the sum
    assert "seed=" in failed[0]["detail"]


def test_validate_exits_zero_when_every_file_is_valid() -> None:
    done = resyn("validate", str(VALID))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1/1 valid" in done.stdout


def test_a_missing_file_is_a_one_line_usage_error() -> None:
    done = resyn("validate", str(VALID), "no/such/file.py")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: no such file: no/such/file.py"
    assert done.stdout == ""


def test_bad_options_exit_two() -> None:
    assert resyn("validate", str(VALID), "--seeds", "0").returncode == 2
    assert resyn("sample", str(VALID), "--difficulty", "9").returncode == 2


def test_sample_prints_instances_from_the_sandbox() -> None:
    done = resyn("sample", str(VALID), "--difficulty", "2", "--count", "3", "--seed", "5", "--json")
    assert done.returncode == 0, done.stderr
    instances = json.loads(done.stdout)
    assert [(item["seed"], item["difficulty"]) for item in instances] == [(5, 2), (6, 2), (7, 2)]
    assert all(item["question"] and item["witness"] for item in instances)


def test_sample_of_a_broken_environment_says_why_in_one_line() -> None:
    done = resyn("sample", str(FIXTURES / "defective" / "loads.py"))
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1
    assert "NAME" in done.stderr


def test_help_is_fast_and_imports_no_heavy_library() -> None:
    probe = (
        "import sys, runpy; sys.argv = ['resyn', '--help']\n"
        "try: runpy.run_module('resyn', run_name='__main__')\n"
        "except SystemExit: pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'faiss', 'sentence_transformers', 'jupyter_client') "
        "if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in done.stdout
