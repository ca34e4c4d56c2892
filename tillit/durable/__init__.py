"""The durable store: accounts, sessions, the audit log, statistics facts and notes, in
SQLite (the embedded default) or PostgreSQL, through one schema and one query layer
(SQLAlchemy Core) with Alembic migrations. Knows nothing of chats or of the console."""
