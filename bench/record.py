"""Record the store calls of one real Parlant turn (``python -m bench record``).

A real ``p.Server`` runs with the offline NLP service and transient stores; its
SessionStore, CustomerStore and ContextVariableStore -- the three stores the benchmark
replays on each adapter -- are wrapped in recorders. A customer message is posted over
Parlant's HTTP API with ``parlant_client``, and every store call from that moment until the
engine has emitted the agent's message, its ``ready`` status and gone quiet is the turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import inspect
import time
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import httpx
import parlant.sdk as p
from parlant.adapters.db.transient import TransientDocumentDatabase
from parlant.client import AsyncParlantClient
from parlant.core.common import IdGenerator
from parlant.core.context_variables import ContextVariableDocumentStore, ContextVariableStore
from parlant.core.customers import CustomerDocumentStore, CustomerStore
from parlant.core.persistence.document_database import DocumentDatabase
from parlant.core.sessions import (
    Event,
    EventKind,
    EventSource,
    SessionDocumentStore,
    SessionStore,
)

from bench.server import free_port
from bench.turns import TURN_SEQUENCE_PATH, StoreCall, TurnSequence, encode

T = TypeVar("T")

CUSTOMER_MESSAGE = "Hello! Which plan am I on, and can I upgrade it?"
_QUIET_SECONDS = 3.0
_TURN_TIMEOUT_SECONDS = 120.0


@dataclass
class _Raw:
    store: str
    method: str
    args: dict[str, Any]
    result: Any
    phase: str


@dataclass
class Recorder:
    """Collects the calls made on the wrapped stores, in order."""

    phase: str = "setup"
    calls: list[_Raw] = field(default_factory=list)
    last_call: float = field(default_factory=time.monotonic)
    agent_replied: asyncio.Event = field(default_factory=asyncio.Event)

    def wrap(self, interface: type[T], store_name: str, inner: T) -> T:
        """A subclass of ``interface`` forwarding every abstract method to ``inner``, recorded."""
        namespace: dict[str, Any] = {}
        for method_name in sorted(getattr(interface, "__abstractmethods__", ())):
            namespace[method_name] = self._forwarder(store_name, method_name, inner)
        cls = type(f"Recording{interface.__name__}", (interface,), namespace)
        instance: T = cls()
        return instance

    def _forwarder(
        self, store_name: str, method_name: str, inner: Any
    ) -> Callable[..., Coroutine[Any, Any, Any]]:
        target = getattr(inner, method_name)
        signature = inspect.signature(target)
        recorder = self

        async def forward(_self: Any, *args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            result = await target(*args, **kwargs)
            recorder.calls.append(
                _Raw(store_name, method_name, dict(bound.arguments), result, recorder.phase)
            )
            recorder.last_call = time.monotonic()
            if recorder.phase == "turn" and _is_ready_after_reply(recorder.calls):
                recorder.agent_replied.set()
            return result

        return forward

    def sequence(self, agent_id: str) -> TurnSequence:
        """Encode the recorded calls, ids replaced by roles and trace ids made fresh."""
        roles: dict[str, str] = {agent_id: "agent"}
        fresh: dict[str, str] = {}
        created: dict[str, int] = {}
        setup: list[StoreCall] = []
        turn: list[StoreCall] = []
        for raw in self.calls:
            trace_id = raw.args.get("trace_id")
            if isinstance(trace_id, str) and trace_id not in fresh:
                fresh[trace_id] = f"trace:{len(fresh)}"
            args = encode(raw.args, roles, fresh)
            creates: str | None = None
            identifier = getattr(raw.result, "id", None)
            if isinstance(identifier, str) and identifier not in roles:
                kind = type(raw.result).__name__.lower()
                creates = f"{kind}:{created.get(kind, 0)}"
                created[kind] = created.get(kind, 0) + 1
                roles[identifier] = creates
            call = StoreCall(raw.store, raw.method, args, creates)
            if raw.phase == "setup":
                setup.append(call)
            elif raw.phase == "turn":
                turn.append(call)
        provenance = {
            "placeholder": False,
            "recorded_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "command": "python -m bench record",
            "parlant": importlib.metadata.version("parlant"),
            "nlp_service": "parlant_router.nlp.offline:OfflineNLPService",
            "stores_recorded": ["sessions", "customers", "context_variables"],
            "scenario": (
                "one agent with two guidelines and a context variable holding a value for the "
                f"customer; the customer sends {CUSTOMER_MESSAGE!r} over the HTTP API; the turn "
                "ends when the engine has emitted the agent's message and its 'ready' status "
                f"and no store call has followed for {_QUIET_SECONDS} s"
            ),
        }
        return TurnSequence(provenance, setup, turn)


def _is_ready_after_reply(calls: list[_Raw]) -> bool:
    replied = False
    for raw in calls:
        if raw.phase != "turn" or not isinstance(raw.result, Event):
            continue
        if raw.result.kind == EventKind.MESSAGE and raw.result.source == EventSource.AI_AGENT:
            replied = True
        status = raw.result.data.get("status") if isinstance(raw.result.data, dict) else None
        if replied and raw.result.kind == EventKind.STATUS and status == "ready":
            return True
    return False


async def record_turn() -> TurnSequence:
    """Run one real turn and return its calls."""
    from parlant_router.nlp.offline import OfflineNLPService

    recorder = Recorder()
    ids = IdGenerator()
    port = free_port()
    async with AsyncExitStack() as exits:

        def transient() -> DocumentDatabase:
            return TransientDocumentDatabase()

        sessions = await exits.enter_async_context(
            SessionDocumentStore(transient(), allow_migration=True)
        )
        customers = await exits.enter_async_context(
            CustomerDocumentStore(ids, transient(), allow_migration=True)
        )
        variables = await exits.enter_async_context(
            ContextVariableDocumentStore(ids, transient(), allow_migration=True)
        )
        configured: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()

        async def serve() -> None:
            async with p.Server(
                host="127.0.0.1",
                port=port,
                tool_service_port=free_port(),
                nlp_service=OfflineNLPService.from_container,
                session_store=recorder.wrap(SessionStore, "sessions", sessions),
                customer_store=recorder.wrap(CustomerStore, "customers", customers),
                variable_store=recorder.wrap(ContextVariableStore, "context_variables", variables),
                log_level=p.LogLevel.WARNING,
            ) as server:
                agent = await server.create_agent(
                    name="Bench agent", description="Answers questions about the customer's plan."
                )
                await agent.create_guideline(
                    condition="the customer greets you", action="greet them back by name"
                )
                await agent.create_guideline(
                    condition="the customer asks about their plan", action="tell them their plan"
                )
                variable = await agent.create_variable(
                    name="plan", description="The customer's plan"
                )
                customer = await server.create_customer(name="Ada")
                await variable.set_value_for_customer(customer, "basic")
                configured.set_result((agent.id, customer.id))
            # Leaving the block is what serves HTTP, until this task is cancelled.

        server_task = asyncio.create_task(serve())
        try:
            agent_id, customer_id = await _first(configured, server_task)
            await _wait_until_serving(port, server_task)
            client = AsyncParlantClient(base_url=f"http://127.0.0.1:{port}", timeout=60)
            session = await client.sessions.create(agent_id=agent_id, customer_id=customer_id)
            recorder.phase = "turn"
            await client.sessions.create_event(
                session_id=session.id, kind="message", source="customer", message=CUSTOMER_MESSAGE
            )
            await asyncio.wait_for(recorder.agent_replied.wait(), _TURN_TIMEOUT_SECONDS)
            while time.monotonic() - recorder.last_call < _QUIET_SECONDS:
                await asyncio.sleep(0.1)
            recorder.phase = "after"
        finally:
            server_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await server_task
    return recorder.sequence(agent_id)


async def _first(
    configured: asyncio.Future[tuple[str, str]], server: asyncio.Task[None]
) -> tuple[str, str]:
    """The configured ids, or the server task's failure if it dies first."""
    waiting: list[asyncio.Future[Any]] = [configured, server]
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    if not configured.done():
        server.result()
        raise RuntimeError("the Parlant server stopped before it was configured")
    return configured.result()


async def _wait_until_serving(port: int, server: asyncio.Task[None]) -> None:
    async with httpx.AsyncClient() as http:
        deadline = time.monotonic() + _TURN_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if server.done():
                server.result()
                raise RuntimeError("the Parlant server stopped before serving")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError("the Parlant server did not start serving")


def record(path: Path = TURN_SEQUENCE_PATH) -> TurnSequence:
    """Record a turn and write it to ``path``."""
    sequence = asyncio.run(record_turn())
    path.write_text(sequence.to_json(), encoding="utf-8")
    return sequence
