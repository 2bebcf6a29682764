"""The library and the trace store behave the same on SQLite and on PostgreSQL (`database_url`).

Each test runs twice: on the workspace's SQLite file, and on a fresh database of the session's
throwaway PostgreSQL cluster (resyn/testing/postgres.py; skipped with the reason where PostgreSQL is
not installed, never in CI).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from resyn.memory import schema
from resyn.memory.damage import WorkspaceDamaged
from resyn.memory.library import AmbiguousEnvironment, Library
from resyn.memory.traces import TraceStore
from resyn.settings import Settings
from resyn.tracing import TraceEvent


def _accept(library: Library, environment_id: str, vector: np.ndarray) -> None:
    library.start(environment_id, "sorting", "author-m", "solver-m", job="j")
    library.progress(environment_id, "validate", {"author": {"input_tokens": 10, "output_tokens": 5}})
    library.record_attempt(environment_id, 0, "draft", "print(1)", None, "a problem")
    library.record_attempt(environment_id, 0, "draft", "print(2)", None, None)  # a replayed step
    library.finish(
        environment_id, status="accepted", reason="ok", source="x = 1\n", report=None,
        pass_rates={"1": 0.5}, usage={"input_tokens": 300, "output_tokens": 100},
        role_usage={"author": {"input_tokens": 300, "output_tokens": 100}},
        name="sorter", description="sorts", embedding=vector.astype(np.float32).tobytes(),
    )  # fmt: skip


def test_a_synthesis_is_recorded_and_read_back_alike(tmp_path: Path, database_url: str | None) -> None:
    library = Library(tmp_path, database_url=database_url)
    library.save_job("j", {"target": 2}, "running")
    library.start("abc123", "sorting", "author-m", "solver-m", job="j")
    library.start("abc123", "renamed", "x", "x", job="j")  # a resumed synthesis keeps its row
    library.start("abd999", "graphs", "author-m", "solver-m", job="j")
    _accept(library, "abc123", np.ones(4))
    library.record_job_progress("j", {"input_tokens": 7, "output_tokens": 3}, 12.5)

    record = library.get("abc1")  # a unique prefix
    assert (record.topic, record.status, record.name) == ("sorting", "accepted", "sorter")
    assert record.pass_rates == {"1": 0.5}
    assert [a.source for a in library.attempts("abc123")] == ["print(2)"]  # replaced, not duplicated
    with pytest.raises(AmbiguousEnvironment):
        library.get("ab")
    [(row, environment_id, blob)] = library.accepted_embeddings()
    assert environment_id == "abc123" and np.frombuffer(blob, dtype=np.float32).tolist() == [1.0] * 4
    assert library.id_of_row(row) == "abc123" and library.row_of("abc123") == row
    counts = library.job_counts("j")
    assert counts.accepted == 1 and counts.running == 1 and counts.input_tokens == 300
    usage = library.job_usage("j")
    assert usage.total == 410 and usage.by_role["scout"].total == 10
    assert library.job("j").active_seconds == 12.5
    assert list(library.topic_tallies()) == ["sorting"]
    library.close()

    reader = Library(tmp_path, read_only=True, database_url=database_url)
    assert [e.id for e in reader.environments()] == ["abc123", "abd999"]
    reader.close()


def test_trace_events_are_kept_in_order_and_read_only_readers_cannot_write(
    tmp_path: Path, database_url: str | None
) -> None:
    traces = TraceStore(tmp_path, database_url=database_url)
    for number in range(3):
        data = {"n": number, "text": "50% done?"}  # a % and a ? in a value are data, not placeholders
        traces.add(TraceEvent("step", f"s{number}", 100.0 + number, 0.5, data, "e1"))
    traces.add(TraceEvent("job", "start", 99.0, 0.0, {"line": "go"}, job="j"))
    traces.close()
    reader = TraceStore(tmp_path, read_only=True, database_url=database_url)
    assert [(e["name"], e["data"]["n"]) for e in reader.events("e1")] == [("s0", 0), ("s1", 1), ("s2", 2)]
    assert [e["name"] for e in reader.job_events("j")] == ["start"]
    with pytest.raises(WorkspaceDamaged, match="cannot be written"):
        reader.add(TraceEvent("step", "late", 1.0, 0.0, {}, "e1"))
    reader.close()


def test_a_new_database_reads_as_an_empty_library_and_gets_the_schema_once(
    tmp_path: Path, database_url: str | None
) -> None:
    reader = Library(tmp_path, read_only=True, database_url=database_url)
    assert reader.environments() == [] and reader.jobs() == []
    reader.close()
    library = Library(tmp_path, database_url=database_url)
    assert schema.current_revision(library._db) == schema.head_revision()
    library.close()


def test_settings_take_the_url_from_the_environment_and_never_show_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RESYN_DATABASE_URL", "postgresql://worker:s3cret@db.example/resyn")
    settings = Settings()
    assert settings.database_url_value == "postgresql://worker:s3cret@db.example/resyn"
    assert "s3cret" not in repr(settings) and "s3cret" not in settings.model_dump_json()
    monkeypatch.setenv("RESYN_DATABASE_URL", "mysql://db/resyn")
    with pytest.raises(ValueError, match="must be a postgresql:// URL"):
        Settings()


def test_a_server_that_cannot_be_reached_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://worker:s3cret@/resyn?host={tmp_path}&connect_timeout=2"  # no server on that socket
    with pytest.raises(WorkspaceDamaged) as raised:
        Library(tmp_path, database_url=url)
    message = str(raised.value)
    assert "cannot be reached" in message and "RESYN_DATABASE_URL" in message
    assert "s3cret" not in message and "\n" not in message


def test_a_synthesis_is_taken_over_only_once_its_worker_is_gone(
    tmp_path: Path, database_url: str | None
) -> None:
    library = Library(tmp_path, database_url=database_url)
    claims = library.claims
    claims.register("a", "j")
    claims.register("b", "j")
    claims.register("c", "j")
    library.start("e1", "sorting", "m", "m", job="j", worker="a")
    assert not claims.claim("e1", "a", expiry_s=30)  # its own claim is not taken again
    assert not claims.claim("e1", "b", expiry_s=30)  # a is beating: e1 stays a's
    assert claims.holds("e1", "a")
    claims.retire("a")  # a stopped cleanly: e1 is free at once, and only one worker gets it
    assert claims.claim("e1", "b", expiry_s=30) and not claims.claim("e1", "c", expiry_s=30)
    assert claims.holds("e1", "b") and not claims.holds("e1", "a")
    assert claims.claim("e1", "c", expiry_s=0.0)  # b silent past an expiry of nothing: gone
    assert claims.claim("e1", "a", expiry_s=None)  # where one worker runs, every other one is gone
    [a, b, c] = claims.workers("j", expiry_s=30)
    assert (a.alive, b.alive, c.alive) == (False, True, True) and a.stopped is not None
    library.finish("e1", status="invalid", reason="r", source=None, report=None, pass_rates=None, usage=None)
    assert not claims.claim("e1", "b", expiry_s=None)  # a finished synthesis is nobody's to take
    library.close()


def test_the_shared_topic_graph_moves_version_with_each_save(
    tmp_path: Path, database_url: str | None
) -> None:
    claims = Library(tmp_path, database_url=database_url).claims
    assert claims.topic_document() is None and claims.topic_version() == 0
    assert claims.save_topic_document('{"first": 1}') == 1
    assert claims.save_topic_document('{"second": 2}') == 2
    assert claims.topic_document() == (2, '{"second": 2}')


def test_a_worker_waiting_for_a_lock_keeps_its_event_loop_running(tmp_path: Path, postgres_url: str) -> None:
    """Two workers' connections in one event loop: while one holds the lock the other waits for
    it without blocking the loop (with a blocking wait, the holder could never let go)."""
    holder, waiter = (Library(tmp_path / name, database_url=postgres_url) for name in ("a", "b"))
    order: list[str] = []

    async def hold() -> None:
        async with holder.claims.lock("job:j"):
            order.append("held")
            await asyncio.sleep(0.3)  # the waiter's polls run meanwhile
            order.append("released")

    async def wait() -> None:
        await asyncio.sleep(0.05)  # the holder takes it first
        async with waiter.claims.lock("job:j"):
            order.append("taken")

    async def both() -> None:
        await asyncio.wait_for(asyncio.gather(hold(), wait()), timeout=10)

    asyncio.run(both())
    assert order == ["held", "released", "taken"]
    holder.close()
    waiter.close()
