"""The CLI's tables at 80 columns (and piped, not on a terminal): ids, paths and names stay whole,
no line is wider than the screen, and `library list` can be narrowed. Run as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from example_library import AUTHOR, SOLVER, build_example_library, report
from typer.testing import CliRunner

from resyn.cli import app
from resyn.memory.library import Library
from resyn.memory.records import EnvironmentRecord

FIXTURES = Path(__file__).parent / "fixtures"
EXEMPLARS = Path(__file__).parents[1] / "agents" / "exemplar_environments"
JOB = "job-20260114-093012-queue-invariants"

# Two syntheses of one job, with the long topics, names and reasons real jobs produce.
JOB_ENVIRONMENTS = [
    (
        "a1b2c3d4e5f6",
        "invariants with queue simulations under bounded buffers and priority inversion",
        "bounded-queue-invariants-with-priority-inversion",
        "accepted",
        "valid, and the solver solved 62% of the probes (d1=0.95 d2=0.80 d3=0.55 d4=0.40 d5=0.20)",
    ),
    (
        "a1b2c3d4e5f7",
        "Scheduling Recurrences In Calendar Systems",
        None,
        "invalid",
        "still invalid after 2 repairs: deterministic: generate(3, 2) returned different instances in "
        "two runs (the meta differs at 'order'); no_leak: the witness '17' appears verbatim in the "
        "question (seed=3, difficulty=2), in 8 of 8 instances",
    ),
]


def resyn(
    *args: str, columns: int = 80, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "resyn", *args]
    environment = {**os.environ, "COLUMNS": str(columns), **env}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment, cwd=cwd)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The example library, plus one job's environments; the environment to pass to resyn."""
    data_dir = tmp_path_factory.mktemp("library")
    library = build_example_library(data_dir)
    library.save_job(JOB, {"target": 2}, "finished")
    for number, (identifier, topic, name, status, reason) in enumerate(JOB_ENVIRONMENTS):
        library.start(identifier, topic, AUTHOR, SOLVER, job=JOB)
        library.finish(
            identifier,
            status=status,
            reason=reason,
            source=(EXEMPLARS / "job_scheduling.py").read_text(),
            report=report(),
            pass_rates=None,
            usage={"input_tokens": 90_000 + number, "output_tokens": 12_000},
            name=name,
        )
    library.close()
    return {"RESYN_DATA_DIR": str(data_dir)}


def records(workspace: dict[str, str]) -> list[EnvironmentRecord]:
    library = Library(Path(workspace["RESYN_DATA_DIR"]), read_only=True)
    try:
        return library.environments()
    finally:
        library.close()


def listed_ids(workspace: dict[str, str], *options: str) -> list[str]:
    """`library list --json` run in this process (the rendering tests run a real one)."""
    done = CliRunner().invoke(app, ["library", "list", "--json", *options], env=workspace)
    assert done.exit_code == 0, done.output
    return [row["id"] for row in json.loads(done.stdout)]


def assert_fits(text: str, width: int = 80) -> None:
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert not too_wide, too_wide


# ---- library list ----------------------------------------------------------------------------------


def test_library_list_at_80_columns_keeps_ids_and_names_whole_and_splits_no_word(
    workspace: dict[str, str],
) -> None:
    done = resyn("library", "list", **workspace)
    assert done.returncode == 0, done.stderr
    assert_fits(done.stdout)
    every = records(workspace)
    words = done.stdout.split()
    for record in every:
        assert record.id in words
        if record.name:
            assert record.name in words
    # every word shown is a whole word of a value, a header or the title: none was cut in two
    values = [word for record in every for text in (record.topic, record.reason) for word in text.split()]
    known = set(values) | {word.rstrip(",;:") for word in values}  # a shortened reason ends on a word
    known |= {record.id for record in every} | {record.name for record in every if record.name}
    known |= {record.status for record in every} | {"…", "·", "/"}
    known |= {"library:", str(len(every)), "environments", "id", "status", "name", "topic", "reason"}
    assert {word for word in words if set(word) != {"─"}} <= known
    assert len(done.stdout.splitlines()) <= 4 + 3 * len(every)  # compact: mostly two lines each


def test_library_list_on_a_wide_terminal_gives_each_field_its_column(workspace: dict[str, str]) -> None:
    done = resyn("library", "list", columns=200, **workspace)
    assert done.returncode == 0, done.stderr
    assert_fits(done.stdout, 200)
    lines = done.stdout.splitlines()
    assert "tokens" in lines[1]
    for record in records(workspace):
        [line] = [line for line in lines if line.startswith(record.id)]
        assert f"{record.input_tokens + record.output_tokens:,}" in line
        assert record.name is None or record.name in line


def test_library_list_filters_by_job_topic_status_and_reason(workspace: dict[str, str]) -> None:
    every = records(workspace)
    assert set(listed_ids(workspace, "--job", JOB)) == {"a1b2c3d4e5f6", "a1b2c3d4e5f7"}
    assert listed_ids(workspace, "--topic", "CALENDAR") == ["a1b2c3d4e5f7"]
    invalid = {record.id for record in every if record.status == "invalid"}
    assert set(listed_ids(workspace, "--status", "invalid")) == invalid and len(invalid) == 2
    assert set(listed_ids(workspace, "--reason", "NO_LEAK")) == invalid
    assert listed_ids(workspace, "--job", JOB, "--status", "accepted") == ["a1b2c3d4e5f6"]


