"""Social links are unique while they last, so following (or reacting) twice cannot count twice.

- One live `following` connection per follower and followee: a second follow finds it (`ON CONFLICT DO
  NOTHING`) and moves no counter; an unfollow ends it (`valid_to`), and a later follow makes a new one.
- One live reaction (`participated_in` with `metadata.reaction`) per reactor, target and kind.
Ended links keep their history; only live ones are unique.
"""

STATEMENTS = [
    """CREATE UNIQUE INDEX connections_live_follow ON graph.connections (org_id, from_id, to_id)
        WHERE type = 'following' AND valid_to IS NULL""",
    """CREATE UNIQUE INDEX connections_live_reaction ON graph.connections (org_id, from_id, to_id, (metadata->>'reaction'))
        WHERE type = 'participated_in' AND valid_to IS NULL AND metadata ? 'reaction'""",
]
