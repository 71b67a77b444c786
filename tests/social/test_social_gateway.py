"""Social and scheduling over real HTTP: the routes map to their bus requests, and bad input is a problem."""

from datetime import UTC, datetime, timedelta

from tests.gateway.conftest import Caller, alice, assert_problem, http  # noqa: F401 (fixtures)
from tests.gateway.test_things import create


async def _person(alice: Caller, name: str) -> dict:  # noqa: F811
    made = await alice.call("POST", "/v1/things", {"type": "audience_member", "name": name})
    assert made.status_code == 201, made.text
    return made.json()


async def test_follow_react_comment_and_a_meeting_over_http(alice: Caller) -> None:  # noqa: F811
    fan, idol = await _person(alice, "fan"), await _person(alice, "idol")
    post = await create(alice, "Post")
    followed = await alice.call("POST", f"/v1/things/{idol['id']}/follow", {"follower_id": fan["id"]})
    assert followed.status_code == 200 and followed.json()["total_followers"] == 1, followed.text
    again = await alice.call("POST", f"/v1/things/{idol['id']}/follow", {"follower_id": fan["id"]})
    assert (again.json()["changed"], again.json()["total_followers"]) == (False, 1)
    gone = await alice.call("DELETE", f"/v1/things/{idol['id']}/follow", follower_id=fan["id"])
    assert gone.json()["total_followers"] == 0, gone.text

    liked = await alice.call("POST", f"/v1/things/{post['id']}/reactions", {"kind": "👍", "reactor_id": fan["id"]})
    assert liked.json()["reaction_counts"] == {"👍": 1}, liked.text
    unliked = await alice.call("DELETE", f"/v1/things/{post['id']}/reactions/👍", reactor_id=fan["id"])
    assert unliked.json()["total_reactions"] == 0, unliked.text
    said = await alice.call("POST", f"/v1/things/{post['id']}/comments", {"content": "first", "author_id": fan["id"]})
    assert said.status_code == 201 and said.json()["total_comments"] == 1, said.text

    start = datetime.now(UTC) + timedelta(days=1)
    meeting = await alice.call("POST", "/v1/meetings", {
        "title": "Sync", "start_time": start.isoformat(), "end_time": (start + timedelta(hours=1)).isoformat(),
        "participant_ids": [fan["id"]], "remind_before": [900]})
    assert meeting.status_code == 201, meeting.text
    reminders = await alice.call("GET", "/v1/reminders", meeting_id=meeting.json()["id"])
    assert [r["recipient_id"] for r in reminders.json()["reminders"]] == [fan["id"]]
    cancelled = await alice.call("POST", f"/v1/meetings/{meeting.json()['id']}/cancel")
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["reminders"][0]["status"] == "cancelled"


async def test_bad_input_is_a_problem(alice: Caller) -> None:  # noqa: F811
    post, fan = await create(alice, "Post"), await _person(alice, "fan")
    assert_problem(await alice.call("POST", f"/v1/things/{post['id']}/follow", {"follower_id": fan["id"]}), 422)
    assert_problem(await alice.call("POST", f"/v1/things/{post['id']}/comments", {"content": ""}), 422)
    assert_problem(await alice.call("POST", f"/v1/things/{post['id']}/reactions", {"kind": "a b"}), 422)
    start = datetime.now(UTC) + timedelta(days=1)
    assert_problem(await alice.call("POST", "/v1/meetings", {
        "title": "x", "start_time": start.isoformat(), "end_time": start.isoformat()}), 422)
    assert_problem(await alice.call("GET", f"/v1/meetings/{post['id']}"), 404)
