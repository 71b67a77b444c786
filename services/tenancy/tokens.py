"""One-time tokens (invitations, email verifications): `<kind>_<row id hex>_<32 base62>`.

The row id makes the lookup direct; only a keyed hash of the whole token is
stored (`Credentials.hash`), so the random part is what proves possession.
"""

import secrets
import string
from uuid import UUID

_ALPHABET = string.ascii_letters + string.digits


def new_token(kind: str, row_id: UUID) -> str:
    return f"{kind}_{row_id.hex}_{''.join(secrets.choice(_ALPHABET) for _ in range(32))}"


def token_row_id(kind: str, token: str) -> UUID | None:
    """The row a token of `kind` names; None when the text is not such a token."""
    parts = token.strip().split("_")
    if len(parts) != 3 or parts[0] != kind:
        return None
    try:
        return UUID(hex=parts[1])
    except ValueError:
        return None
