"""Envelope encryption of commerce's sealed secrets (org wallet keys, AP2 signing keys, ACP webhook secrets):
`commerce.data_keys`, each org's data keys wrapped by a key-encryption key (`shared.runtime.keyring`). Values sealed
the old way (under the wallet secret) keep opening (`services/commerce/keys.py`); new ones are envelope-sealed."""

from shared.runtime.keyring import data_keys_table

STATEMENTS = data_keys_table("commerce")
