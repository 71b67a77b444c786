"""UUIDv7 ids: time-ordered, so envelope ids sort by creation and index well."""

import random
import time
from uuid import UUID

# Uniqueness, not secrecy, is what an envelope id needs: the Mersenne Twister
# (seeded from os.urandom, re-seeded in forked children) avoids a getrandom
# syscall per message. Secrets (API keys, tokens) use the `secrets` module.
_random_bits = random.getrandbits


def uuid7() -> UUID:
    """A RFC 9562 version-7 UUID: 48-bit Unix milliseconds, version, 74 random bits, variant."""
    ms = time.time_ns() // 1_000_000
    rand = _random_bits(74)
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (rand >> 62) << 64 | 0b10 << 62 | (rand & 0x3FFF_FFFF_FFFF_FFFF)
    return UUID(int=value)
