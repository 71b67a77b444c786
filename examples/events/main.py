"""Publish three events and follow them live: the tail starts at the current end of the org's log."""

import asyncio

from shared.tools.sdk import One

COUNT = 3


async def main() -> None:
    async with await One.connect() as one:
        newest = (await one.events.query(order="desc", limit=1)).events
        start = newest[0].position if newest else 0
        seen: list[str] = []

        async def follow() -> None:
            async for event in one.events.tail(after=start, types=["content_viewed"]):
                print(f"#{event.position} {event.type} {event.metadata}")
                seen.append(str(event.id))
                if len(seen) == COUNT:
                    return

        following = asyncio.create_task(follow())
        published = [await one.events.publish("content_viewed", metadata={"page": f"/docs/{n}"}) for n in range(COUNT)]
        await asyncio.wait_for(following, timeout=60)
        assert seen == [str(p.id) for p in published]
        print(f"followed {len(seen)} events; resume from position {one.events.cursor}")


if __name__ == "__main__":
    asyncio.run(main())
