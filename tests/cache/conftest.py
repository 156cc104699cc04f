"""Fixtures of the read-cache tests.

The session's emulator, `connection_params`, `table_prefix`, `open_database`, `logger` and
`loop_thread` are shared from tests/conftest.py (one emulator for every directory that
queries it); the instruments these tests add are in `tests.cache.helpers`.
"""
