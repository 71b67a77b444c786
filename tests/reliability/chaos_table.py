"""`make chaos`'s table: .bench/chaos.json (written by tests/reliability/test_chaos_stack.py), one row per fault."""

import json
import sys
from pathlib import Path

COLUMNS = (("fault", "fault", 32), ("acked", "acked", 7), ("committed", "committed", 11), ("failed", "failed", 8),
           ("lost", "lost", 6), ("duplicates", "dups", 6), ("recovery_seconds", "recovery s", 12),
           ("settled_after_load_seconds", "after load s", 14), ("restarts", "restarts", 10),
           ("healthy_again", "healthy", 9))


def main(path: str = ".bench/chaos.json") -> None:
    rows = json.loads(Path(path).read_text())["faults"]
    print("".join(f"{title:<{width}}" if key == "fault" else f"{title:>{width}}" for key, title, width in COLUMNS))
    for row in rows:
        print("".join(f"{row.get(key, '')!s:<{width}}" if key == "fault" else f"{row.get(key, '')!s:>{width}}"
                      for key, _, width in COLUMNS))


if __name__ == "__main__":
    main(*sys.argv[1:])
