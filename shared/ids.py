"""UUIDv7 ids: time-ordered, so envelope ids sort by creation and index well."""

import os
import time
from uuid import UUID


def uuid7() -> UUID:
    """A RFC 9562 version-7 UUID: 48-bit Unix milliseconds, then 74 random bits."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF
    return UUID(int=value)
