"""Differential test: random documents, random nested filters and random operation sequences,
run on Parlant's TransientDocumentDatabase (the reference) and on ours; every answer must match.

The reference's ``matches_filters`` raises where a field is missing (KeyError) or two values
cannot be ordered (``"a" < 1``: TypeError). The oracle keeps the reference's own code and
gives it documents whose fields answer as MongoDB does there: a missing field equals nothing
(so ``$ne``/``$nin`` match it) and an unorderable comparison is false. Everything else —
Python equality across int/float/bool, string order, $and/$or, paging, sorting, update and
delete order — is the reference's, unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from parlant.adapters.db.transient import TransientDocumentCollection, TransientDocumentDatabase
from parlant.core.persistence.common import SortDirection
from parlant.core.persistence.document_database import BaseDocument, DocumentCollection

from parlant_router.snowflake import SnowflakeDocumentDatabase, SnowflakeEmulator
from tests.support.logger import RecordingLogger
from tests.support.loop_thread import LoopThread


class _Missing:
    """A missing field: equal to nothing, ordered against nothing."""

    def __eq__(self, other: object) -> bool:
        return False

    def __ne__(self, other: object) -> bool:
        return True

    def __lt__(self, other: object) -> bool:
        return False

    __le__ = __gt__ = __ge__ = __lt__
    __hash__ = None  # type: ignore[assignment]


class _Lenient:
    """A present field: Python's comparisons, false where Python raises TypeError."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return bool(self.value == other)

    def __ne__(self, other: object) -> bool:
        return bool(self.value != other)

    def _order(self, compare: Callable[[Any, Any], bool], other: Any) -> bool:
        try:
            return compare(self.value, other)
        except TypeError:
            return False

    def __lt__(self, other: Any) -> bool:
        return self._order(lambda a, b: a < b, other)

    def __le__(self, other: Any) -> bool:
        return self._order(lambda a, b: a <= b, other)

    def __gt__(self, other: Any) -> bool:
        return self._order(lambda a, b: a > b, other)

    def __ge__(self, other: Any) -> bool:
        return self._order(lambda a, b: a >= b, other)

    __hash__ = None  # type: ignore[assignment]


class OracleDocument(dict[str, Any]):
    """What ``matches_filters`` reads through ``candidate[field]``; dict.get and ** see plain values."""

    def __getitem__(self, key: str) -> Any:
        if not dict.__contains__(self, key):
            return _Missing()
        return _Lenient(dict.__getitem__(self, key))


STRINGS = st.sampled_from(["", "a", "ab", "b", "B", "é", "10", "2"])
NUMBERS = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([-1.5, 0.0, 0.5, 2.0, 2.5]),
    st.booleans(),
)
VALUES = st.one_of(STRINGS, NUMBERS)
MISSING = object()

FIELD_VALUES = {"s": STRINGS, "n": NUMBERS, "m": VALUES}
FILTER_FIELDS = st.sampled_from(["s", "n", "m", "id", "creation_utc"])
OPERATORS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]


@st.composite
def documents(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(0, 7))
    creation = 0
    result = []
    for index in range(count):
        # Non-decreasing creation times with ties; ids follow insertion order.
        creation += draw(st.integers(0, 1))
        document: dict[str, Any] = {
            "id": f"d{index:02d}",
            "version": "1.0.0",
            "creation_utc": f"2024-{creation:02d}",
        }
        for field, values in FIELD_VALUES.items():
            value = draw(st.one_of(st.just(MISSING), values))
            if value is not MISSING:
                document[field] = value
        result.append(document)
    return result


def leaf() -> st.SearchStrategy[dict[str, Any]]:
    comparison = st.builds(
        lambda field, op, value: {field: {op: value}},
        FILTER_FIELDS,
        st.sampled_from(OPERATORS),
        st.one_of(VALUES, st.sampled_from(["d01", "d03", "2024-01", "2024-02"])),
    )
    membership = st.builds(
        lambda field, op, values: {field: {op: values}},
        FILTER_FIELDS,
        st.sampled_from(["$in", "$nin"]),
        st.lists(VALUES, max_size=3),
    )
    two_ops = st.builds(
        lambda field, low, high: {field: {"$gte": low, "$lt": high}},
        st.sampled_from(["n", "m", "s"]),
        VALUES,
        VALUES,
    )
    two_fields = st.builds(
        lambda a, b: {**a, **b} if not set(a) & set(b) else a,
        comparison,
        comparison,
    )
    return st.one_of(comparison, membership, two_ops, two_fields, st.just({}))


FILTERS = st.recursive(
    leaf(),
    lambda children: st.builds(
        lambda op, operands: {op: operands},
        st.sampled_from(["$and", "$or"]),
        st.lists(children, max_size=3),
    ),
    max_leaves=6,
)

#: Parlant's most common write filter; ours may then write without reading first.
BY_ID = st.builds(lambda i: {"id": {"$eq": f"d{i:02d}"}}, st.integers(0, 7))
FILTERS_OR_ID = st.one_of(FILTERS, BY_ID)

