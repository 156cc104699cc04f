"""A real Parlant server on the offline NLP service: it starts with no network and replies.

One server for the module (startup evaluates a guideline and a journey through
the offline generators); customers talk to it over HTTP with Parlant's own client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from lagom import Container
from parlant.client import AsyncParlantClient
from parlant.client.errors import GatewayTimeoutError

from parlant_router.nlp import bind_parlant_home, nlp_home, resolve_nlp_service
from parlant_router.nlp.answers import OFFLINE_MARKER, offline_reply

pytestmark = pytest.mark.asyncio(loop_scope="module")

# Upper bounds only, so that a broken engine fails instead of hanging the suite.
STARTUP_LIMIT = 120.0
REPLY_LIMIT = 60.0
PREAMBLE_TAG = "__preamble__"


@dataclass
class OfflineServer:
    base_url: str
    sdk_agent_id: str
    root: Path
    network_attempts: list[str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _is_loopback(host: Any) -> bool:
    return isinstance(host, str) and (
        host in ("localhost", "::1", "") or host.startswith("127.") or host.startswith("/")
    )


@contextmanager
def refuse_network() -> Iterator[list[str]]:
    """Refuse and record every connection or name lookup that leaves the machine."""
    attempts: list[str] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if not _is_loopback(host):
            attempts.append(repr(address))
            raise OSError(f"network access refused in test: {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        check((host.decode() if isinstance(host, bytes) else host,))
        return real_getaddrinfo(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", connect)
        mp.setattr(socket.socket, "connect_ex", connect_ex)
        mp.setattr(socket, "getaddrinfo", getaddrinfo)
        yield attempts


@pytest.fixture(scope="module")
def network_attempts() -> Iterator[list[str]]:
    with refuse_network() as attempts:
        yield attempts


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def offline_server(
    tmp_path_factory: pytest.TempPathFactory, network_attempts: list[str]
) -> AsyncIterator[OfflineServer]:
    import parlant.bin.server
    import parlant.sdk as p
    from parlant.core.engines.alpha.perceived_performance_policy import (
        PerceivedPerformancePolicy,
        VoiceOptimizedPerceivedPerformancePolicy,
    )

    root = tmp_path_factory.mktemp("parlant-home")
    port, tool_port = _free_port(), _free_port()
    created: asyncio.Future[tuple[Any, str]] = asyncio.get_running_loop().create_future()

    async def no_delays(container: Container) -> Container:
        # Parlant paces replies with random pauses of a few seconds (an engine
        # policy, not the NLP service's); this policy has none but still asks
        # for preambles, so the preamble answer stays covered.
        container[PerceivedPerformancePolicy] = VoiceOptimizedPerceivedPerformancePolicy()  # type: ignore[type-abstract]
        return container

    async def serve() -> None:
        async with p.Server(
            host="127.0.0.1",
            port=port,
            tool_service_port=tool_port,
            nlp_service=resolve_nlp_service("offline"),
            log_level=p.LogLevel.WARNING,
            configure_container=no_delays,
        ) as server:
            agent = await server.create_agent(
                name="Offline SDK agent", description="Answers parcel questions."
            )
            await agent.create_guideline(
                condition="the customer asks where their parcel is",
                action="ask for the tracking number",
            )
            journey = await agent.create_journey(
                title="Return an item",
                description="Helps the customer return an item.",
                conditions=["the customer wants to return an item"],
            )
            await journey.initial_state.transition_to(chat_state="Ask which item to return")
            created.set_result((server, agent.id))

    with pytest.MonkeyPatch.context() as mp:
        # Restored on exit: the next tests see Parlant's home as it was.
        for module in (parlant.bin.server, p):
            mp.setattr(module, "PARLANT_HOME_DIR", module.PARLANT_HOME_DIR)
        mp.setenv("PARLANT_HOME", str(parlant.bin.server.PARLANT_HOME_DIR))
        bind_parlant_home(nlp_home(root, "offline"))

        task = asyncio.create_task(serve())
        try:
            server, agent_id = await _first_of(created, task, STARTUP_LIMIT)
            await _first_of(asyncio.ensure_future(server.ready.wait()), task, STARTUP_LIMIT)
            yield OfflineServer(f"http://127.0.0.1:{port}", agent_id, root, network_attempts)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _first_of(
    wanted: asyncio.Future[Any], server_task: asyncio.Task[None], limit: float
) -> Any:
    """Wait for ``wanted``; fail at once if the server task ends first."""
    done, _ = await asyncio.wait(
        {wanted, server_task}, timeout=limit, return_when=asyncio.FIRST_COMPLETED
    )
    if wanted in done:
        return wanted.result()
    if server_task in done:
        server_task.result()  # raises the server's own error
        raise AssertionError("the server stopped before it was ready")
    raise AssertionError(f"the server was not ready within {limit:.0f}s")


async def _agent_reply(
    client: AsyncParlantClient, agent_id: str, text: str, session_id: str | None = None
) -> str:
    """Post ``text`` as the customer (in a new session unless given); return the agent's reply."""
    if session_id is None:
        session_id = (await client.sessions.create(agent_id=agent_id)).id
    posted = await client.sessions.create_event(
        session_id, kind="message", source="customer", message=text
    )
    return await _next_agent_message(client, session_id, posted.offset + 1)


