"""`resyn import reasoning-gym TASK`: a reasoning-gym task written out as a contract file whose
generate follows the task's curriculum and whose verify is the task's own score_answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("reasoning_gym", reason="the reasoning-gym extra is not installed")

from resyn.tools.reasoning_gym_import import TaskNotWrappable, render_environment

ALLOW_REASONING_GYM = {"RESYN_VALIDATOR_ALLOWED_IMPORTS": '["reasoning_gym"]'}


def resyn(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "resyn", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=cwd, env={**os.environ, **env}
    )


def environment(task: str) -> dict[str, Any]:
    """The rendered file's names, exec'd in this process (the unit tests call them directly)."""
    namespace: dict[str, Any] = {}
    exec(compile(render_environment(task), f"{task}.py", "exec"), namespace)
    return namespace


def round_trip(instance: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(instance))


@pytest.fixture(scope="module")
def arithmetic() -> dict[str, Any]:
    return environment("basic_arithmetic")


def test_the_command_writes_a_contract_file_that_names_the_task(tmp_path: Path) -> None:
    out = tmp_path / "envs" / "arithmetic.py"
    done = resyn("import", "reasoning-gym", "basic_arithmetic", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stdout
    assert "RESYN_VALIDATOR_ALLOWED_IMPORTS" in done.stdout
    namespace: dict[str, Any] = {}
    exec(out.read_text(encoding="utf-8"), namespace)
    assert namespace["NAME"] == "reasoning-gym-basic-arithmetic"
    assert namespace["TOPIC"] == "basic arithmetic"
    assert "basic_arithmetic" in namespace["DESCRIPTION"]


def test_the_default_file_is_named_after_the_task(tmp_path: Path) -> None:
    done = resyn("import", "reasoning-gym", "chain_sum", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "chain_sum.py").read_text(encoding="utf-8") == render_environment("chain_sum")


def test_generate_is_deterministic_and_the_seed_matters(arithmetic: dict[str, Any]) -> None:
    generate = arithmetic["generate"]
    assert all(generate(seed, 3) == generate(seed, 3) for seed in range(5))
    assert len({generate(seed, 3)["question"] for seed in range(20)}) > 10


def test_difficulties_climb_the_curriculum_and_are_clamped(arithmetic: dict[str, Any]) -> None:
    generate = arithmetic["generate"]
    sizes = {level: generate(7, level)["meta"] for level in (1, 3, 5)}
    # reasoning-gym's levels: num_terms 2, 3, 4, 5, 6; num_digits 1, 2, 3, 4 (the last one stays)
    assert [sizes[level]["max_terms"] for level in (1, 3, 5)] == [2, 4, 6]
    assert [sizes[level]["max_digits"] for level in (1, 3, 5)] == [1, 3, 4]
    assert generate(7, 0) == generate(7, 1)
    assert generate(7, 9) == generate(7, 5)


def test_an_instance_is_json_safe(arithmetic: dict[str, Any]) -> None:
    instance = arithmetic["generate"](11, 4)
    assert round_trip(instance) == instance
    assert isinstance(instance["witness"], str)


def test_verify_scores_the_witness_one_and_junk_zero(arithmetic: dict[str, Any]) -> None:
    verify = arithmetic["verify"]
    for seed in range(5):
        instance = round_trip(arithmetic["generate"](seed, 2))
        assert verify(instance, instance["witness"]) == 1.0
        assert verify(instance, "qzxv#9!kplm") == 0.0
        assert verify(instance, "") == 0.0


def test_verify_never_raises_on_a_malformed_instance_or_answer(arithmetic: dict[str, Any]) -> None:
    verify = arithmetic["verify"]
    instance = arithmetic["generate"](3, 1)
    assert verify({}, "4") == 0.0
    assert verify({"question": "?", "meta": {"entry": None}}, "4") == 0.0
    assert verify(instance, None) == 0.0
    assert verify(instance, "9" * 10_000) == 0.0


def test_a_task_without_an_answer_takes_the_one_its_metadata_carries() -> None:
    graph_color = environment("graph_color")  # its entries' answer is None; metadata has possible_answer
    instance = round_trip(graph_color["generate"](5, 2))
    assert json.loads(instance["witness"])  # a coloring, JSON-encoded as score_answer reads it
    assert graph_color["verify"](instance, instance["witness"]) == 1.0
    assert graph_color["verify"](instance, "{}") < 1.0


def test_an_unknown_task_is_a_one_line_error_naming_close_tasks(tmp_path: Path) -> None:
    done = resyn("import", "reasoning-gym", "basic_arithmatic", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: unknown reasoning-gym task 'basic_arithmatic'; close names: basic_arithmetic, "
        "bitwise_arithmetic, decimal_arithmetic, complex_arithmetic, calendar_arithmetic"
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_task_without_a_curriculum_is_refused() -> None:
    with pytest.raises(TaskNotWrappable, match="no curriculum"):
        render_environment("acre")


def test_an_existing_file_is_kept_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "mine.py"
    out.write_text("# my own environment\n", encoding="utf-8")
    done = resyn("import", "reasoning-gym", "maze", "--out", str(out))
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {out} exists: pass --force to overwrite it"
    assert out.read_text(encoding="utf-8") == "# my own environment\n"
    assert resyn("import", "reasoning-gym", "maze", "--out", str(out), "--force").returncode == 0
    assert out.read_text(encoding="utf-8") == render_environment("maze")


def test_without_reasoning_gym_the_command_says_how_to_install_it(tmp_path: Path) -> None:
    hide_package = (
        "import sys; sys.modules['reasoning_gym'] = None; "
        "sys.argv = ['resyn', 'import', 'reasoning-gym', 'maze']; "
        "from resyn.cli import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", hide_package], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: reasoning-gym is not installed: pip install 'resyn[reasoning-gym]'"
    )


@pytest.mark.slow
def test_an_imported_task_passes_resyn_validate_with_the_allow_list(tmp_path: Path) -> None:
    """Depends on allowed imports being preloaded at kernel start (issue 14): `import reasoning_gym`
    pulls in matplotlib, whose config-directory creation the armed guard would refuse."""
    out = tmp_path / "basic_arithmetic.py"
    assert resyn("import", "reasoning-gym", "basic_arithmetic", "--out", str(out)).returncode == 0
    done = resyn("validate", str(out), "--json", **ALLOW_REASONING_GYM)
    [row] = json.loads(done.stdout)
    failed = {check["name"]: check["detail"] for check in row["checks"] if not check["passed"]}
    assert failed == {}
    assert row["valid"] and done.returncode == 0


def test_the_benchmark_allows_reasoning_gym_in_the_kernels_too() -> None:
    from resyn.evals.bench_reasoning_gym import allowing_reasoning_gym

    settings = allowing_reasoning_gym()
    assert "reasoning_gym" in settings.validator.allowed_imports
    assert "reasoning_gym" in settings.kernel.preload  # imported before the guard is armed
