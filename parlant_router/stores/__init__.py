"""Parlant's stores as the router builds them.

`catalog` names every routable store (pure data, no Parlant import); `session_store` is
Parlant's session store with per-session locking.
"""