async def _next_agent_message(client: AsyncParlantClient, session_id: str, offset: int) -> str:
    """The first agent message from ``offset`` on, skipping preambles (short
    acknowledgements Parlant may send before the reply)."""
    deadline = time.monotonic() + REPLY_LIMIT
    while time.monotonic() < deadline:
        try:
            events = await client.sessions.list_events(
                session_id, min_offset=offset, kinds="message", source="ai_agent", wait_for_data=10
            )
        except GatewayTimeoutError:
            continue  # nothing new within wait_for_data: poll again
        for event in events:
            offset = max(offset, event.offset + 1)
            data = event.data
            assert isinstance(data, dict)
            if PREAMBLE_TAG not in data.get("tags", []):
                message: str = data["message"]
                return message
    raise AssertionError(f"no agent message within {REPLY_LIMIT:.0f}s")


async def test_sdk_agent_replies_with_the_offline_placeholder(
    offline_server: OfflineServer,
) -> None:
    client = AsyncParlantClient(base_url=offline_server.base_url)
    session = await client.sessions.create(agent_id=offline_server.sdk_agent_id)
    reply = await _agent_reply(client, session.agent_id, "Where is my parcel?", session.id)
    assert reply.startswith(OFFLINE_MARKER)
    assert '"Where is my parcel?"' in reply
    assert "offline" in reply.lower()

    # The preamble came first: one of Parlant's own short acknowledgements.
    messages = await client.sessions.list_events(
        session.id, min_offset=0, kinds="message", source="ai_agent"
    )
    preambles = [
        m.data["message"]
        for m in messages
        if isinstance(m.data, dict) and PREAMBLE_TAG in m.data.get("tags", [])
    ]
    assert len(preambles) == 1
    assert not preambles[0].startswith(OFFLINE_MARKER)


@pytest.mark.parametrize("mode", ["fluid", "canned_fluid", "composited_canned"])
async def test_rest_agent_replies_with_the_offline_placeholder(
    offline_server: OfflineServer, mode: str
) -> None:
    client = AsyncParlantClient(base_url=offline_server.base_url)
    agent = await client.agents.create(name=f"Offline REST agent ({mode})", composition_mode=mode)
    assert agent.composition_mode == mode
    reply = await _agent_reply(client, agent.id, "Can I change my delivery address?")
    assert reply.startswith(OFFLINE_MARKER)
    assert '"Can I change my delivery address?"' in reply


async def test_rest_agent_in_strict_mode_sends_only_canned_text(
    offline_server: OfflineServer,
) -> None:
    from parlant.core.engines.alpha.canned_response_generator import DEFAULT_NO_MATCH_CANREP

    client = AsyncParlantClient(base_url=offline_server.base_url)
    agent = await client.agents.create(
        name="Offline strict agent", composition_mode="strict_canned"
    )
    reply = await _agent_reply(client, agent.id, "Can I change my delivery address?")
    # Strict mode never sends generated text, and the offline service picks no
    # template: Parlant's own no-match answer is what the customer gets.
    assert reply == DEFAULT_NO_MATCH_CANREP


async def test_a_later_message_in_the_session_gets_its_own_reply(
    offline_server: OfflineServer,
) -> None:
    client = AsyncParlantClient(base_url=offline_server.base_url)
    agent_id = offline_server.sdk_agent_id
    session = await client.sessions.create(agent_id=agent_id)
    first = await _agent_reply(client, agent_id, "first question", session.id)
    second = await _agent_reply(client, agent_id, "second question", session.id)
    assert '"first question"' in first
    assert '"second question"' in second
    assert "first question" not in second


async def test_sdk_agent_greets_offline(offline_server: OfflineServer) -> None:
    client = AsyncParlantClient(base_url=offline_server.base_url)
    session = await client.sessions.create(
        agent_id=offline_server.sdk_agent_id, allow_greeting=True
    )
    greeting = await _next_agent_message(client, session.id, 0)
    assert greeting == offline_reply(None)


async def test_evaluations_are_cached_in_the_offline_home_only(
    offline_server: OfflineServer,
) -> None:
    offline_cache = nlp_home(offline_server.root, "offline") / "evaluation_cache.json"
    assert offline_cache.is_file()
    collections = json.loads(offline_cache.read_text())
    # The startup guideline was evaluated (offline) and cached there.
    assert any(
        name.startswith("guideline_evaluations") and docs for name, docs in collections.items()
    )
    assert not (offline_server.root / "evaluation_cache.json").exists()


async def test_nothing_tried_to_reach_the_network(offline_server: OfflineServer) -> None:
    # Covers the whole startup (Parlant's OpenAI service would fetch tiktoken
    # files there) and the conversations of the tests above.
    assert offline_server.network_attempts == []


async def test_the_network_guard_does_catch_outside_connections() -> None:
    with refuse_network() as attempts:
        with pytest.raises(OSError, match="refused in test"):
            socket.create_connection(("192.0.2.1", 443), timeout=1)
        with pytest.raises(OSError, match="refused in test"):
            socket.getaddrinfo("openaipublic.blob.core.windows.net", 443)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            socket.create_connection(s.getsockname(), timeout=1).close()
    assert len(attempts) == 2
