"""An agent that answers from the org's own knowledge, on the offline model that ships with the platform.

No API key for a model provider is needed: `offline:smollm2-135m-instruct` runs on the CPU inside the
agents service. Set `ONE_EXAMPLE_MODEL` (e.g. `openai:gpt-4o-mini`) to use another provider configured there.
"""

import asyncio
import os
import uuid

from shared.tools.sdk import One

FACT = "The Zephyrine warehouse in Lisbon opens at 07:30 every weekday."


async def main() -> None:
    async with await One.connect() as one:
        label = f"topic:warehouse-{uuid.uuid4().hex[:8]}"
        await one.knowledge.add(FACT, knowledge_type="chunk", labels=[label])
        slug = f"clerk-{uuid.uuid4().hex[:8]}"
        await one.agents.create(slug, "Warehouse clerk", config={
            "model": os.environ.get("ONE_EXAMPLE_MODEL", "offline:smollm2-135m-instruct"),
            "system_prompt": "Answer the question using only the knowledge below. Cite the fact exactly.",
            "temperature": 0, "max_tokens": 48, "knowledge": {"labels": [label], "k": 2},
        })
        await one.agents.deploy(slug)  # chats use the production config

        print("clerk> ", end="", flush=True)
        async for event in one.agents.chat_stream(slug, "When does the Zephyrine warehouse open?"):
            if event.kind == "text":
                print(event.text, end="", flush=True)
            elif event.kind == "finished":
                print(f"\n(answered by {event.model})")
            elif event.kind == "failed":
                event.raise_for_failure()
            run_id = event.run_id
        run = await one.agents.run(run_id)
        print(f"run {run.id}: {run.status}, cited {[c.item_id for c in run.citations]}")
        assert run.status == "completed" and run.citations, run


if __name__ == "__main__":
    asyncio.run(main())
