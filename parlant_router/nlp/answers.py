"""What the offline NLP service answers to each of Parlant's prompts.

Every schema gets the filler's neutral instance (no guideline applies, no tool
runs, nothing is ambiguous, journeys are left); guideline-matching batches get
an explicit "does not apply" for each guideline they list. A few fields decide
whether the engine sends anything at all; those are set here so that a
customer message gets a reply that says plainly it was produced offline.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from parlant.core.engines.alpha.prompt_builder import BuiltInSection, PromptBuilder
from pydantic import BaseModel

from parlant_router.nlp.filler import fill_model

M = TypeVar("M", bound=BaseModel)

#: Every offline reply starts with this, so nobody mistakes it for a model's answer.
OFFLINE_MARKER = "[offline]"

# Long customer messages are quoted only in part: the reply must stay readable.
_MAX_QUOTE = 200

_PREAMBLE_SECTIONS = (
    "canned-response-fluid-preamble-instructions",
    "canned-response-strict-preamble-instructions",
)


@dataclass(frozen=True)
class PromptFacts:
    """The little the offline service reads from a prompt."""

    customer_message: str | None
    preamble_choices: tuple[str, ...]
    #: How many guidelines a matching batch lists (Parlant numbers them from 1).
    guideline_count: int = 0


def read_prompt(prompt: str | PromptBuilder) -> PromptFacts:
    """Extract the last customer message and any preamble choices from ``prompt``."""
    if isinstance(prompt, PromptBuilder):
        return PromptFacts(
            customer_message=_last_customer_message(_interaction_events(prompt)),
            preamble_choices=_preamble_choices(prompt),
            guideline_count=_guideline_count(prompt),
        )
    # A plain-text prompt: events are rendered one JSON object per line.
    return PromptFacts(
        customer_message=_last_customer_message(
            line.strip() for line in prompt.splitlines() if line.strip().startswith("{")
        ),
        preamble_choices=(),
    )


def offline_reply(customer_message: str | None) -> str:
    """The placeholder reply to ``customer_message``."""
    if customer_message is None:
        return (
            f"{OFFLINE_MARKER} Hello. This reply was produced by the offline NLP service: "
            "no language model is configured."
        )
    quoted = " ".join(customer_message.split())
    if len(quoted) > _MAX_QUOTE:
        quoted = quoted[: _MAX_QUOTE - 3] + "..."
    return (
        f'{OFFLINE_MARKER} I received your message: "{quoted}". This reply was produced '
        "by the offline NLP service: no language model is configured."
    )


def answer(schema: type[M], facts: PromptFacts) -> M:
    """The offline answer of type ``schema`` to a prompt described by ``facts``."""
    overrides = _OVERRIDES.get(schema.__name__)
    return fill_model(schema, overrides(schema, facts) if overrides else None)


def overridden_schema_names() -> frozenset[str]:
    """Names of the schemas whose answer is more than the filler's neutral instance."""
    return frozenset(_OVERRIDES)


def _no_guideline_applies(schema: type[BaseModel], facts: PromptFacts) -> dict[str, Any]:
    # One check per listed guideline, each saying it does not apply (the
    # filler's False): an empty list would make Parlant warn on every message.
    (item,) = typing.get_args(schema.model_fields["checks"].annotation)
    return {
        "checks": [
            fill_model(item, {"guideline_id": str(i)}).model_dump()
            for i in range(1, facts.guideline_count + 1)
        ]
    }


def _message(schema: type[BaseModel], facts: PromptFacts) -> dict[str, Any]:
    # Fluid composition of agents created over REST.
    return {
        "last_message_of_customer": facts.customer_message,
        "produced_reply": True,
        "guidelines": [],
        "insights": [],
        "revisions": [
            {
                "revision_number": 1,
                "content": offline_reply(facts.customer_message),
                "instructions_followed": [],
                "instructions_broken": [],
                "is_repeat_message": False,
                "followed_all_instructions": True,
            }
        ],
    }


def _canned_response_draft(schema: type[BaseModel], facts: PromptFacts) -> dict[str, Any]:
    # SDK agents compose through canned-response generation, fluid mode included:
    # with no matching template the draft is what gets sent.
    return {
        "last_message_of_user": facts.customer_message,
        "guidelines": [],
        "response_body": offline_reply(facts.customer_message),
    }


def _canned_response_revision(schema: type[BaseModel], facts: PromptFacts) -> dict[str, Any]:
    # Composited mode restyles the draft: keep it as it is.
    return {"revised_canned_response": offline_reply(facts.customer_message)}


def _canned_response_preamble(schema: type[BaseModel], facts: PromptFacts) -> dict[str, Any]:
    # Strict mode drops any preamble not in the list; the smallest choice is
    # stable whatever order Parlant shuffled them into.
    if facts.preamble_choices:
        return {"preamble": min(facts.preamble_choices)}
    return {"preamble": "Got it."}


def _journey_next_step(schema: type[BaseModel], facts: PromptFacts) -> dict[str, Any]:
    # "None" is Parlant's code for leaving the journey.
    return {"journey_continues": False, "applied_condition_id": "None"}


_OVERRIDES: Mapping[str, Callable[[type[BaseModel], PromptFacts], dict[str, Any]]] = {
    "GenericActionableGuidelineMatchesSchema": _no_guideline_applies,
    "GenericObservationalGuidelineMatchesSchema": _no_guideline_applies,
    "GenericPreviouslyAppliedActionableGuidelineMatchesSchema": _no_guideline_applies,
    "GenericPreviouslyAppliedActionableCustomerDependentGuidelineMatchesSchema": _no_guideline_applies,
    "MessageSchema": _message,
    "CannedResponseDraftSchema": _canned_response_draft,
    "CannedResponseRevisionSchema": _canned_response_revision,
    "CannedResponsePreambleSchema": _canned_response_preamble,
    "JourneyNextStepSelectionSchema": _journey_next_step,
}


def _interaction_events(prompt: PromptBuilder) -> list[str]:
    section = prompt.sections.get(BuiltInSection.INTERACTION_HISTORY)
    if section is None:
        return []
    events = section.props.get("interaction_events", [])
    return [e for e in events if isinstance(e, str)]


def _last_customer_message(events: Iterable[str]) -> str | None:
    message: str | None = None
    for raw in events:
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        data = event.get("data")
        if (
            event.get("event_kind") == "message"
            and event.get("event_source") == "user"
            and isinstance(data, dict)
            and isinstance(data.get("message"), str)
        ):
            message = data["message"]
    return message


def _guideline_count(prompt: PromptBuilder) -> int:
    section = prompt.sections.get(BuiltInSection.GUIDELINES)
    if section is None:
        return 0
    guidelines = section.props.get("guidelines", [])
    return len(guidelines) if isinstance(guidelines, list) else 0


def _preamble_choices(prompt: PromptBuilder) -> tuple[str, ...]:
    for name in _PREAMBLE_SECTIONS:
        section = prompt.sections.get(name)
        if section is not None:
            choices = section.props.get("preamble_choices", [])
            return tuple(str(c) for c in choices)
    return ()
