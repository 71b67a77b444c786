"""Invitations remember how their token was delivered.

`invites.delivery` is `token` (returned to the inviter, who hands it over: every
invite made before this migration) or `email` (mailed to an address that already
has an account, through the mail drop; the inviter never sees it). `accept`
takes the token alone as proof for an existing account only when it is `email`,
so the default is the cautious one.
"""

STATEMENTS = [
    """ALTER TABLE tenancy.invites
        ADD COLUMN delivery text NOT NULL DEFAULT 'token' CHECK (delivery IN ('token', 'email'))""",
]
