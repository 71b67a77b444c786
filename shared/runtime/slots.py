"""A bound on the messages a subscriber has in progress, and on those waiting for a turn.

At most `limit` requests run at once; the rest wait in line, in arrival order. The line is
bounded too: past `queue_limit` the oldest waiting request (whose caller is nearest its
timeout) is refused at once, so an overloaded service sheds load with a quick, typed answer
instead of letting callers' timeouts pile up (issue 23). The check on the hot path is a plain
comparison, and a message can take its slot after it started: an eagerly started handler
(`shared.runtime.eager`) that answered at once never needs one.
"""

from collections import deque
from collections.abc import Callable

Start = Callable[[], None]


class Slots:
    def __init__(self, limit: int, queue_limit: int) -> None:
        self.free = limit
        self.queue_limit = queue_limit
        self.waiting: deque[tuple[Start, Start]] = deque()

    def has_room(self) -> bool:
        return self.free > 0 and not self.waiting

    def wait(self, start: Start, refuse: Start) -> None:
        """Line up `start` for the next free slot; if the line is then too long, its oldest is `refuse`d."""
        self.waiting.append((start, refuse))
        if len(self.waiting) > self.queue_limit:
            self.waiting.popleft()[1]()

    def take(self) -> None:
        self.free -= 1

    def give(self) -> None:
        self.free += 1
        while self.free > 0 and self.waiting:
            self.waiting.popleft()[0]()
