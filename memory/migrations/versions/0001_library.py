"""The library as it stood when migrations began: environments, jobs, attempts, trace events.

Libraries written before then were made by `CREATE TABLE IF NOT EXISTS` and columns added on
open; this revision adopts them: a table that exists keeps its rows and gets the columns it lacks,
a missing one is created. On PostgreSQL `environments` gets the `rowid` that SQLite gives every
table (the novelty index keys its vectors by it).
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def _tables(postgres: bool) -> list[sa.Table]:
    metadata = sa.MetaData()
    environment_rowid = [sa.Column("rowid", sa.BigInteger, sa.Identity(), unique=True)] if postgres else []
    return [
        sa.Table(
            "environments",
            metadata,
            sa.Column("id", sa.Text, primary_key=True),
            *environment_rowid,
            sa.Column("topic", sa.Text, nullable=False),
            sa.Column("name", sa.Text),
            sa.Column("description", sa.Text),
            sa.Column("status", sa.Text, nullable=False),
            sa.Column("reason", sa.Text, nullable=False, server_default=""),
            sa.Column("source", sa.Text),
            sa.Column("source_hash", sa.Text),
            sa.Column("report", sa.Text),
            sa.Column("pass_rates", sa.Text),
            sa.Column("author_model", sa.Text),
            sa.Column("solver_model", sa.Text),
            sa.Column("input_tokens", sa.BigInteger, nullable=False, server_default="0"),
            sa.Column("output_tokens", sa.BigInteger, nullable=False, server_default="0"),
            sa.Column("path", sa.Text),
            sa.Column("created", sa.Float, nullable=False),
            sa.Column("updated", sa.Float, nullable=False),
            sa.Column("job", sa.Text),  # the expansion job that made it, if any
            sa.Column("embedding", sa.LargeBinary),  # novelty vector (float32); FAISS is rebuilt from it
            sa.Column("contamination", sa.Text),  # JSON of the benchmark question it nearly duplicates
            sa.Column("step", sa.Text),  # the last step its synthesis finished (live while it runs)
            sa.Column("role_usage", sa.Text),  # JSON: its tokens by role, as its LLM calls finish
            sa.Index("environments_by_status", "status"),
        ),
        sa.Table(
            "jobs",
            metadata,
            sa.Column("name", sa.Text, primary_key=True),
            sa.Column("options", sa.Text, nullable=False),
            sa.Column("status", sa.Text, nullable=False),
            sa.Column("stop_reason", sa.Text, nullable=False, server_default=""),
            sa.Column("pid", sa.Integer),
            sa.Column("created", sa.Float, nullable=False),
            sa.Column("updated", sa.Float, nullable=False),
            sa.Column("scout_input_tokens", sa.BigInteger, nullable=False, server_default="0"),
            sa.Column("scout_output_tokens", sa.BigInteger, nullable=False, server_default="0"),
            sa.Column("active_seconds", sa.Float, nullable=False, server_default="0"),
        ),
        sa.Table(
            "attempts",
            metadata,
            sa.Column("environment_id", sa.Text, sa.ForeignKey("environments.id"), primary_key=True),
            sa.Column("number", sa.Integer, primary_key=True),
            sa.Column("kind", sa.Text, nullable=False),
            sa.Column("source", sa.Text),
            sa.Column("report", sa.Text),
            sa.Column("problem", sa.Text),
            sa.Column("created", sa.Float, nullable=False),
        ),
        sa.Table(
            "trace_events",
            metadata,
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("environment_id", sa.Text),
            sa.Column("job", sa.Text),
            sa.Column("kind", sa.Text, nullable=False),
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("step", sa.Text),
            sa.Column("span", sa.Text),
            sa.Column("started", sa.Float, nullable=False),
            sa.Column("seconds", sa.Float, nullable=False),
            sa.Column("data", sa.Text, nullable=False),
            sa.Index("trace_by_environment", "environment_id", "seq"),
            sa.Index("trace_by_job", "job", "seq"),
            sqlite_autoincrement=True,
        ),
    ]


def upgrade() -> None:
    connection = op.get_bind()
    inspector = sa.inspect(connection)
    for table in _tables(connection.dialect.name == "postgresql"):
        if not inspector.has_table(table.name):
            table.create(connection)
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                default = column.server_default.arg if column.server_default is not None else None
                op.add_column(
                    table.name,
                    sa.Column(column.name, column.type, nullable=column.nullable, server_default=default),
                )
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(connection)


def downgrade() -> None:
    raise NotImplementedError("the library is never downgraded: restore a backup instead")
