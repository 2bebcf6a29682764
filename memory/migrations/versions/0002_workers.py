"""Many workers on one job: who works on it (`workers`, with a heartbeat), which of them runs each
synthesis in flight (`environments.worker`), and the topic graph they share (`topic_graph`)."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("job", sa.Text, nullable=False),
        sa.Column("host", sa.Text, nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started", sa.Float, nullable=False),
        sa.Column("heartbeat", sa.Float, nullable=False),
        sa.Column("stopped", sa.Float),  # set when it stopped cleanly: its claims are free at once
        sa.Index("workers_by_job", "job"),
    )
    op.add_column("environments", sa.Column("worker", sa.Text))  # the worker whose synthesis it is
    op.create_table(  # one row: the workspace's topic graph, as memory/topics.py writes topics.json
        "topic_graph",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("document", sa.Text, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the library is never downgraded: restore a backup instead")
