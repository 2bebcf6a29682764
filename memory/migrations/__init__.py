"""The library's schema, as Alembic migrations (memory/schema.py runs them).

`versions/` holds one revision per change of the schema, oldest first; a new one is a file there
with the next `revision` and `down_revision` set to the last one. Both dialects run the same
revisions: the tables are declared with SQLAlchemy types, and where PostgreSQL needs what SQLite
gives for free (a `rowid`) the revision says so.
"""
