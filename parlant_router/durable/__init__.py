"""Wrappers the router applies to any durable backend's databases.

Each keeps Parlant's stores correct across restarts where Parlant itself assumes memory:
idempotent creation of content-addressed entities (`create_once`), documents already at
their store's version (`current_version`), and the vector part of vector-backed stores
(`vectors`, over `parlant_router.vectors`).
"""
