"""`one jobs ...` against the real stack: enqueue, list, show, cancel, retry, and a refusal."""

from tests.cli.conftest import Cli, one, one_line_error  # noqa: F401 (fixture)
from tests.tenancy.conftest import owner  # noqa: F401 (fixtures)


async def test_jobs_enqueue_list_show_cancel_retry(one: Cli) -> None:  # noqa: F811
    job = (await one("jobs", "enqueue", "notification.send", "-p", '{"message": "water the plants"}',
                     "--at", "2099-06-01T09:00:00+00:00", "--priority", "3", "--json")).json()
    assert job["state"] == "pending" and job["priority"] == 3

    listed = (await one("jobs", "list", "--state", "pending")).ok()
    assert job["id"] in listed and "notification.send" in listed
    shown = (await one("jobs", "show", job["id"])).ok()
    assert "water the plants" in shown and "0 of 5" in shown

    assert (await one("jobs", "cancel", job["id"], "--json")).json()["state"] == "cancelled"
    retried = (await one("jobs", "retry", job["id"], "--at", "2099-06-02T09:00:00+00:00", "--json")).json()
    assert retried["state"] == "pending" and retried["run_at"].startswith("2099-06-02")
    one_line_error(await one("jobs", "retry", job["id"]), 7, "job_state_conflict")
    one_line_error(await one("jobs", "show", "00000000-0000-7000-8000-000000000000"), 5, "job_not_found")
    one_line_error(await one("jobs", "enqueue", "shell.exec"), 6, "unknown_job_kind")
