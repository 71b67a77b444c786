"""Envelope encryption of tenancy's sealed secrets (two-factor TOTP secrets): `tenancy.data_keys`, the data keys
wrapped by a key-encryption key (`shared.runtime.keyring`). Secrets sealed the old way are re-sealed at start
(`services/tenancy/keys.py`)."""

from shared.runtime.keyring import data_keys_table

STATEMENTS = data_keys_table("tenancy")