def test_library_list_sorts_newest_first_unless_asked_otherwise(workspace: dict[str, str]) -> None:
    every = records(workspace)  # oldest first
    assert listed_ids(workspace) == [record.id for record in reversed(every)]
    by_tokens = listed_ids(workspace, "--sort", "tokens")
    assert by_tokens[:2] == ["a1b2c3d4e5f7", "a1b2c3d4e5f6"]
    topics = {record.id: record.topic.casefold() for record in every}
    by_topic = [topics[identifier] for identifier in listed_ids(workspace, "--sort", "topic")]
    assert by_topic == sorted(by_topic)


def test_library_list_limit_says_how_many_more_there_are(workspace: dict[str, str]) -> None:
    total = len(records(workspace))
    done = resyn("library", "list", "--limit", "3", **workspace)
    assert done.returncode == 0, done.stderr
    assert f"{total - 3} more not shown: use --limit {total} to see all" in done.stdout
    rows = [line for line in done.stdout.splitlines() if line[:12] in {r.id for r in records(workspace)}]
    assert len(rows) == 3
    piped = resyn("library", "list", "--limit", "3", "--json", **workspace)
    assert len(json.loads(piped.stdout)) == 3
    assert piped.stderr.strip() == f"note: {total - 3} more not shown: raise --limit to see them"


def test_library_list_of_an_unknown_job_or_status_is_a_one_line_usage_error(
    workspace: dict[str, str],
) -> None:
    for option, value in (("--job", "job-nope"), ("--status", "bogus")):
        done = resyn("library", "list", option, value, **workspace)
        assert done.returncode == 2
        assert len(done.stderr.strip().splitlines()) == 1 and value in done.stderr
        assert done.stdout == ""


def test_library_show_gives_the_path_a_line_and_says_tokens_once(workspace: dict[str, str]) -> None:
    record = records(workspace)[0]
    done = resyn("library", "show", record.id[:4], **workspace)
    assert done.returncode == 0, done.stderr
    *panel, last = done.stdout.splitlines()
    assert last == f"environment {record.id} · file {record.path}"  # whole, however long
    assert_fits("\n".join(panel))
    assert "tokens      4,500 (3,000 in, 1,500 out)" in done.stdout


# ---- validate --------------------------------------------------------------------------------------


def test_validate_at_80_columns_shows_every_path_and_name_whole(tmp_path: Path) -> None:
    folder = tmp_path / "examples" / "environments"
    folder.mkdir(parents=True)
    for source in (EXEMPLARS / "arithmetic_word_problem.py", EXEMPLARS / "sequence_completion.py"):
        shutil.copy(source, folder)
    shutil.copy(FIXTURES / "defective" / "no_leak.py", folder / "list_sum_that_leaks_its_answer.py")
    paths = sorted(str(path.relative_to(tmp_path)) for path in folder.glob("*.py"))
    done = resyn("validate", *paths, "--seeds", "2", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert_fits(done.stdout)
    for path in paths:
        assert path in done.stdout.split(), path
    for name in ("arithmetic-word-problem", "sequence-completion", "list-sum-leaky"):
        assert name in done.stdout.split()
    assert "failed: no_leak, no_shortcut" in done.stdout


# ---- sample ----------------------------------------------------------------------------------------


def test_sample_takes_a_library_id_as_well_as_a_path(workspace: dict[str, str]) -> None:
    record = next(record for record in records(workspace) if record.name == "job-scheduling")
    by_id = resyn("sample", record.id[:4], "--count", "2", "--json", **workspace)
    assert by_id.returncode == 0, by_id.stderr
    by_path = resyn("sample", str(record.path), "--count", "2", "--json", **workspace)
    assert json.loads(by_id.stdout) == json.loads(by_path.stdout)


@pytest.mark.parametrize(
    ("argument", "said"),
    [("zzzz", "no environment 'zzzz'"), ("0", "ambiguous: 10 environments start with '0'"),
     ("no/such/file.py", "no such file: no/such/file.py")],
)  # fmt: skip
def test_sample_of_a_bad_id_is_a_one_line_usage_error(
    workspace: dict[str, str], argument: str, said: str
) -> None:
    done = resyn("sample", argument, **workspace)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and said in line


# ---- help ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["sample"], ["--count", "N [1<=x<=1000]", "[default: 3]", "--seed", "[default: 0]"]),
        (["library", "list"], ["--limit", "N", "[default: created]", "(default: all)"]),
        (["validate"], ["--seeds", "N [x>=2]"]),
        (["expand"], ["--target", "N", "--max-hours", "NUMBER"]),
    ],
)
def test_help_shows_plain_metavars_and_defaults(command: list[str], shown: list[str]) -> None:
    done = resyn(*command, "--help", columns=120)
    assert done.returncode == 0, done.stderr
    assert "<bool>" not in done.stdout and "<int" not in done.stdout and "<float" not in done.stdout
    assert "[x>=1]" not in done.stdout and "[x>=0]" not in done.stdout  # N says as much
    for text in shown:
        assert text in done.stdout, text


def test_options_still_check_their_range() -> None:
    sample = ["sample", str(FIXTURES / "valid_minimal.py")]
    for option, value in (("--count", "0"), ("--seed", "-1"), ("--difficulty", "6")):
        assert CliRunner().invoke(app, [*sample, option, value]).exit_code == 2, option
    assert CliRunner().invoke(app, ["library", "list", "--limit", "0"]).exit_code == 2
