"""How the server's HTTP API answers what the stores refuse.

Parlant answers any exception a store raises with HTTP 500 and logs its traceback. A value
no store can hold as given (`UnstorableInputError`: text that is not valid Unicode, a
document over the size limit) is the request's fault: it gets HTTP 422 with the store's
one-line reason, logged once as a warning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parlant_router.errors import UnstorableInputError

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from parlant.core.loggers import Logger


def answer_unstorable_input(app: FastAPI, logger: Logger) -> None:
    """Answer `UnstorableInputError` from any route of `app` with HTTP 422 and its line."""

    async def unstorable(request: Request, error: Exception) -> JSONResponse:
        from fastapi.responses import JSONResponse

        logger.warning(f"{request.method} {request.url.path}: refused: {error}")
        return JSONResponse(status_code=422, content={"detail": str(error)})

    app.add_exception_handler(UnstorableInputError, unstorable)


__all__ = ["answer_unstorable_input"]
