"""The Router builds every store on every backend type with Parlant's real store classes.

Each test runs Parlant's own container (`parlant.bin.server.setup_container`) through
`Router.configure_container`, uses the stores through their Parlant interfaces, closes
everything, and opens it again as a restarted server would (a fresh container: fresh
id counters, fresh in-memory vectors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from parlant_router.errors import RouterError
from parlant_router.stores.catalog import STORE_NAMES, STORES

BACKENDS: dict[str, Any] = {
    "json": lambda tmp: {"type": "json", "directory": str(tmp / "files")},
    "snowflake-emulator": lambda tmp: {"type": "snowflake", "emulator": str(tmp / "sf")},
    "custom": lambda tmp: {
        "type": "custom",
        "factory": "tests.router.factories:json_database",
        "options": {"directory": str(tmp / "custom")},
    },
    "transient": lambda tmp: {"type": "transient"},
}
DURABLE = {"json", "snowflake-emulator", "custom"}


def _all_stores_on(tmp_path: Path, kind: str) -> dict[str, Any]:
    return {
        "backends": {"main": BACKENDS[kind](tmp_path)},
        "stores": dict.fromkeys(STORE_NAMES, "main"),
    }


async def _populate(c: Any) -> dict[str, Any]:
    from parlant.core.agents import AgentStore
    from parlant.core.canned_responses import CannedResponseStore
    from parlant.core.capabilities import CapabilityStore
    from parlant.core.context_variables import ContextVariableStore
    from parlant.core.customers import CustomerStore
    from parlant.core.evaluations import EvaluationStore
    from parlant.core.glossary import GlossaryStore
    from parlant.core.guideline_tool_associations import GuidelineToolAssociationStore
    from parlant.core.guidelines import GuidelineStore
    from parlant.core.journeys import JourneyStore
    from parlant.core.relationships import (
        RelationshipEntity,
        RelationshipEntityKind,
        RelationshipKind,
        RelationshipStore,
    )
    from parlant.core.sessions import EventKind, EventSource, SessionStore
    from parlant.core.tags import TagStore
    from parlant.core.tools import ToolId

    tag = await c[TagStore].create_tag(name="vip")
    agent = await c[AgentStore].create_agent(name="Ada", description="billing", tags=[tag.id])
    customer = await c[CustomerStore].create_customer(
        name="Bob", extra={"tier": "gold"}, tags=[tag.id]
    )
    session = await c[SessionStore].create_session(customer_id=customer.id, agent_id=agent.id)
    event = await c[SessionStore].create_event(
        session_id=session.id,
        source=EventSource.CUSTOMER,
        kind=EventKind.MESSAGE,
        trace_id="t-1",
        data={"message": "hello"},
    )
    variable = await c[ContextVariableStore].create_variable(name="plan", description="plan")
    await c[ContextVariableStore].update_value(variable.id, customer.id, {"plan": "pro"})
    g1 = await c[GuidelineStore].create_guideline(
        condition="asks for a refund", action="help", tags=[tag.id]
    )
    g2 = await c[GuidelineStore].create_guideline(condition="is angry", action="apologize")
    relationship = await c[RelationshipStore].create_relationship(
        source=RelationshipEntity(id=g1.id, kind=RelationshipEntityKind.GUIDELINE),
        target=RelationshipEntity(id=g2.id, kind=RelationshipEntityKind.GUIDELINE),
        kind=RelationshipKind.ENTAILMENT,
    )
    association = await c[GuidelineToolAssociationStore].create_association(
        g1.id, ToolId(service_name="svc", tool_name="refund")
    )
    evaluations = await c[EvaluationStore].list_evaluations()
    journey = await c[JourneyStore].create_journey(
        title="Refund flow", description="Move money back to a card", conditions=[g1.id]
    )
    term = await c[GlossaryStore].create_term(name="Invoice", description="A bill we send")
    canned = await c[CannedResponseStore].create_canned_response(value="Your refund is on its way")
    capability = await c[CapabilityStore].create_capability(
        title="Refunds", description="Can refund card payments"
    )
    return {
        "tag": tag,
        "agent": agent,
        "customer": customer,
        "session": session,
        "event": event,
        "variable": variable,
        "guidelines": sorted([g1, g2], key=lambda g: g.id),
        "relationship": relationship,
        "association": association,
        "evaluations": evaluations,
        "journey": journey,
        "term": term,
        "canned": canned,
        "capability": capability,
    }


async def _read_back(c: Any, created: dict[str, Any]) -> dict[str, Any]:
    from parlant.core.agents import AgentStore
    from parlant.core.canned_responses import CannedResponseStore
    from parlant.core.capabilities import CapabilityStore
    from parlant.core.context_variables import ContextVariableStore
    from parlant.core.customers import CustomerStore
    from parlant.core.glossary import GlossaryStore
    from parlant.core.guideline_tool_associations import GuidelineToolAssociationStore
    from parlant.core.guidelines import GuidelineStore
    from parlant.core.journeys import JourneyStore
    from parlant.core.relationships import RelationshipStore
    from parlant.core.sessions import SessionStore
    from parlant.core.tags import TagStore

    value = await c[ContextVariableStore].read_value(created["variable"].id, created["customer"].id)
    sessions = [s for s in await c[SessionStore].list_sessions() if s.id == created["session"].id]
    return {
        "tags": list(await c[TagStore].list_tags()),
        "agents": list(await c[AgentStore].list_agents()),
        "customers": [
            x for x in await c[CustomerStore].list_customers() if x.id == created["customer"].id
        ],
        "sessions": sessions,
        "events": list(await c[SessionStore].list_events(sessions[0].id)) if sessions else [],
        "variables": list(await c[ContextVariableStore].list_variables()),
        "value": value.data if value else None,
        "guidelines": sorted(await c[GuidelineStore].list_guidelines(), key=lambda g: g.id),
        "relationships": list(await c[RelationshipStore].list_relationships()),
        "associations": list(await c[GuidelineToolAssociationStore].list_associations()),
        "journeys": list(await c[JourneyStore].list_journeys()),
        "terms": list(await c[GlossaryStore].list_terms()),
        "canned": list(await c[CannedResponseStore].list_canned_responses()),
        "capabilities": list(await c[CapabilityStore].list_capabilities()),
        # The vector halves: similarity queries must still find each entity.
        "found_journeys": [
            j.id
            for j in await c[JourneyStore].find_relevant_journeys(
                "refund money to my card", available_journeys=[created["journey"]]
            )
        ],
        "found_terms": [
            t.id
            for t in await c[GlossaryStore].find_relevant_terms(
                "invoice", available_terms=[created["term"]]
            )
        ],
        "found_capabilities": [
            x.id
            for x in await c[CapabilityStore].find_relevant_capabilities(
                "refund", available_capabilities=[created["capability"]], max_count=3
            )
        ],
    }


@pytest.mark.parametrize("kind", list(BACKENDS))
async def test_every_store_on_each_backend(
    kind: str, tmp_path: Path, write_config: Any, routed: Any
) -> None:
    loaded = write_config(_all_stores_on(tmp_path, kind))
    async with routed(loaded) as (router, c):
        for name, spec in STORES.items():
            interface = _cls(spec.interface)
            implementation = _cls(spec.implementation)
            store = c[interface]
            assert type(store) is _cls(spec.built_as or spec.implementation), name
            assert isinstance(store, implementation)
            assert c[implementation] is store
            assert router.stores[name] is store
        created = await _populate(c)
        before = await _read_back(c, created)

    assert before["found_journeys"] == [created["journey"].id]
    assert before["found_terms"] == [created["term"].id]
    assert before["found_capabilities"] == [created["capability"].id]
    assert before["value"] == {"plan": "pro"}
    tagged = [g for g in before["guidelines"] if g.tags]
    assert [g.tags for g in tagged] == [[created["tag"].id]]

    async with routed(loaded) as (_, c):
        after = await _read_back(c, created)
    if kind in DURABLE:
        assert after == before
    else:
        assert after["agents"] == [] and after["journeys"] == [] and after["events"] == []


def test_sessions_are_built_with_per_session_locks() -> None:
    from parlant.core.sessions import SessionDocumentStore

    from parlant_router.stores.session_store import ConcurrentSessionDocumentStore

    assert _cls(STORES["sessions"].built_as or "") is ConcurrentSessionDocumentStore
    assert issubclass(ConcurrentSessionDocumentStore, SessionDocumentStore)


def _cls(path: str) -> Any:
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


async def test_unrouted_stores_keep_parlants_default(
    tmp_path: Path, write_config: Any, routed: Any
) -> None:
    from parlant.core.agents import AgentStore
    from parlant.core.sessions import SessionStore

    loaded = write_config(
        {
            "backends": {"files": {"type": "json", "directory": str(tmp_path / "f")}},
            "stores": {"agents": "files"},
        }
    )
    async with routed(loaded) as (router, c):
        assert list(router.stores) == ["agents"]
        assert AgentStore in c.defined_types
        # parlant.bin.server defines the unrouted stores later, from its own defaults.
        assert SessionStore not in c.defined_types
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["agents.json"]


async def test_events_emitted_by_the_engine_land_in_the_routed_session_store(
    tmp_path: Path, write_config: Any, routed: Any
) -> None:
    from parlant.core.agents import AgentStore
    from parlant.core.customers import CustomerId
    from parlant.core.emissions import EventEmitterFactory
    from parlant.core.sessions import EventKind, SessionStore

    loaded = write_config(
        {
            "backends": {"files": {"type": "json", "directory": str(tmp_path / "f")}},
            "stores": {"sessions": "files", "agents": "files"},
        }
    )
    async with routed(loaded) as (router, c):
        agent = await c[AgentStore].create_agent(name="Ada")
        session = await c[SessionStore].create_session(CustomerId("guest"), agent.id)
        emitter = await c[EventEmitterFactory].create_event_emitter(agent.id, session.id)
        await emitter.emit_message_event(trace_id="t", data="emitted through the factory")
        events = await router.stores["sessions"].list_events(session.id, kinds=[EventKind.MESSAGE])
        assert [e.data["message"] for e in events] == ["emitted through the factory"]


async def test_startup_code_creating_entities_again_is_idempotent(
    tmp_path: Path, write_config: Any, routed: Any
) -> None:
    from parlant.core.agents import AgentStore
    from parlant.core.guidelines import GuidelineStore
    from parlant.core.journeys import JourneyStore

    loaded = write_config(
        {
            "backends": {"wh": {"type": "snowflake", "emulator": str(tmp_path / "sf")}},
            "stores": {"agents": "wh", "guidelines": "wh", "journeys": "wh"},
        }
    )

    async def startup(c: Any) -> tuple[str, str, str]:
        # What an SDK program does at every start.
        agent = await c[AgentStore].create_agent(name="Ada", description="billing")
        guideline = await c[GuidelineStore].create_guideline(condition="c", action="a")
        journey = await c[JourneyStore].create_journey(
            title="Refunds", description="refund flow", conditions=[guideline.id]
        )
        return agent.id, guideline.id, journey.id

    async with routed(loaded) as (_, c):
        first = await startup(c)
    async with routed(loaded) as (_, c):
        second = await startup(c)
        assert second == first
        assert [a.id for a in await c[AgentStore].list_agents()] == [first[0]]
        assert [g.id for g in await c[GuidelineStore].list_guidelines()] == [first[1]]
        journeys = await c[JourneyStore].list_journeys()
        assert [j.id for j in journeys] == [first[2]]
        found = await c[JourneyStore].find_relevant_journeys("refund", journeys)
        assert [j.id for j in found] == [first[2]]
        # One vector per journey: rebuilt at startup, not indexed again by the startup code.
        vectors = await c[JourneyStore]._vector_collection.find({})
        assert [v["journey_id"] for v in vectors] == [first[2]]
        # A changed entity is a new one (the key is the content's id).
        other = await c[AgentStore].create_agent(name="Ada", description="support")
        assert other.id != first[0]
        assert len(await c[AgentStore].list_agents()) == 2


async def test_stores_on_one_snowflake_backend_share_its_connection_pool(
    tmp_path: Path, write_config: Any, routed: Any
) -> None:
    # Seven stores (opened concurrently) on a backend of pool_size 2: the emulator sees at
    # most 2 logged-in sessions. With a pool per store it would see at least seven.
    import fakesnow.server
    from parlant.core.sessions import SessionStore

    loaded = write_config(
        {
            "backends": {
                "wh": {"type": "snowflake", "emulator": str(tmp_path / "sf"), "pool_size": 2}
            },
            "stores": dict.fromkeys(STORE_NAMES[:7], "wh"),
        }
    )
    before = set(fakesnow.server.sessions)
    async with routed(loaded) as (_, c):
        opened = set(fakesnow.server.sessions) - before
        assert 1 <= len(opened) <= 2
        session = await c[SessionStore].create_session(customer_id="c", agent_id="a")
        assert (await c[SessionStore].read_session(session.id)).id == session.id
        assert len(set(fakesnow.server.sessions) - before) <= 2


async def test_durable_vectors_over_transient_documents_are_refused(
    tmp_path: Path, write_config: Any, routed: Any
) -> None:
    loaded = write_config(
        {
            "backends": {"memory": {"type": "transient"}},
            "stores": {"journeys": {"backend": "memory", "vector": "qdrant"}},
        }
    )
    with pytest.raises(RouterError, match=r"stores\.journeys: vector 'qdrant' keeps vectors"):
        async with routed(loaded):
            pass


async def test_a_failed_start_closes_what_was_opened(
    tmp_path: Path, write_config: Any, routed: Any
) -> None:
    from parlant_router.snowflake import SnowflakeEmulator

    emulator_dir = tmp_path / "sf"
    loaded = write_config(
        {
            "backends": {
                "wh": {"type": "snowflake", "emulator": str(emulator_dir)},
                "broken": {"type": "custom", "factory": "tests.router.factories:broken"},
            },
            "stores": {"sessions": "wh", "customers": "broken"},
        }
    )
    with pytest.raises(
        RouterError, match=r"backends\.broken\.factory: .*failed for store 'customers'"
    ):
        async with routed(loaded):
            pass
    # The emulator was stopped: its database files can be opened again in this process.
    with SnowflakeEmulator(emulator_dir) as params:
        assert params["port"] > 0


async def test_custom_factories_sync_async_and_wrong_type(
    tmp_path: Path, write_config: Any, routed: Any
) -> None:
    from parlant.core.tags import TagStore

    for factory in ("json_database", "async_json_database"):
        loaded = write_config(
            {
                "backends": {
                    "mine": {
                        "type": "custom",
                        "factory": f"tests.router.factories:{factory}",
                        "options": {"directory": str(tmp_path / factory)},
                    }
                },
                "stores": {"tags": "mine"},
            }
        )
        async with routed(loaded) as (_, c):
            await c[TagStore].create_tag(name="x")
        assert (tmp_path / factory / "tags.json").is_file()

    loaded = write_config(
        {
            "backends": {"mine": {"type": "custom", "factory": "tests.router.factories:not_a_db"}},
            "stores": {"tags": "mine"},
        }
    )
    with pytest.raises(RouterError, match="returned dict, not a DocumentDatabase"):
        async with routed(loaded):
            pass


async def test_mongodb_without_pymongo_says_what_to_install(
    tmp_path: Path, write_config: Any, routed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pymongo", None)  # as if the extra were not installed
    loaded = write_config(
        {
            "backends": {"m": {"type": "mongodb", "url": "mongodb://u:hunter2@127.0.0.1:1"}},
            "stores": {"customers": "m"},
        }
    )
    with pytest.raises(RouterError) as raised:
        async with routed(loaded):
            pass
    assert "pip install 'parlant-router[mongodb]'" in str(raised.value)
    assert "hunter2" not in str(raised.value)


async def test_router_configures_one_container_and_only_while_open(
    tmp_path: Path, write_config: Any, routed: Any
) -> None:
    from parlant_router.router import Router

    loaded = write_config(
        {
            "backends": {"files": {"type": "json", "directory": str(tmp_path / "f")}},
            "stores": {"tags": "files"},
        }
    )
    with pytest.raises(RouterError, match="open the Router first"):
        await Router(loaded).configure_container(object())  # type: ignore[arg-type]
    async with routed(loaded) as (router, c):
        with pytest.raises(RouterError, match="one container"):
            await router.configure_container(c)


async def test_durable_vectors_keep_journeys_findable_across_a_restart(
    tmp_path: Path, write_config: Any, routed: Any
) -> None:
    # Documents in JSON, vectors in Parlant's qdrant adapter (local, on disk): both durable.
    from parlant.core.journeys import JourneyStore

    loaded = write_config(
        {
            "backends": {"files": {"type": "json", "directory": str(tmp_path / "f")}},
            "stores": {
                "journeys": {
                    "backend": "files",
                    "vector": "qdrant",
                    "vector_directory": str(tmp_path / "qdrant"),
                }
            },
        }
    )
    async with routed(loaded) as (_, c):
        journey = await c[JourneyStore].create_journey(
            title="Refund flow", description="Move money back to a card", conditions=[]
        )
    assert any((tmp_path / "qdrant").iterdir())
    async with routed(loaded) as (_, c):
        journeys = await c[JourneyStore].list_journeys()
        found = await c[JourneyStore].find_relevant_journeys("refund to my card", journeys)
        assert [j.id for j in found] == [journey.id]
        # Durable vectors are used as they are: no mirror collection on the document side.
        assert "vectors_journeys" not in (tmp_path / "f" / "journeys.json").read_text()
