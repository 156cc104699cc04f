"""An NLP service for Parlant that needs no network, no key and no model.

``OfflineNLPService`` lets a Parlant server start and hold conversations on any
machine: every schematic prompt gets a deterministic, schema-valid answer
(see :mod:`parlant_router.nlp.answers`), the agent's reply is a placeholder
that says it was produced offline, embeddings are hashed n-grams
(:mod:`parlant_router.nlp.embedding`), and moderation lets everything through.
Guideline and journey matching are placeholders: nothing is ever matched.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from lagom import Container
from parlant.core.engines.alpha.prompt_builder import PromptBuilder
from parlant.core.loggers import Logger
from parlant.core.meter import Meter
from parlant.core.nlp.embedding import Embedder
from parlant.core.nlp.generation import (
    BaseSchematicGenerator,
    SchematicGenerationResult,
    SchematicGenerator,
    StreamingTextGenerator,
    T,
)
from parlant.core.nlp.generation_info import GenerationInfo, UsageInfo
from parlant.core.nlp.moderation import ModerationService, NoModeration
from parlant.core.nlp.service import (
    EmbedderHints,
    NLPService,
    SchematicGeneratorHints,
    StreamingTextGeneratorHints,
)
from parlant.core.nlp.tokenization import EstimatingTokenizer
from parlant.core.tracer import Tracer
from typing_extensions import override

from parlant_router.nlp.answers import answer, read_prompt
from parlant_router.nlp.embedding import OfflineEmbedder, OfflineTokenizer, estimate_tokens

_NO_HINTS: Mapping[str, Any] = MappingProxyType({})
# Parlant's signatures default hints to {}; shared empty instances, never mutated.
_NO_GENERATOR_HINTS = SchematicGeneratorHints()
_NO_STREAMING_HINTS = StreamingTextGeneratorHints()
_NO_EMBEDDER_HINTS = EmbedderHints()

#: Logged when the service is created.
STARTUP_NOTICE = (
    "Offline NLP service: no language model is configured. Agent replies are "
    "placeholders and no guideline or journey will ever match; choose a real NLP "
    "service for real conversations."
)

#: Reported as the model of every offline generation (it shows in Parlant's inspections).
OFFLINE_MODEL_ID = "offline/schema-filler"


class OfflineSchematicGenerator(BaseSchematicGenerator[T]):
    """Answers any schema offline. Create it as ``OfflineSchematicGenerator[Schema](...)``:
    Parlant reads the schema from the generic alias (``__orig_class__``)."""

    def __init__(self, logger: Logger, tracer: Tracer, meter: Meter) -> None:
        super().__init__(logger=logger, tracer=tracer, meter=meter, model_name=OFFLINE_MODEL_ID)
        self._tokenizer = OfflineTokenizer()

    @override
    async def do_generate(
        self,
        prompt: str | PromptBuilder,
        hints: Mapping[str, Any] = _NO_HINTS,
    ) -> SchematicGenerationResult[T]:
        start = time.perf_counter()
        content = answer(self.schema, read_prompt(prompt))
        # Built as every adapter does: build() also runs the builder's on_build
        # callbacks, which record the prompt for Parlant's inspections.
        prompt_text = prompt.build() if isinstance(prompt, PromptBuilder) else prompt
        return SchematicGenerationResult(
            content=content,
            info=GenerationInfo(
                schema_name=self.schema.__name__,
                model=self.id,
                duration=time.perf_counter() - start,
                usage=UsageInfo(
                    input_tokens=estimate_tokens(prompt_text),
                    output_tokens=estimate_tokens(content.model_dump_json()),
                ),
            ),
        )

    @property
    @override
    def id(self) -> str:
        return OFFLINE_MODEL_ID

    @property
    @override
    def max_tokens(self) -> int:
        return 128_000

    @property
    @override
    def tokenizer(self) -> EstimatingTokenizer:
        return self._tokenizer


class OfflineNLPService(NLPService):
    """Parlant ``NLPService`` with no network, no key and deterministic output.

    Same constructor as Parlant's own adapters (logger, tracer, meter), so it
    can be built from a container: ``OfflineNLPService.from_container(c)``.
    """

    def __init__(self, logger: Logger, tracer: Tracer, meter: Meter) -> None:
        self._logger = logger
        self._tracer = tracer
        self._meter = meter
        self._embedder = OfflineEmbedder()
        self._moderation = NoModeration()
        # Said once, at startup: a server that seems to work but only ever
        # answers placeholders must not be mistaken for a configured one.
        logger.warning(STARTUP_NOTICE)

    @classmethod
    def from_container(cls, container: Container) -> OfflineNLPService:
        """Build the service from a Parlant container (the ``nlp_service`` factory form)."""
        # Abstract keys are how Parlant's container is indexed; mypy disallows
        # type[Abstract] arguments in general, hence the ignores.
        return cls(
            container[Logger],  # type: ignore[type-abstract]
            container[Tracer],  # type: ignore[type-abstract]
            container[Meter],  # type: ignore[type-abstract]
        )

    @property
    @override
    def supports_streaming(self) -> bool:
        return False

    @override
    async def get_schematic_generator(
        self, t: type[T], hints: SchematicGeneratorHints = _NO_GENERATOR_HINTS
    ) -> SchematicGenerator[T]:
        return OfflineSchematicGenerator[t](  # type: ignore[valid-type]
            self._logger, self._tracer, self._meter
        )

    @override
    async def get_streaming_text_generator(
        self, hints: StreamingTextGeneratorHints = _NO_STREAMING_HINTS
    ) -> StreamingTextGenerator:
        raise NotImplementedError("the offline NLP service does not stream")

    @override
    async def get_embedder(self, hints: EmbedderHints = _NO_EMBEDDER_HINTS) -> Embedder:
        return self._embedder

    @override
    async def get_moderation_service(self) -> ModerationService:
        return self._moderation
