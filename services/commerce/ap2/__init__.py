"""AP2 v2 mandates (issue #22): SD-JWT credentials chained by key binding, their constraints, their verifier.

Pure code (no SQL, no bus): `credentials` builds and parses chains, `verify` checks one against a trust
list, `constraints` checks a closed mandate against its open one (and a payment's reference), `narrowing` checks
delegation hops and checkout mandates, `remaining` says what is left of an open mandate, `v1` reads V1 messages,
`schemas` holds the official JSON Schemas.
"""
