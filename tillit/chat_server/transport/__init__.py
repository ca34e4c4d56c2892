"""The transport layer: where Tillit reaches past the public API of python-engineio,
python-socketio, bidict and aiosqlite for speed. Every private name used here has a
canary in tests/test_library_canary.py; docs/architecture.md ("Private library
internals") says what each changes, what it gained and whether it went upstream."""
