"""`resyn export`: the example library as an RL dataset that trainers load as it is."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from example_library import build_example_library

from resyn.contract import ANSWER_INSTRUCTION, CONTRACT_VERSION, LEAK_MIN_CHARS
from resyn.evals.export import (
    ExportError,
    ExportOptions,
    export_library,
    parse_difficulties,
    split_environments,
)
from resyn.memory.library import Library
from resyn.seeds import HELD_OUT_SPAN, held_out_seeds, held_out_window, probe_seeds, training_seeds
from resyn.settings import Settings
from resyn.tools.kernel_pool import KernelPool
from resyn.tools.reasoning_gym_adapter import read_rows

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # datasets must never reach for the hub here
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    return build_example_library(tmp_path_factory.mktemp("workspace"), contaminated="lattice-paths")


async def export(library: Library, pool: KernelPool, settings: Settings, out: Path, **options: Any):
    return await export_library(library, ExportOptions(out_dir=out, **options), settings, pool)


@pytest.fixture(scope="module")
async def exported(
    library: Library, pool: KernelPool, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The example library exported in both formats: 10 rows per environment, 3 test environments."""
    out = tmp_path_factory.mktemp("exports")
    for fmt in ("jsonl", "parquet"):
        await export(library, pool, settings, out / fmt, format=fmt, per_env=10, test_fraction=0.25, seed=3)
    return {"jsonl": out / "jsonl", "parquet": out / "parquet"}


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_both_formats_load_in_hf_datasets_with_the_rows_trainers_read(
    exported: dict[str, Path], fmt: str, tmp_path: Path
) -> None:
    import datasets

    root = exported[fmt]
    suffix = "jsonl" if fmt == "jsonl" else "parquet"
    files = {split: str(root / f"{split}.{suffix}") for split in ("train", "test")}
    loaded = datasets.load_dataset(
        "json" if fmt == "jsonl" else "parquet", data_files=files, cache_dir=str(tmp_path)
    )
    assert (loaded["train"].num_rows, loaded["test"].num_rows) == (80, 30)  # 11 environments: 8 + 3
    row = loaded["train"][0]
    assert row["prompt"][0]["role"] == "user"
    assert row["prompt"][0]["content"].endswith(ANSWER_INSTRUCTION)
    assert row["reward_model"]["style"] == "rule"
    truth = json.loads(row["reward_model"]["ground_truth"])
    assert set(truth) == {"environment_id", "source_sha256", "instance"}
    assert truth["instance"]["question"] in row["prompt"][0]["content"]
    assert row["extra_info"]["environment_id"] == row["environment_id"] == truth["environment_id"]


def test_the_split_is_by_environment(exported: dict[str, Path]) -> None:
    train = read_rows(exported["jsonl"] / "train.jsonl")
    test = read_rows(exported["jsonl"] / "test.jsonl")
    train_environments = {row["environment_id"] for row in train}
    test_environments = {row["environment_id"] for row in test}
    assert not train_environments & test_environments
    assert (len(train_environments), len(test_environments)) == (8, 3)
    assert {row["split"] for row in train} == {"train"} and {row["split"] for row in test} == {"test"}


def test_the_prompt_never_shows_the_witness(exported: dict[str, Path]) -> None:
    rows = read_rows(exported["parquet"] / "train.parquet") + read_rows(exported["parquet"] / "test.parquet")
    checked = 0
    for row in rows:
        witness = json.loads(row["reward_model"]["ground_truth"])["instance"]["witness"]
        if len(witness) >= LEAK_MIN_CHARS:
            assert witness not in row["prompt"][0]["content"]
            checked += 1
    assert checked > 20  # enough long witnesses for the check to mean something


def test_rows_spread_over_the_difficulties_with_distinct_seeds(exported: dict[str, Path]) -> None:
    rows = read_rows(exported["jsonl"] / "train.jsonl")
    one = [row for row in rows if row["environment_id"] == rows[0]["environment_id"]]
    assert sorted(row["difficulty"] for row in one) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert len({row["seed"] for row in one}) == 10


def test_contaminated_environments_are_left_out_unless_asked(exported: dict[str, Path]) -> None:
    manifest = json.loads((exported["jsonl"] / "manifest.json").read_text())
    assert [left["name"] for left in manifest["left_out"]] == ["lattice-paths"]
    assert "contaminated" in manifest["left_out"][0]["reason"]
    names = {environment["name"] for environment in manifest["environments"]}
    assert "lattice-paths" not in names and len(names) == 11


async def test_include_contaminated_keeps_them(
    library: Library, pool: KernelPool, settings: Settings, tmp_path: Path
) -> None:
    result = await export(library, pool, settings, tmp_path / "all", per_env=2, include_contaminated=True)
    assert result.manifest["counts"]["environments"] == {"train": 11, "test": 1}
    assert result.skipped == []


def test_the_bundle_holds_each_source_with_the_hash_rows_and_manifest_name(exported: dict[str, Path]) -> None:
    root = exported["jsonl"]
    manifest = json.loads((root / "manifest.json").read_text())
    rows = read_rows(root / "train.jsonl") + read_rows(root / "test.jsonl")
    row_hashes = {
        row["environment_id"]: json.loads(row["reward_model"]["ground_truth"])["source_sha256"]
        for row in rows
    }
    for environment in manifest["environments"]:
        digest = hashlib.sha256((root / environment["file"]).read_bytes()).hexdigest()
        assert digest == environment["sha256"] == row_hashes[environment["id"]]
    assert sorted(path.name for path in (root / "environments").iterdir()) == sorted(
        f"{environment['id']}.py" for environment in manifest["environments"]
    )


