"""Parlant's SDK with the stores routed by parlant.yaml.

    python examples/sdk/main.py [--set key=value ...]

The Router owns the databases (and the emulator); p.Server gets its
`configure_container`. Server settings are taken from the file's `server:` section
here, but any p.Server arguments work. `Router.from_file(...).server()` is the short
form of the same thing.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from parlant_router import Router
from parlant_router.nlp import bind_parlant_home, nlp_home, resolve_nlp_service

CONFIG = Path(__file__).with_name("parlant.yaml")


async def main(overrides: list[str]) -> None:
    router = Router.from_file(CONFIG, overrides=overrides)
    settings = router.loaded.config.server
    # Parlant reads PARLANT_HOME when it is first imported: bind it before that.
    bind_parlant_home(nlp_home(settings.home, settings.nlp))
    import parlant.sdk as p

    async with (
        router,
        p.Server(
            host=settings.host,
            port=settings.port,
            tool_service_port=settings.tool_service_port,
            nlp_service=resolve_nlp_service(settings.nlp),
            migrate=settings.migrate,
            configure_container=router.configure_container,
        ) as server,
    ):
        # Runs at every start; with agents/guidelines/journeys routed to a durable
        # backend the second start finds them stored and creates nothing new.
        agent = await server.create_agent(
            name="Otto", description="Answers questions about orders and refunds"
        )
        await agent.create_guideline(
            condition="the customer asks about a refund",
            action="explain that refunds take five business days",
        )
        await agent.create_journey(
            title="Return an item",
            description="Guide the customer through returning an item",
            conditions=["the customer wants to return an item"],
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    asyncio.run(main(parser.parse_args().set))
