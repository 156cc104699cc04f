"""OfflineNLPService answers every schema Parlant registers, validly and deterministically."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from parlant.core.engines.alpha.canned_response_generator import (
    CannedResponseDraftSchema,
    CannedResponsePreambleSchema,
)
from parlant.core.engines.alpha.message_generator import MessageSchema
from parlant.core.engines.alpha.prompt_builder import BuiltInSection, PromptBuilder
from parlant.core.loggers import LogLevel, StdoutLogger
from parlant.core.meter import LocalMeter
from parlant.core.nlp.moderation import CustomerModerationContext
from parlant.core.sessions import Event, EventId, EventKind, EventSource
from parlant.core.tracer import LocalTracer
from pydantic import BaseModel

from parlant_router.nlp.answers import OFFLINE_MARKER, overridden_schema_names
from parlant_router.nlp.embedding import OfflineEmbedder
from parlant_router.nlp.offline import OFFLINE_MODEL_ID, STARTUP_NOTICE, OfflineNLPService


def _message_event(offset: int, source: EventSource, text: str) -> Event:
    return Event(
        id=EventId(f"e{offset}"),
        source=source,
        kind=EventKind.MESSAGE,
        creation_utc=datetime(2026, 1, 1, tzinfo=timezone.utc),
        offset=offset,
        trace_id="t",
        data={"message": text, "participant": {"display_name": source.value}},
        metadata={},
        deleted=False,
    )


def _conversation(*turns: tuple[EventSource, str]) -> PromptBuilder:
    builder = PromptBuilder()
    builder.add_interaction_history_for_message_generation(
        [_message_event(i, source, text) for i, (source, text) in enumerate(turns)]
    )
    return builder


async def _generate(service: OfflineNLPService, schema: type[Any], prompt: Any) -> Any:
    generator = await service.get_schematic_generator(schema)
    return await generator.generate(prompt, hints={"temperature": 0.5})


def test_parlant_registers_the_schemas_we_expect(
    all_registered_schemas: list[type[BaseModel]],
) -> None:
    # Guards the source reading in conftest: an empty or tiny list would make
    # the parametrized test below pass vacuously.
    names = {s.__name__ for s in all_registered_schemas}
    assert len(all_registered_schemas) >= 20
    assert {"MessageSchema", "CannedResponseDraftSchema", "CannedResponsePreambleSchema"} <= names


def test_every_overridden_schema_is_one_parlant_registers(
    all_registered_schemas: list[type[BaseModel]],
) -> None:
    assert overridden_schema_names() <= {s.__name__ for s in all_registered_schemas}


async def test_answers_each_registered_schema_validly_and_deterministically(
    service: OfflineNLPService, registered_schema: type[BaseModel]
) -> None:
    schema = registered_schema
    prompt = _conversation((EventSource.CUSTOMER, "Hi there, can you help?"))
    first = await _generate(service, schema, prompt)
    second = await _generate(
        service, schema, _conversation((EventSource.CUSTOMER, "Hi there, can you help?"))
    )

    assert isinstance(first.content, schema)
    assert schema.model_validate(first.content.model_dump()) == first.content
    assert first.content.model_dump() == second.content.model_dump()
    assert first.info.schema_name == schema.__name__
    assert first.info.model == OFFLINE_MODEL_ID
    assert first.info.usage.input_tokens > 0


async def test_generator_exposes_its_schema_as_parlant_reads_it(
    service: OfflineNLPService,
) -> None:
    generator = await service.get_schematic_generator(MessageSchema)
    assert generator.schema is MessageSchema
    assert generator.id == OFFLINE_MODEL_ID
    assert generator.max_tokens > 0


async def test_reply_quotes_the_last_customer_message(service: OfflineNLPService) -> None:
    prompt = _conversation(
        (EventSource.CUSTOMER, "first question"),
        (EventSource.AI_AGENT, "an answer"),
        (EventSource.CUSTOMER, "Where is my parcel?"),
    )
    draft = (await _generate(service, CannedResponseDraftSchema, prompt)).content
    assert draft.last_message_of_user == "Where is my parcel?"
    assert draft.response_body is not None
    assert draft.response_body.startswith(OFFLINE_MARKER)
    assert "Where is my parcel?" in draft.response_body
    assert "first question" not in draft.response_body

    message = (await _generate(service, MessageSchema, prompt)).content
    assert message.produced_reply is True
    assert message.revisions
    assert message.revisions[0].content == draft.response_body
    assert message.revisions[0].followed_all_instructions is True


async def test_reply_without_customer_message_still_says_it_is_offline(
    service: OfflineNLPService,
) -> None:
    draft = (await _generate(service, CannedResponseDraftSchema, PromptBuilder())).content
    assert draft.response_body is not None
    assert draft.response_body.startswith(OFFLINE_MARKER)


async def test_long_customer_message_is_quoted_in_part(service: OfflineNLPService) -> None:
    long_text = "word " * 200
    prompt = _conversation((EventSource.CUSTOMER, long_text))
    body = (await _generate(service, CannedResponseDraftSchema, prompt)).content.response_body
    assert body is not None
    assert "word word" in body
    assert len(body) < len(long_text)


async def test_preamble_is_one_of_the_offered_choices(service: OfflineNLPService) -> None:
    choices = ["Let me see", "Got it.", "Hello"]
    results = set()
    for order in (choices, list(reversed(choices))):
        prompt = _conversation((EventSource.CUSTOMER, "hi"))
        prompt.add_section(
            name="canned-response-strict-preamble-instructions",
            template="choose one",
            props={"preamble_choices": order},
        )
        result = await _generate(service, CannedResponsePreambleSchema, prompt)
        results.add(result.content.preamble)
    # The same choice whatever order Parlant shuffled them into.
    assert len(results) == 1
    assert results <= set(choices)


async def test_plain_text_prompt_is_read_too(service: OfflineNLPService) -> None:
    prompt = (
        "Interaction:\n"
        '{"event_kind": "message", "event_source": "user", '
        '"data": {"participant": "c", "message": "plain text question"}}\n'
    )
    body = (await _generate(service, CannedResponseDraftSchema, prompt)).content.response_body
    assert body is not None
    assert "plain text question" in body


async def test_no_streaming_no_moderation_and_offline_embedder(
    service: OfflineNLPService,
) -> None:
    assert service.supports_streaming is False
    with pytest.raises(NotImplementedError):
        await service.get_streaming_text_generator()
    assert isinstance(await service.get_embedder(), OfflineEmbedder)
    moderation = await service.get_moderation_service()
    check = await moderation.moderate_customer(
        CustomerModerationContext(session=None, message="anything at all")  # type: ignore[arg-type]
    )
    assert check.flagged is False
    assert check.tags == []


GUIDELINE_BATCH_SCHEMAS = [
    "GenericActionableGuidelineMatchesSchema",
    "GenericObservationalGuidelineMatchesSchema",
    "GenericPreviouslyAppliedActionableGuidelineMatchesSchema",
    "GenericPreviouslyAppliedActionableCustomerDependentGuidelineMatchesSchema",
]


@pytest.mark.parametrize("schema_name", GUIDELINE_BATCH_SCHEMAS)
async def test_matching_batches_check_every_listed_guideline_and_match_none(
    service: OfflineNLPService,
    all_registered_schemas: list[type[BaseModel]],
    schema_name: str,
) -> None:
    (schema,) = [s for s in all_registered_schemas if s.__name__ == schema_name]
    prompt = _conversation((EventSource.CUSTOMER, "hello"))
    prompt.add_section(
        name=BuiltInSection.GUIDELINES,
        template="{guidelines_text}",
        props={"guidelines_text": "...", "guidelines": [{"id": "a"}, {"id": "b"}, {"id": "c"}]},
    )
    checks = (await _generate(service, schema, prompt)).content.checks
    # Parlant numbers the guidelines of a batch from 1 and looks each id up.
    assert [c.guideline_id for c in checks] == ["1", "2", "3"]
    for check in checks:
        assert not any(v is True for v in check.model_dump().values())

    without_guidelines = (await _generate(service, schema, _conversation())).content.checks
    assert without_guidelines == []


def test_says_at_creation_that_it_is_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    tracer = LocalTracer()
    logger = StdoutLogger(tracer, LogLevel.WARNING)
    warnings: list[str] = []
    monkeypatch.setattr(logger, "warning", warnings.append)
    OfflineNLPService(logger, tracer, LocalMeter(logger))
    assert warnings == [STARTUP_NOTICE]