def test_the_manifest_says_what_was_exported_and_how(exported: dict[str, Path]) -> None:
    manifest = json.loads((exported["parquet"] / "manifest.json").read_text())
    assert manifest["resyn_version"] and manifest["contract_version"] == CONTRACT_VERSION
    assert manifest["counts"]["rows"] == {"train": 80, "test": 30}
    assert manifest["counts"]["by_difficulty"] == {str(level): 22 for level in range(1, 6)}
    assert manifest["options"] == {
        "per_env": 10, "difficulties": [1, 2, 3, 4, 5], "test_fraction": 0.25, "seed": 3,
        "include_contaminated": False,
    }  # fmt: skip
    assert manifest["models"] == {"author": ["scripted-author"], "solver": ["scripted-solver"]}
    assert manifest["files"] == {"train": "train.parquet", "test": "test.parquet"}


def test_no_secret_reaches_the_export(exported: dict[str, Path], fake_api_key: str) -> None:
    files = [path for root in exported.values() for path in root.rglob("*") if path.is_file()]
    assert len(files) > 20
    for path in files:
        assert fake_api_key.encode() not in path.read_bytes(), path


async def test_the_same_options_give_the_same_rows(
    library: Library, pool: KernelPool, settings: Settings, tmp_path: Path, exported: dict[str, Path]
) -> None:
    await export(library, pool, settings, tmp_path / "again", per_env=10, test_fraction=0.25, seed=3)
    await export(library, pool, settings, tmp_path / "other", per_env=10, test_fraction=0.25, seed=4)
    first = read_rows(exported["jsonl"] / "train.jsonl")
    assert read_rows(tmp_path / "again" / "train.jsonl") == first
    assert {row["seed"] for row in read_rows(tmp_path / "other" / "train.jsonl")} != {
        row["seed"] for row in first
    }


async def test_a_non_empty_output_directory_is_refused(
    library: Library, pool: KernelPool, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an empty directory"):
        await export(library, pool, settings, tmp_path)


async def test_an_empty_library_has_nothing_to_export(
    pool: KernelPool, settings: Settings, tmp_path: Path
) -> None:
    with pytest.raises(ExportError, match="nothing to export"):
        await export(Library(tmp_path / "workspace"), pool, settings, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_training_seeds_avoid_the_probe_and_evaluation_seeds(settings: Settings) -> None:
    probe = settings.synthesis.probe_seed
    seeds = training_seeds("abc", 5000, 0, settings)
    assert len(set(seeds)) == 5000
    assert not [seed for seed in seeds if probe <= seed < probe + 1_000_000]
    assert training_seeds("abc", 5, 0, settings) == seeds[:5]


def test_the_probe_and_the_evaluation_share_no_seed_inside_the_held_out_window(settings: Settings) -> None:
    probe = settings.synthesis.probe_seed
    assert held_out_window(settings) == range(probe, probe + HELD_OUT_SPAN)
    assert probe_seeds(settings) == range(probe, probe + settings.synthesis.probe_instances)
    evaluation = held_out_seeds(100, settings)
    assert evaluation[0] == probe_seeds(settings).stop and len(set(evaluation)) == 100
    assert set(evaluation) <= set(held_out_window(settings))


@pytest.mark.parametrize(
    ("text", "levels"), [("1-5", (1, 2, 3, 4, 5)), ("3", (3,)), ("1,3,5", (1, 3, 5)), ("4-5, 1", (1, 4, 5))]
)
def test_difficulties_read_as_ranges_and_lists(text: str, levels: tuple[int, ...]) -> None:
    assert parse_difficulties(text) == levels


@pytest.mark.parametrize("text", ["0-3", "6", "5-1", "easy", ""])
def test_bad_difficulties_say_what_is_wrong(text: str) -> None:
    with pytest.raises(ValueError, match="difficult"):
        parse_difficulties(text)


def test_the_test_split_gets_a_share_but_never_everything() -> None:
    ids = [f"e{number}" for number in range(10)]
    train, test = split_environments(ids, 0.2, seed=1)
    assert len(test) == 2 and sorted(train + test) == ids
    assert split_environments(ids, 0.2, seed=1) == (train, test)
    assert split_environments(["a", "b"], 0.01, 0)[1] != []  # a fraction > 0 holds out at least one
    assert split_environments(["a", "b"], 0.9, 0)[0] != []  # …and leaves at least one to train on
    assert split_environments(ids, 0.0, 0) == (sorted(ids), [])


def resyn(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "resyn", *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=cwd, env={**os.environ, **env}
    )


def test_the_command_exports_and_names_the_reward_functions(library: Library, tmp_path: Path) -> None:
    done = resyn(
        "export", "out", "--per-env", "3", "--difficulties", "2", "--format", "parquet",
        cwd=tmp_path, RESYN_DATA_DIR=str(library.data_dir),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "lattice-paths" in done.stdout and "resyn.tools.rewards" in done.stdout
    rows = read_rows(tmp_path / "out" / "train.parquet")
    assert {row["difficulty"] for row in rows} == {2}


def test_command_usage_errors_are_one_line(library: Library, tmp_path: Path) -> None:
    workspace = {"RESYN_DATA_DIR": str(library.data_dir)}
    bad_levels = resyn("export", "out", "--difficulties", "7", cwd=tmp_path, **workspace)
    assert bad_levels.returncode == 2
    assert bad_levels.stderr.strip().splitlines() == ["error: difficulties must lie in 1-5, got '7'"]
    no_library = resyn("export", "out", cwd=tmp_path, RESYN_DATA_DIR=str(tmp_path / "nothing"))
    assert no_library.returncode == 2 and "no library in" in no_library.stderr
    assert not (tmp_path / "nothing").exists()  # looking created no workspace
    assert resyn("export", "out", "--format", "csv", cwd=tmp_path, **workspace).returncode == 2
