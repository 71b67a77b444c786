"""AP2 v2 mandates (issue #22): SD-JWT credentials chained by key binding, their constraints, their verifier.

Pure code (no SQL, no bus): `credentials` builds and parses chains, `verify` checks one against a trust
list, `constraints` checks a closed mandate against its open one, `schemas` holds the official JSON Schemas.
"""
