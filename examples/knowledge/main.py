"""Ingest two posts' text and search it semantically: the hit cites the post it came from."""

import asyncio

from shared.tools.sdk import One

POSTS = {
    "Wintering bees": "In winter honey bees cluster together and shiver their flight muscles to keep the hive warm.",
    "Sourdough starter": "Feed the starter flour and water every day until it doubles and smells pleasantly sour.",
}


async def main() -> None:
    async with await One.connect() as one:
        posts = {name: await one.things.create("blog_post", name, properties={"content": text})
                 for name, text in POSTS.items()}
        jobs = [await one.knowledge.ingest(post.id) for post in posts.values()]
        finished = await one.knowledge.wait_for([job.id for job in jobs], timeout=300)
        # `skipped`: the text was already indexed (creating a thing triggers its ingestion too)
        assert all(job.status in ("done", "skipped") for job in finished.values()), finished
        result = await one.knowledge.search("how do hives survive the cold?", k=3)
        for hit in result.hits:
            print(f"{hit.score:.3f}  {hit.item.source_thing_id}  {(hit.item.text or '')[:60]}")
        assert result.hits[0].item.source_thing_id == posts["Wintering bees"].id


if __name__ == "__main__":
    asyncio.run(main())
