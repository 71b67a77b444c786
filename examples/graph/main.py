"""A creator who owns two courses, and a blog post that references one of them; then two questions to the graph."""

import asyncio

from shared.tools.sdk import One


async def main() -> None:
    async with await One.connect() as one:
        creator = await one.things.create("creator", "Ada", properties={
            "email": "ada@example.com", "username": "ada", "displayName": "Ada", "role": "org_user", "niche": ["bees"],
        })
        basics = await one.things.create("course", "Beekeeping basics",
                                         properties={"title": "Beekeeping basics", "price": 49, "currency": "USD"})
        winter = await one.things.create("course", "Wintering hives",
                                         properties={"title": "Wintering hives", "price": 19, "currency": "USD"})
        post = await one.things.create("blog_post", "How bees keep warm", properties={"content": "They shiver."})
        for course in (basics, winter):
            await one.connections.create(creator.id, course.id, "owns", metadata={"revenueShare": 1.0})
        await one.connections.create(post.id, winter.id, "references")

        dear = await one.things.query(type="course", where=[{"path": "price", "op": "gt", "value": 20}])
        print("courses over 20 USD:", ", ".join(t.name for t in dear.things))
        inbound = await one.connections.query(winter.id, direction="in")
        print(f"{winter.name} <-", ", ".join(f"{c.type} from {c.from_id}" for c in inbound.connections))
        assert [t.id for t in dear.things] == [basics.id]
        assert {c.type for c in inbound.connections} == {"owns", "references"}


if __name__ == "__main__":
    asyncio.run(main())
