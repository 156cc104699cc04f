"""Import the object an import path ``package.module:attribute`` names.

parlant.yaml names user code this way (a custom backend's factory, an NLP service),
and the package names its own lazily imported classes the same way (backends, Parlant's
stores). `import_object` is the one place that resolves them, so that a path that
names nothing fails the same way everywhere: an `ImportPathError` whose `str()` is one
line, for the caller to put behind its own prefix (the config key, the service).

Imports nothing but the standard library: checking a path's form with
`parse_import_path` must not import Parlant or the user's code.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

ImportPathProblem = Literal["malformed", "import", "attribute"]


class ImportPathError(ValueError):
    """An import path that names nothing importable; `str()` is one line saying why.

    `problem` tells which step failed: the form of the path (``malformed``), importing
    its module (``import``; `reason` is then ``TypeName: first line`` of what the module
    raised) or finding its attribute (``attribute``).
    """

    def __init__(
        self,
        message: str,
        *,
        spec: str,
        problem: ImportPathProblem,
        module: str = "",
        attribute: str = "",
        reason: str = "",
    ) -> None:
        super().__init__(message)
        self.spec = spec
        self.problem: ImportPathProblem = problem
        self.module = module
        self.attribute = attribute
        self.reason = reason


def parse_import_path(spec: str) -> tuple[str, str]:
    """``(module, attribute)`` of ``package.module:attribute`` (the attribute may be dotted).

    Raises `ImportPathError` unless both sides are dotted Python identifiers.
    """
    module, _, attribute = spec.partition(":")
    parts = (*module.split("."), *attribute.split("."))
    if not all(part.isidentifier() for part in parts):
        raise ImportPathError(
            f"{spec!r} is not of the form 'package.module:attribute'",
            spec=spec,
            problem="malformed",
        )
    return module, attribute


def import_object(spec: str) -> Any:
    """The object ``package.module:attribute`` names, its module imported if need be.

    Raises `ImportPathError` when the path is malformed, when its module cannot be
    imported (whatever the module raised: it may be user code) or when the module has
    no such attribute.
    """
    module_name, attribute = parse_import_path(spec)
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:
        # Only the first line: a SyntaxError or a chained error can run on for pages.
        first_line = next(iter(str(error).splitlines()), "")
        reason = f"{type(error).__name__}: {first_line}"
        raise ImportPathError(
            f"cannot import module {module_name!r} ({reason})",
            spec=spec,
            problem="import",
            module=module_name,
            attribute=attribute,
            reason=reason,
        ) from error
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ImportPathError(
                f"module {module_name!r} has no {attribute!r}",
                spec=spec,
                problem="attribute",
                module=module_name,
                attribute=attribute,
            ) from None
    return target


__all__ = ["ImportPathError", "ImportPathProblem", "import_object", "parse_import_path"]
