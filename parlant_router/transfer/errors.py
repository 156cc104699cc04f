"""The one error of copy, export and import: what is wrong, in one line (exit status 2)."""

from __future__ import annotations

from parlant_router.errors import ParlantRouterError


class TransferError(ParlantRouterError):
    """A source that cannot be read, a destination that cannot be written, a malformed
    export, a destination that already holds data: one line, nothing half-written left
    unreported."""
