"""Schemathesis against the live gateway: property-based requests generated from its own OpenAPI document.

Every operation of `/openapi.json`, authenticated with a real key of a fresh org, gets `EXAMPLES`
generated requests, valid and invalid (derandomized: the same ones every run), each checked for: no
5xx, a status code the operation documents, the documented content type, headers and body schema.
Only the checks are chosen here; the document is the gateway's own, unedited, so a finding is fixed
in the routes or the contracts' models. (Deeper runs found more: raise `EXAMPLES` locally to look.)

Hypothesis runs in a worker thread: the gateway serves on this test's event loop.
"""

import asyncio
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.gateway.conftest import Caller

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
"""Schemathesis's own strategies use `random` (its concern, said once per example): not this suite's."""

EXAMPLES = {GenerationMode.POSITIVE: 3, GenerationMode.NEGATIVE: 2}
"""Per operation: valid requests (each must be answered as documented) and invalid ones (each must be refused
as documented: a problem, never a 5xx). Enough to reach each one's edges, few enough to stay near a minute."""
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
FINITE = {("GET", "/v1/events/stream"): {"follow": "false"}}
"""Streams that never end unless asked to: a whole response is what the checks validate, so they are asked to."""
REQUEST_TIMEOUT = 30.0


def fuzz(doc: dict[str, Any], base_url: str, key: str) -> tuple[list[str], int]:
    """Every operation's failures (one line each) and how many operations ran."""
    schema = schemathesis.openapi.from_dict(doc)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        query = FINITE.get((operation.method.upper(), operation.path))
        for mode, examples in EXAMPLES.items():

            @given(case=operation.as_strategy(mode, query=query))
            @settings(max_examples=examples, derandomize=True, database=None, deadline=None, print_blob=False,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS,
                                       timeout=REQUEST_TIMEOUT)

            try:
                check()
            except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - a FailureGroup, or the transport's
                failures.append(f"{operation.label} ({mode.value}): {type(error).__name__}: {error}".strip()[:3000])
    return failures, operations


async def test_the_live_gateway_keeps_its_own_document(gateway: str, alice: Caller) -> None:
    doc = (await alice.http.get("/openapi.json")).json()
    failures, operations = await asyncio.to_thread(fuzz, doc, gateway, alice.account.key)
    assert operations == sum(len(item) for item in doc["paths"].values())
    assert not failures, "\n\n".join(failures)
