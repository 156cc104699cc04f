"""The catalog of Parlant stores that parlant.yaml can route.

Pure data: importing this module must not import Parlant (the config layer and
`parlant-router routes` use it and must stay fast). Classes are named by import
path and resolved by the router when it builds the container.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetentionRule:
    """What `stores.<store>.retention` deletes: documents of `collection` whose last activity
    is older than the retention, with the documents of `dependents` that name them."""

    collection: str
    """The collection whose documents expire (sessions, evaluations)."""
    dependents: tuple[tuple[str, str], ...]
    """(collection, field holding the expiring document's id): deleted with it."""
    activity: str | None = None
    """A dependent collection whose newest `creation_utc` is the document's last activity
    (a session's events); None: the document's own `creation_utc` is."""


@dataclass(frozen=True)
class StoreSpec:
    """One routable Parlant store."""

    name: str
    """The key under `stores:` in parlant.yaml."""
    interface: str
    """`module:Class` of the abstract store the engine asks the container for."""
    implementation: str
    """`module:Class` of Parlant's document- or vector-backed implementation."""
    collections: tuple[str, ...]
    """Document collections the implementation opens (a `metadata` collection is added by Parlant)."""
    vector_backed: bool = False
    """True when the store also keeps embeddings in a VectorDatabase."""
    vector_collections: tuple[str, ...] = ()
    """The vector collections the implementation opens (their rows live in the document
    collections `vectors_<name>` when the vectors are kept on the store's backend)."""
    built_as: str | None = None
    """`module:Class` the router builds instead of `implementation` (a subclass of it, with
    the same constructor); it is still registered under `interface` and `implementation`."""
    content_ids: bool = True
    """True when Parlant derives the store's ids from content (IdGenerator checksums), so
    that a restart re-creating the same entity re-creates the same id; False where ids are
    random (sessions and events, evaluations)."""
    cache_partitions: Mapping[str, str | None] = field(default_factory=dict)
    """The collections the read cache may keep, each with its partition field (None: the
    collection is kept whole). Collections that grow with traffic are partitioned by the
    field Parlant's queries pin; those that grow with configuration are kept whole."""
    retention: RetentionRule | None = None
    """What a `retention` of the store deletes; None: the store takes no retention."""


def _spec(
    name: str,
    module: str,
    interface: str,
    implementation: str,
    collections: tuple[str, ...],
    vector_collections: tuple[str, ...] = (),
    content_ids: bool = True,
    built_as: str | None = None,
    partitions: Mapping[str, str] | None = None,
    cached: bool = True,
    retention: RetentionRule | None = None,
) -> StoreSpec:
    """A StoreSpec of `parlant.core.<module>`. With `cached`, every collection is cacheable:
    the ones in `partitions` by their field, the others whole."""
    partition_fields = dict(partitions or {})
    return StoreSpec(
        name=name,
        interface=f"parlant.core.{module}:{interface}",
        implementation=f"parlant.core.{module}:{implementation}",
        collections=collections,
        vector_backed=bool(vector_collections),
        vector_collections=vector_collections,
        content_ids=content_ids,
        built_as=built_as,
        cache_partitions=({c: partition_fields.get(c) for c in collections} if cached else {}),
        retention=retention,
    )


STORES: dict[str, StoreSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "sessions",
            "sessions",
            "SessionStore",
            "SessionDocumentStore",
            ("sessions", "events"),
            content_ids=False,
            partitions={"sessions": "id", "events": "session_id"},
            # Parlant's store with one lock per session instead of one for the whole store.
            built_as="parlant_router.stores.session_store:ConcurrentSessionDocumentStore",
            retention=RetentionRule("sessions", (("events", "session_id"),), activity="events"),
        ),
        _spec(
            "customers",
            "customers",
            "CustomerStore",
            "CustomerDocumentStore",
            ("customers", "customer_tag_associations"),
            partitions={"customers": "id", "customer_tag_associations": "customer_id"},
        ),
        _spec(
            "context_variables",
            "context_variables",
            "ContextVariableStore",
            "ContextVariableDocumentStore",
            ("variables", "variable_tag_associations", "values"),
            # Values are read by (variable, key); a key is a customer, a tag or DEFAULT.
            partitions={"values": "key"},
        ),
        _spec("agents", "agents", "AgentStore", "AgentDocumentStore", ("agents", "agent_tags")),
        _spec("tags", "tags", "TagStore", "TagDocumentStore", ("tags",)),
        _spec(
            "guidelines",
            "guidelines",
            "GuidelineStore",
            "GuidelineDocumentStore",
            ("guidelines", "guideline_tag_associations"),
        ),
        _spec(
            "relationships",
            "relationships",
            "RelationshipStore",
            "RelationshipDocumentStore",
            ("relationships",),
        ),
        _spec(
            "guideline_tool_associations",
            "guideline_tool_associations",
            "GuidelineToolAssociationStore",
            "GuidelineToolAssociationDocumentStore",
            ("associations",),
        ),
        _spec(
            "evaluations",
            "evaluations",
            "EvaluationStore",
            "EvaluationDocumentStore",
            ("evaluations", "evaluation_tag_associations"),
            content_ids=False,
            # Not read by turns, and it grows with every evaluation.
            cached=False,
            retention=RetentionRule(
                "evaluations", (("evaluation_tag_associations", "evaluation_id"),)
            ),
        ),
        _spec(
            "journeys",
            "journeys",
            "JourneyStore",
            "JourneyVectorStore",
            ("journeys", "journey_nodes", "journey_edges", "journey_tags", "journey_conditions"),
            vector_collections=("journeys",),
        ),
        _spec(
            "glossary",
            "glossary",
            "GlossaryStore",
            "GlossaryVectorStore",
            ("glossary", "glossary_tags"),
            vector_collections=("glossary",),
        ),
        _spec(
            "canned_responses",
            "canned_responses",
            "CannedResponseStore",
            "CannedResponseVectorStore",
            ("canned_responses", "canned_response_tag_associations"),
            vector_collections=("canned_responses",),
        ),
        _spec(
            "capabilities",
            "capabilities",
            "CapabilityStore",
            "CapabilityVectorStore",
            ("capabilities", "capability_tags"),
            vector_collections=("capabilities",),
        ),
    )
}

STORE_NAMES: tuple[str, ...] = tuple(STORES)
VECTOR_STORE_NAMES: tuple[str, ...] = tuple(n for n, s in STORES.items() if s.vector_backed)
RETAINED_STORE_NAMES: tuple[str, ...] = tuple(n for n, s in STORES.items() if s.retention)
"""The stores that take a `retention`."""
