"""Keep the offline service's cached evaluations apart from a real provider's.

When Parlant runs through ``p.Server`` it caches guideline and journey
evaluations in ``$PARLANT_HOME/evaluation_cache.json``, keyed by the
guideline's text only: the file does not say which NLP service filled it. A
cache filled offline holds placeholder evaluations that a later run with a
real provider would reuse as if a model had produced them. So every NLP
service that is not one of Parlant's providers gets its own home:

    nlp_home(home, "openai")       -> home                (Parlant's own layout)
    nlp_home(home, "offline")      -> home / "nlp-offline"
    nlp_home(home, "pkg.mod:make") -> home / "nlp-pkg.mod_make"

Parlant binds ``PARLANT_HOME`` when ``parlant.bin.server`` is first imported;
:func:`bind_parlant_home` also repoints an already imported Parlant, so the
order of imports does not matter.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

from parlant_router.nlp.services import parlant_nlp_service_names

# Modules holding their own copy of the home path, read when a server starts.
_PARLANT_HOME_HOLDERS = ("parlant.bin.server", "parlant.sdk")
_UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


def nlp_home(home: Path, nlp: str) -> Path:
    """The PARLANT_HOME to use for ``server.home`` = ``home`` and ``server.nlp`` = ``nlp``."""
    name = nlp.strip()
    key = name if ":" in name else name.lower()
    if key in parlant_nlp_service_names():
        return home
    return home / ("nlp-" + _UNSAFE_PATH_CHARS.sub("_", key))


def bind_parlant_home(path: Path) -> None:
    """Make Parlant keep its own files (caches, services) under ``path``.

    Sets ``PARLANT_HOME`` for Parlant modules imported later and repoints the
    ones already imported. Process-wide: one home per process at a time.
    Parlant's log file is opened at import and stays where it was.
    """
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PARLANT_HOME"] = str(path)
    for module_name in _PARLANT_HOME_HOLDERS:
        module = sys.modules.get(module_name)
        if module is not None:
            vars(module)["PARLANT_HOME_DIR"] = path


def bind_command_home(home: Path, nlp: str, command: str) -> None:
    """Bind Parlant's home for a command that opens stores outside a server (check, prune).

    Importing Parlant binds (and creates) its home: keep it where the server would put it,
    or in a scratch directory when that is not writable (such commands need none of it).
    """
    try:
        bind_parlant_home(nlp_home(home, nlp))
    except OSError:
        bind_parlant_home(Path(tempfile.mkdtemp(prefix=f"parlant-router-{command}-")))
