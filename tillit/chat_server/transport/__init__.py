"""Code that reaches into private parts of python-engineio, python-socketio and aiosqlite,
kept in one place with a canary test each (docs/architecture.md, "Private library internals")."""
