"""The exceptions of parlant-router, and how any exception is told in one line.

Every failure a user can cause (a bad config file, a backend that cannot be
reached) is a `ParlantRouterError` whose `str()` is one line per mistake, safe to
print: it never contains a secret. The CLI prints those lines and exits (2 for a
`ConfigError`, 1 for a `RouterError`) without a traceback.

Exceptions raised by others (drivers, user code) are told with
`describe_exception`, and suggestions for a misspelt name with `did_you_mean`,
so that every message of the package reads the same way. This module imports
nothing of the package: every other module may use it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

_PYMONGO_TAIL = " (configured timeouts"


def one_line(text: str, limit: int | None = None) -> str:
    """`text` with its whitespace folded to single spaces, cut to `limit` characters with "..."."""
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        return text[: limit - 3] + "..."
    return text


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each non-empty secret replaced by ``***``."""
    # Longest first: a secret that contains another is masked whole, not around it.
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


_SECRET_NAME_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "passcode",
    "pwd",
    "secret",
    "token",
    "private_key",
    "api_key",
    "apikey",
    "credential",
)


def looks_secret(name: str) -> bool:
    """Whether a setting's name says it holds a secret (``oauth_client_secret``, ``api_token``).

    For names no model knows (connector ``options``, a factory's keyword arguments); it errs
    on the side of secrecy (``client_request_mfa_token``, a flag, looks secret too).
    """
    lowered = name.lower()
    return any(part in lowered for part in _SECRET_NAME_PARTS)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


class ParlantRouterError(Exception):
    """Base class of the errors parlant-router reports to users."""


class UnstorableInputError(Exception):
    """Mixed into the errors about a value no store can hold as given (text that is not valid
    Unicode, a document over a size limit, a filter nested too deep): the request's fault,
    which the server answers with HTTP 422 and this one line, not with a 500."""


class ConfigError(ParlantRouterError):
    """A mistake in the configuration, located in its source; or several of them.

    `str()` is one line: ``FILE:LINE:COL: dotted.key: message``. Parts that are
    unknown are left out (a missing file has no line; an error about the whole
    file has no key). ``file`` is the name of the source as the user knows it: a
    path, or ``--set key=value`` for a command-line override.

    A load that found several mistakes raises one `ConfigError` made by `combine`:
    ``issues`` holds each of them (in file order), ``str()`` is their lines joined by
    newlines, and ``file``/``line``/``col``/``key``/``message`` are the first one's.
    A single error's ``issues`` is ``(self,)``.
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
        self.message = one_line(message)
        self.file = file
        self.line = line
        self.col = col
        self.key = key
        self._others: tuple[ConfigError, ...] = ()
        super().__init__(str(self))

    @classmethod
    def combine(cls, errors: Sequence[ConfigError]) -> ConfigError:
        """One error reporting every one of `errors` (at least one), duplicates dropped."""
        unique = list({str(error): error for error in errors}.values())
        first = unique[0]
        if len(unique) == 1:
            return first
        combined = cls(
            first.message, file=first.file, line=first.line, col=first.col, key=first.key
        )
        combined._others = tuple(unique[1:])
        combined.args = (str(combined),)
        return combined

    @property
    def issues(self) -> tuple[ConfigError, ...]:
        """Every mistake this error reports, each a single `ConfigError`."""
        if not self._others:
            return (self,)
        first = ConfigError(
            self.message, file=self.file, line=self.line, col=self.col, key=self.key
        )
        return (first, *self._others)

    @property
    def location(self) -> str:
        """``FILE:LINE:COL`` (or the parts of it that are known) of the (first) mistake."""
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
        return "\n".join((f"{head}: {self.message}", *(str(other) for other in self._others)))


class RouterError(ParlantRouterError):
    """A failure while building or running the routed stores (connecting, probing, serving).

    The message must be one line and free of secrets; the constructor folds lines.
    """

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def describe_exception(
    error: BaseException,
    *,
    secrets: Iterable[str] = (),
    limit: int | None = None,
    with_type: bool = True,
) -> str:
    """One line saying what `error` is, with every secret in `secrets` masked as ``***``.

    - a `ParlantRouterError`: its own message;
    - an `OSError` from the system: its reason and the file it concerns
      (``Permission denied: /srv/data``);
    - an error with a positive `errno` (Snowflake's connector): the zero-padded code
      and the connector's own message (``000625: Statement reached its timeout``);
    - anything else: ``TypeName: message``, or the message alone when not `with_type`.

    pymongo's dump of its timeouts and topology after the reason is left out. The line
    is cut to `limit` characters, after masking, so that no part of a secret survives.
    """
    if isinstance(error, ParlantRouterError):
        text = str(error)
    elif isinstance(error, OSError) and error.strerror:
        text = error.strerror + (f": {error.filename}" if error.filename else "")
    else:
        errno = getattr(error, "errno", None)
        # The connector's str() repeats the code (and the SQL state) before the message.
        message = one_line(str(getattr(error, "raw_msg", None) or error))
        if isinstance(errno, int) and errno > 0:
            text = f"{errno:06d}: {message or type(error).__name__}"
        elif with_type and message:
            text = f"{type(error).__name__}: {message}"
        else:
            text = message
    text = one_line(text.split(_PYMONGO_TAIL)[0]) or type(error).__name__
    return one_line(mask_secrets(text, secrets), limit)
