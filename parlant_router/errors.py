"""The exceptions of parlant-router.

Every failure a user can cause (a bad config file, a backend that cannot be
reached) is a `ParlantRouterError` whose `str()` is one line, safe to print:
it never contains a secret. The CLI prints that line and exits (2 for a
`ConfigError`, 1 for a `RouterError`) without a traceback.
"""

from __future__ import annotations


def _one_line(text: str) -> str:
    # The contract is one line per error: fold anything multi-line a library handed us.
    return " ".join(text.split())


class ParlantRouterError(Exception):
    """Base class of the errors parlant-router reports to users."""


class ConfigError(ParlantRouterError):
    """A mistake in the configuration, located in its source.

    `str()` is one line: ``FILE:LINE:COL: dotted.key: message``. Parts that are
    unknown are left out (a missing file has no line; an error about the whole
    file has no key). ``file`` is the name of the source as the user knows it: a
    path, or ``--set key=value`` for a command-line override.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        col: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = _one_line(message)
        self.file = file
        self.line = line
        self.col = col
        self.key = key
        super().__init__(str(self))

    @property
    def location(self) -> str:
        """``FILE:LINE:COL`` (or the parts of it that are known)."""
        parts = [self.file or "<config>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.col is not None:
                parts.append(str(self.col))
        return ":".join(parts)

    def __str__(self) -> str:
        head = self.location
        if self.key:
            head = f"{head}: {self.key}"
        return f"{head}: {self.message}"


class RouterError(ParlantRouterError):
    """A failure while building or running the routed stores (connecting, probing, serving).

    The message must be one line and free of secrets; the constructor folds lines.
    """

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))
