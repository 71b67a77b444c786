"""Two-factor (TOTP) secrets sealed with envelope encryption (`shared.runtime.keyring`): AES-GCM under a data key
wrapped by a key-encryption key, so `one keys rotate` re-wraps them without touching a secret.

A person's two-factor belongs to no one org (every org they are in sees it), so these secrets use the data key of
`PEOPLE` (the nil id, never an org's) and the additional data binds the person: a blob moved to another person
does not open. Secrets sealed the old way (`shared.kernel.sealing`, under the pepper) still open, and are re-sealed
at start (`reseal_legacy`).
"""

import logging
from uuid import UUID

from services.tenancy import repository as repo, repository_keys as keys_repo, totp
from shared.kernel.sealing_envelope import is_envelope, owner
from shared.runtime.keyring import keyring_for
from shared.runtime.service import ServiceRuntime

PEOPLE = UUID(int=0)
"""The data-key owner of person-level secrets."""

log = logging.getLogger(__name__)


def _aad(person_id: UUID) -> bytes:
    return owner("one.tenancy.totp-secret", person_id)


async def seal_totp(runtime: ServiceRuntime, person_id: UUID, secret: bytes) -> bytes:
    return await keyring_for(runtime).seal(PEOPLE, secret, _aad(person_id))


async def open_totp(runtime: ServiceRuntime, pepper: bytes, person_id: UUID, sealed: bytes) -> bytes:
    """The secret, sealed either way; ValueError if it does not open (moved, altered, another key or pepper)."""
    if is_envelope(sealed):
        return await keyring_for(runtime).open(PEOPLE, sealed, _aad(person_id))
    return totp.unseal(pepper, sealed, person_id.bytes)


async def reseal_legacy(runtime: ServiceRuntime, pepper: bytes, batch: int = 200) -> int:
    """Re-seal every two-factor secret still sealed the old way; how many. One that does not open stays as it is
    (the owner resets it, as before)."""
    done, after = 0, PEOPLE
    while True:
        async with runtime.db.transaction() as session, repo.platform_access(session):
            rows = await keys_repo.legacy_two_factor(session, after, batch)
            for person_id, sealed in rows:
                try:
                    secret = totp.unseal(pepper, sealed, person_id.bytes)
                except ValueError:
                    log.warning("the two-factor secret of %s does not open with this pepper: left as it is", person_id)
                    continue
                await keys_repo.reseal_two_factor(session, person_id, await seal_totp(runtime, person_id, secret))
                done += 1
        if len(rows) < batch:
            return done
        after = rows[-1][0]
