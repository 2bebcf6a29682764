"""`resyn export OUT_DIR`: the accepted environments as an RL dataset (rows, sources, manifest)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from resyn.commands.workspace import difficulty_levels, existing_workspace
from resyn.console import console, fail_usage, print_error


def export(
    out_dir: Annotated[Path, typer.Argument(help="a new (or empty) directory to write the dataset to")],
    fmt: Annotated[str, typer.Option("--format", help="jsonl or parquet")] = "jsonl",
    per_env: Annotated[int, typer.Option(min=1, max=100_000, help="rows per environment")] = 100,
    difficulties: Annotated[str, typer.Option(help="levels to draw from: 1-5, 3 or 1,3,5")] = "1-5",
    test_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="share of environments held out as the test split")
    ] = 0.1,
    seed: Annotated[int, typer.Option(min=0, help="picks instance seeds and the split")] = 0,
    include_contaminated: Annotated[
        bool, typer.Option("--include-contaminated", help="keep environments flagged as near BBH/BBEH")
    ] = False,
) -> None:
    """Export the library's accepted environments: train/test rows split by environment, the
    environments' sources and a manifest. Rewards: resyn.tools.rewards (docs/export.md)."""
    from resyn.evals.export import FORMATS, ExportError, ExportOptions, export_library
    from resyn.memory.library import Library

    if fmt not in FORMATS:
        raise fail_usage(f"unknown format {fmt!r}: choose jsonl or parquet")
    levels = difficulty_levels(difficulties)
    settings = existing_workspace()
    options = ExportOptions(
        out_dir=out_dir,
        format=fmt,  # type: ignore[arg-type]
        per_env=per_env,
        difficulties=levels,
        test_fraction=test_fraction,
        seed=seed,
        include_contaminated=include_contaminated,
    )
    library = Library.of(settings, read_only=True)
    done = 0
    try:
        with console.status("generating instances in the sandbox…") as status:

            def progress(record: object, rows: int) -> None:
                nonlocal done
                done += 1
                status.update(f"generating instances in the sandbox… {done} environments done")

            result = asyncio.run(export_library(library, options, settings, on_environment=progress))
    except ExportError as error:
        print_error(str(error))
        raise typer.Exit(1) from None
    finally:
        library.close()
    manifest = result.manifest
    counts = manifest["counts"]
    for left in result.skipped:
        console.print(
            f"[yellow]left out[/yellow] {left['name'] or left['id']}: {left['reason']}", highlight=False
        )
    splits = " · ".join(
        f"{split}: {counts['rows'][split]} rows from {counts['environments'][split]} environments"
        for split in counts["rows"]
    )
    console.print(f"[green]exported[/green] {splits} → {out_dir} ({result.seconds:.1f} s)", highlight=False)
    console.print(
        f"rewards: resyn.tools.rewards (compute_score, trl_reward) with "
        f"RESYN_ENVIRONMENTS_DIR={out_dir / 'environments'}",
        highlight=False,
        soft_wrap=True,
    )