UPDATES = st.dictionaries(st.sampled_from(["s", "n", "m"]), VALUES, min_size=1, max_size=2)
SORTS = st.lists(
    st.tuples(st.sampled_from(["n", "s", "m", "creation_utc"]), st.sampled_from(SortDirection)),
    min_size=1,
    max_size=2,
    unique_by=lambda pair: pair[0],
)

OPERATIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("find"),
            FILTERS,
            st.one_of(st.none(), st.integers(1, 3)),
            st.sampled_from(SortDirection),
        ),
        st.tuples(st.just("find_one"), FILTERS, st.one_of(st.none(), SORTS)),
        st.tuples(st.just("update_one"), FILTERS_OR_ID, UPDATES, st.booleans()),
        st.tuples(st.just("delete_one"), FILTERS_OR_ID),
    ),
    min_size=1,
    max_size=6,
)


@pytest.fixture(scope="module")
def ours(
    loop_thread: LoopThread, emulator: SnowflakeEmulator
) -> Iterator[SnowflakeDocumentDatabase]:
    database = SnowflakeDocumentDatabase(
        RecordingLogger(),
        emulator.connect_kwargs(),
        table_prefix=f"T{uuid.uuid4().hex[:10].upper()}_",
    )
    loop_thread.run(database.__aenter__())
    yield database
    loop_thread.run(database.__aexit__(None, None, None))


def rewrap(collection: TransientDocumentCollection[BaseDocument]) -> None:
    # update_one builds plain dicts ({**old, **params}); the oracle needs its wrapper back.
    collection._documents = [OracleDocument(d) for d in collection._documents]


async def compare(
    ours_db: SnowflakeDocumentDatabase,
    docs: list[dict[str, Any]],
    operations: list[tuple[Any, ...]],
) -> None:
    name = f"c{uuid.uuid4().hex[:8]}"
    theirs = cast(
        TransientDocumentCollection[BaseDocument],
        await TransientDocumentDatabase().create_collection(name, BaseDocument),
    )
    mine: DocumentCollection[BaseDocument] = await ours_db.create_collection(name, BaseDocument)
    for document in docs:
        await theirs.insert_one(cast(BaseDocument, OracleDocument(document)))
        await mine.insert_one(cast(BaseDocument, document))

    upserts = 0
    for operation in operations:
        kind, filters = operation[0], operation[1]
        context = f"{operation!r} on {docs!r}"
        if kind == "find":
            limit, direction = operation[2], operation[3]
            expected = await theirs.find(filters, limit=limit, sort_direction=direction)
            actual = await mine.find(filters, limit=limit, sort_direction=direction)
            assert actual == expected, context
            if expected.next_cursor is not None:
                expected = await theirs.find(
                    filters, limit=limit, cursor=expected.next_cursor, sort_direction=direction
                )
                actual = await mine.find(
                    filters, limit=limit, cursor=actual.next_cursor, sort_direction=direction
                )
                assert actual == expected, context
        elif kind == "find_one":
            sort = operation[2]
            try:
                expected_one = await theirs.find_one(filters, sort=sort)
            except TypeError:
                # Python cannot sort these values (missing or mixed types); ours orders
                # them as MongoDB does: any matching document is a fair first.
                matching = list(await theirs.find(filters))
                actual_one = await mine.find_one(filters, sort=sort)
                assert (actual_one is None) == (not matching), context
                assert actual_one is None or actual_one in matching, context
            else:
                assert await mine.find_one(filters, sort=sort) == expected_one, context
        elif kind == "update_one":
            params, upsert = cast(BaseDocument, operation[2]), operation[3]
            if upsert:
                # An upsert carries a whole new document; scoping the filter to its id keeps
                # creation order equal to insertion order (the adapter's "first" is the
                # earliest created, the reference's the earliest inserted).
                upserts += 1
                new_id = f"u{upserts:02d}"
                filters = {"$and": [filters, {"id": {"$eq": new_id}}]}
                params = cast(
                    BaseDocument,
                    {
                        "id": new_id,
                        "version": "1.0.0",
                        "creation_utc": f"2099-{upserts:02d}",
                        **params,
                    },
                )
            expected_update = await theirs.update_one(filters, params, upsert=upsert)
            rewrap(theirs)
            assert await mine.update_one(filters, params, upsert=upsert) == expected_update, context
        else:
            assert await mine.delete_one(filters) == await theirs.delete_one(filters), context

    assert list(await mine.find({})) == list(await theirs.find({}))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=False,
    phases=[Phase.explicit, Phase.generate],
)
@given(docs=documents(), operations=OPERATIONS)
def test_ours_answers_as_the_reference(
    loop_thread: LoopThread,
    ours: SnowflakeDocumentDatabase,
    docs: list[dict[str, Any]],
    operations: list[tuple[Any, ...]],
) -> None:
    loop_thread.run(compare(ours, docs, operations))


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.generate],
)
@given(docs=documents(), filters=st.lists(FILTERS, min_size=5, max_size=12))
def test_filters_select_as_the_reference(
    loop_thread: LoopThread,
    ours: SnowflakeDocumentDatabase,
    docs: list[dict[str, Any]],
    filters: list[dict[str, Any]],
) -> None:
    loop_thread.run(compare(ours, docs, [("find", f, None, SortDirection.ASC) for f in filters]))
