"""`/v1/jobs` over real HTTP: enqueue, read, list, cancel and retry, errors as problem+json."""

from datetime import UTC, datetime, timedelta

from tests.gateway.conftest import Caller, alice, assert_problem  # noqa: F401 (fixtures)

LATER = (datetime.now(UTC) + timedelta(days=1)).isoformat()


async def test_a_job_is_enqueued_listed_cancelled_and_retried_over_http(alice: Caller) -> None:  # noqa: F811
    body = {"kind": "notification.send", "payload": {"message": "renew the domain"}, "run_at": LATER,
            "priority": 7, "idempotency_key": "renew-domain"}
    created = await alice.call("POST", "/v1/jobs", body)
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["state"] == "pending" and job["priority"] == 7 and job["payload"]["channel"] == "in_app"
    assert (await alice.call("POST", "/v1/jobs", body)).json()["id"] == job["id"]  # the same key, the same job

    assert (await alice.call("GET", f"/v1/jobs/{job['id']}")).json() == job
    listed = (await alice.call("GET", "/v1/jobs", state="pending", kind="notification.send")).json()
    assert [j["id"] for j in listed["jobs"]] == [job["id"]] and listed["next_cursor"] is None
    assert (await alice.call("GET", "/v1/jobs", state="dead")).json()["jobs"] == []

    cancelled = await alice.call("POST", f"/v1/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    retried = await alice.call("POST", f"/v1/jobs/{job['id']}/retry", {"run_at": LATER})
    assert retried.status_code == 200 and retried.json()["state"] == "pending", retried.text
    assert_problem(await alice.call("POST", f"/v1/jobs/{job['id']}/retry"), 409, "job_state_conflict")


async def test_bad_job_requests_are_problems(alice: Caller) -> None:  # noqa: F811
    unknown = await alice.call("POST", "/v1/jobs", {"kind": "shell.exec", "payload": {}})
    assert assert_problem(unknown, 422)["code"] == "unknown_job_kind"
    invalid = await alice.call("POST", "/v1/jobs", {"kind": "knowledge.ingest", "payload": {"thing_id": "nope"}})
    assert assert_problem(invalid, 422)["code"] == "invalid_job_payload"
    assert_problem(await alice.call("POST", "/v1/jobs", {"kind": "notification.send", "max_attempts": 99}), 422)
    assert_problem(await alice.call("GET", "/v1/jobs/01a24a55-afca-7263-b794-b3dcb1ac09d1"), 404)
    assert_problem(await alice.call("GET", "/v1/jobs", state="sleeping"), 422)
