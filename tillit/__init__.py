"""Tillit: an anonymous, end-to-end encrypted counseling chat.

The subpackages are layers that import one way only (docs/architecture.md, checked by the
import-linter contract in pyproject.toml): `safety` at the bottom, then `chat_server`,
then `counselor_console`; `tillit.app` and `tillit.cli` compose them.
"""
