"""NLP services for the router: the offline service and the name mapping of ``server.nlp``."""

from __future__ import annotations
