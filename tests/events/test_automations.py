"""Automations call a tool with arguments built from the event, when an event matches or a cron fires, as their
owner with the owner's permissions at run time; every run is recorded. The worker runs on an injected clock."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from meshgate.bootstrap import bootstrap_owner
from meshgate.identity.service import ApiKeyService, MemberService, UserService
from support.events import bus, call, deliveries, tool, upstream_tool
from support.gateway import Upstream
from support.inprocess import InProcessGateway
from support.secrets import remember_secret

pytestmark = pytest.mark.anyio

# The recording upstream's ON_EVENTS measures each item's `time`, so every template passes the event's on.
TEMPLATE = {
    "events": [
        {
            "time": "{{/time}}",
            "title": {"$event": "/data/title"},
            "labels": {"$event": "/data/labels"},
            "first": {"$event": "/data/labels/0"},
            "missing": {"$event": "/data/nope", "default": "none"},
            "text": "New issue {{/subject}}: {{/data/title}} ({{/data/count}})",
            "fixed": 1,
        }
    ]
}


async def automation(gateway: InProcessGateway, key: str | None = None, **given: Any) -> dict[str, Any]:
    arguments = {"name": "notify", "connectionId": gateway.conn_id, "toolName": "ON_EVENTS", "arguments": TEMPLATE}
    return await tool(gateway, "AUTOMATION_CREATE", arguments | given, key)


async def received(gateway: InProcessGateway) -> list[Any]:
    return [item for batch in (await upstream_tool(gateway, "received", {}))["batches"] for item in batch]


async def runs(gateway: InProcessGateway, automation_id: str) -> list[dict[str, Any]]:
    return list((await tool(gateway, "AUTOMATION_GET", {"id": automation_id}))["runs"])


async def member_key(gateway: InProcessGateway, role: str) -> tuple[str, str]:
    """A new member of the gateway's organization with `role`, and their API key: (member id, key)."""
    owner = await gateway.runtime.authenticator.authenticate(gateway.key)
    async with gateway.runtime.db.transaction() as session:
        user = await UserService(session).create(f"m-{uuid.uuid4().hex[:10]}@example.com")
        member = await MemberService(session, owner.organization_id).add(user.id, role)
        _key, value = await ApiKeyService(session, owner.organization_id).create(user.id, "member")
    return member.id, remember_secret(value)


async def test_a_matching_event_calls_the_tool_with_arguments_built_from_it(
    tmp_path: Path, subscriber: Upstream, tmp_db: str
) -> None:
    async with bus(tmp_path, subscriber, tmp_db) as (gateway, worker, _clock):
        created = await automation(gateway)
        trigger = await tool(
            gateway,
            "AUTOMATION_TRIGGER_ADD",
            {"automationId": created["id"], "eventType": "issue.*", "filter": {"prefix": {"subject": "repo-a/"}}},
        )
        assert (trigger["kind"], trigger["eventType"]) == ("event", "issue.*")
        data = {"title": "Broken build", "labels": ["ci", "urgent"], "count": 3}
        matching = await tool(gateway, "EVENT_PUBLISH", {"type": "issue.opened", "subject": "repo-a/7", "data": data})
        await tool(gateway, "EVENT_PUBLISH", {"type": "issue.opened", "subject": "repo-b/1", "data": data})
        await tool(gateway, "EVENT_PUBLISH", {"type": "order.created", "subject": "repo-a/2", "data": data})

        assert await worker.run_once() == 1  # only the matching event became a delivery
        assert await received(gateway) == [
            {
                "time": matching["time"],
                "title": "Broken build",
                "labels": ["ci", "urgent"],
                "first": "ci",
                "missing": "none",
                "text": "New issue repo-a/7: Broken build (3)",
                "fixed": 1,
            }
        ]
        [run] = await runs(gateway, created["id"])
        assert (run["status"], run["eventId"], run["triggerId"], run["error"]) == (
            "ok",
            matching["id"],
            trigger["id"],
            None,
        )
        assert orjson.loads(run["result"])["structuredContent"] == {"success": True}
        assert [item["status"] for item in await deliveries(gateway, matching["id"])] == ["delivered"]
        assert await worker.run_once() == 0  # a run happens once per event


async def test_a_cron_trigger_runs_on_the_injected_clock_and_only_it_gets_the_firing(
    tmp_path: Path, subscriber: Upstream
) -> None:
    async with bus(tmp_path, subscriber, f"sqlite:///{tmp_path / 'cron.db'}") as (gateway, worker, clock):
        await tool(gateway, "EVENT_SUBSCRIBE", {"eventType": "*", "connectionId": gateway.conn_id})
        created = await automation(gateway, arguments={"events": [{"time": "{{/time}}", "kind": {"$event": "/type"}}]})
        trigger = await tool(gateway, "AUTOMATION_TRIGGER_ADD", {"automationId": created["id"], "cron": "*/5 * * * *"})
        assert (trigger["kind"], trigger["cron"], trigger["timezone"]) == ("cron", "*/5 * * * *", "UTC")
        next_at = datetime.fromisoformat(trigger["nextAt"])
        assert next_at > clock.now and next_at.minute % 5 == 0

        assert await worker.run_once() == 0
        clock.now = next_at
        assert await worker.run_once() == 1  # the automation only: the "*" subscriber does not get the firing
        assert await received(gateway) == [{"time": trigger["nextAt"], "kind": "meshgate.automation.cron"}]
        assert await worker.run_once() == 0
        [run] = await runs(gateway, created["id"])
        assert (run["status"], run["triggerId"], run["eventType"]) == ("ok", trigger["id"], "meshgate.automation.cron")

        shown = await tool(gateway, "AUTOMATION_GET", {"id": created["id"]})
        assert datetime.fromisoformat(shown["triggers"][0]["nextAt"]) > next_at
        schedule = (await tool(gateway, "EVENT_LIST", {"status": "recurring"}))["items"][0]
        refused = await call(gateway, "EVENT_CANCEL", {"eventId": schedule["id"]})
        assert refused["isError"] and "AUTOMATION_TRIGGER_REMOVE" in refused["content"][0]["text"]

        removed = await tool(
            gateway, "AUTOMATION_TRIGGER_REMOVE", {"automationId": created["id"], "triggerId": trigger["id"]}
        )
        assert removed["deleted"] is True
        clock.advance(3600)
        assert await worker.run_once() == 0  # the schedule went with the trigger
        assert (await tool(gateway, "EVENT_LIST", {"status": "recurring"}))["totalCount"] == 0


async def test_an_owner_who_lost_the_permission_gets_refused_runs_that_are_not_retried(
    tmp_path: Path, subscriber: Upstream
) -> None:
    async with bus(tmp_path, subscriber, f"sqlite:///{tmp_path / 'perm.db'}") as (gateway, worker, clock):
        self_tools = ["AUTOMATION_CREATE", "AUTOMATION_TRIGGER_ADD"]
        role = await tool(
            gateway,
            "ROLE_CREATE",
            {"name": "automator", "permissions": {"self": self_tools, gateway.conn_id: ["ON_EVENTS"]}},
        )
        member_id, key = await member_key(gateway, "automator")
        created = await automation(gateway, key)
        await tool(gateway, "AUTOMATION_TRIGGER_ADD", {"automationId": created["id"], "eventType": "job.done"}, key)

        await tool(gateway, "ROLE_UPDATE", {"roleId": role["id"], "permissions": {"self": self_tools}})
        event = await tool(
            gateway,
            "EVENT_PUBLISH",
            {"type": "job.done", "subject": "s", "data": {"title": "t", "labels": ["x"], "count": 1}},
        )
        assert await worker.run_once() == 1
        [run] = await runs(gateway, created["id"])
        assert run["status"] == "refused" and f"{gateway.conn_id}:ON_EVENTS" in run["error"]
        [dead] = await deliveries(gateway, event["id"])
        assert dead["status"] == "dead"  # not retried forever
        clock.advance(3600)
        assert await worker.run_once() == 0
        assert await received(gateway) == []

        await tool(gateway, "ORGANIZATION_MEMBER_REMOVE", {"memberId": member_id})
        await tool(
            gateway,
            "EVENT_PUBLISH",
            {"type": "job.done", "subject": "s", "data": {"title": "t", "labels": ["x"], "count": 1}},
        )
        assert await worker.run_once() == 1
        latest = (await runs(gateway, created["id"]))[0]
        assert (latest["status"], latest["error"]) == (
            "refused",
            "the automation's owner is no longer a member of the organization",
        )

        owner = await gateway.runtime.authenticator.authenticate(gateway.key)
        changed = await tool(gateway, "AUTOMATION_UPDATE", {"id": created["id"], "name": "adopted"})
        assert changed["ownerId"] == owner.user_id  # whoever changes it runs it from then on
        clock.advance(1)  # runs are listed newest first
        await tool(
            gateway,
            "EVENT_PUBLISH",
            {"type": "job.done", "subject": "s", "data": {"title": "t", "labels": ["x"], "count": 1}},
        )
        assert await worker.run_once() == 1
        assert (await runs(gateway, created["id"]))[0]["status"] == "ok"
        assert len(await received(gateway)) == 1


async def test_automation_run_runs_now_with_a_test_event_and_records_each_result(
    tmp_path: Path, subscriber: Upstream
) -> None:
    async with bus(tmp_path, subscriber, f"sqlite:///{tmp_path / 'run.db'}") as (gateway, _worker, clock):
        created = await automation(gateway, enabled=False)
        test_event = {"type": "issue.opened", "subject": "s-1", "data": {"title": "T", "labels": ["a"], "count": 1}}
        ok = await tool(gateway, "AUTOMATION_RUN", {"id": created["id"], "event": test_event})
        assert (ok["status"], ok["triggerId"], ok["eventType"]) == ("ok", None, "issue.opened")
        assert (await received(gateway))[0]["text"] == "New issue s-1: T (1)"

        await upstream_tool(gateway, "answer_with", {"answers": [{"isError": True}]})
        clock.advance(1)
        failed = await tool(gateway, "AUTOMATION_RUN", {"id": created["id"], "event": test_event})
        assert (failed["status"], failed["error"]) == ("error", "ON_EVENTS answered with an error")
        assert "the subscriber broke" in failed["result"]

        clock.advance(1)
        missing = await tool(gateway, "AUTOMATION_RUN", {"id": created["id"], "event": {"type": "x.y"}})
        assert missing["status"] == "error" and "/data/title" in missing["error"]

        listed = await runs(gateway, created["id"])
        assert [item["id"] for item in listed] == [missing["id"], failed["id"], ok["id"]]  # newest first
        assert (await tool(gateway, "AUTOMATION_LIST", {}))["items"][0]["enabled"] is False

        updated = await tool(gateway, "AUTOMATION_UPDATE", {"id": created["id"], "arguments": {"events": []}})
        assert (updated["arguments"], updated["enabled"]) == ({"events": []}, False)
        assert (await tool(gateway, "AUTOMATION_DELETE", {"id": created["id"]}))["deleted"] is True
        gone = await call(gateway, "AUTOMATION_GET", {"id": created["id"]})
        assert gone["isError"] and "not found" in gone["content"][0]["text"]


async def test_a_disabled_automation_does_not_run_on_events(tmp_path: Path, subscriber: Upstream) -> None:
    async with bus(tmp_path, subscriber, f"sqlite:///{tmp_path / 'off.db'}") as (gateway, worker, _clock):
        created = await automation(gateway, enabled=False)
        await tool(gateway, "AUTOMATION_TRIGGER_ADD", {"automationId": created["id"], "eventType": "a.b"})
        event = await tool(gateway, "EVENT_PUBLISH", {"type": "a.b"})
        assert await worker.run_once() == 1
        [delivery] = await deliveries(gateway, event["id"])
        assert (delivery["status"], delivery["lastError"]) == ("dead", "the automation is disabled")
        assert await runs(gateway, created["id"]) == []


async def test_nothing_of_an_automation_crosses_organizations(tmp_path: Path, subscriber: Upstream) -> None:
    url = f"sqlite:///{tmp_path / 'orgs.db'}"
    async with bus(tmp_path, subscriber, url) as (gateway, worker, _clock):
        created = await automation(gateway)
        await tool(gateway, "AUTOMATION_TRIGGER_ADD", {"automationId": created["id"], "eventType": "*"})
        other = remember_secret(
            (await bootstrap_owner(url, email="other@example.com", password=None, org_name="Other")).api_key
        )
        for name, arguments in [
            ("AUTOMATION_GET", {"id": created["id"]}),
            ("AUTOMATION_RUN", {"id": created["id"]}),
            ("AUTOMATION_UPDATE", {"id": created["id"], "name": "mine"}),
            ("AUTOMATION_DELETE", {"id": created["id"]}),
            ("AUTOMATION_TRIGGER_ADD", {"automationId": created["id"], "eventType": "a.b"}),
            ("AUTOMATION_CREATE", {"name": "x", "connectionId": gateway.conn_id, "toolName": "ON_EVENTS"}),
        ]:
            result = await call(gateway, name, arguments, other)
            assert result["isError"] and "not found" in result["content"][0]["text"], (name, result)
        assert (await tool(gateway, "AUTOMATION_LIST", {}, other))["totalCount"] == 0
        await tool(gateway, "EVENT_PUBLISH", {"type": "their.event"}, other)
        assert await worker.run_once() == 0  # another organization's event runs nothing here
        assert await runs(gateway, created["id"]) == []


async def test_bad_automations_are_refused_with_what_is_allowed(tmp_path: Path, subscriber: Upstream) -> None:
    async with bus(tmp_path, subscriber, f"sqlite:///{tmp_path / 'bad.db'}") as (gateway, _worker, _clock):
        created = await automation(gateway)
        conn = gateway.conn_id
        base = {"name": "n", "connectionId": conn, "toolName": "ON_EVENTS"}
        deep: Any = "x"
        for _ in range(12):
            deep = [deep]
        cases = [
            ("AUTOMATION_CREATE", base | {"arguments": {"a": {"$evnt": "/data"}}}, "'$evnt' is reserved"),
            ("AUTOMATION_CREATE", base | {"arguments": {"a": {"$event": "data/x"}}}, "is not a JSON pointer"),
            ("AUTOMATION_CREATE", base | {"arguments": {"a": {"$event": "/a~2"}}}, "is not a JSON pointer"),
            ("AUTOMATION_CREATE", base | {"arguments": {"a": {"$event": 3}}}, "must be a JSON pointer string"),
            ("AUTOMATION_CREATE", base | {"arguments": {"a": {"$event": "/x", "other": 1}}}, "not 'other'"),
            ("AUTOMATION_CREATE", base | {"arguments": {"a": "hi {{ name }}"}}, "must start a pointer"),
            ("AUTOMATION_CREATE", base | {"arguments": {"a": deep}}, "at most 10 deep"),
            ("AUTOMATION_CREATE", base | {"arguments": {"a": "x" * 20_000}}, "at most 16384"),
            ("AUTOMATION_CREATE", base | {"connectionId": "nope"}, "not found"),
            ("AUTOMATION_CREATE", base | {"name": " "}, "name must be 1 to 200"),
            (
                "AUTOMATION_TRIGGER_ADD",
                {"automationId": created["id"], "eventType": "a.b", "cron": "* * * * *"},
                "not both",
            ),
            ("AUTOMATION_TRIGGER_ADD", {"automationId": created["id"]}, "give eventType"),
            (
                "AUTOMATION_TRIGGER_ADD",
                {"automationId": created["id"], "eventType": "a.b", "filter": {"sql": "x"}},
                "unknown filter dialect",
            ),
            ("AUTOMATION_TRIGGER_ADD", {"automationId": created["id"], "cron": "often"}, "is not a cron expression"),
            ("AUTOMATION_TRIGGER_ADD", {"automationId": created["id"], "eventType": "bad type"}, "not an event type"),
        ]
        for name, arguments, expected in cases:
            result = await call(gateway, name, arguments)
            assert result.get("isError"), (name, arguments)
            assert expected in result["content"][0]["text"], (expected, result["content"][0]["text"])

        narrow = await tool(
            gateway, "API_KEY_CREATE", {"name": "n", "permissions": {"self": ["AUTOMATION_CREATE"], conn: ["other"]}}
        )
        refused = await call(gateway, "AUTOMATION_CREATE", base, narrow["key"])
        assert refused["isError"] and f"{conn}:ON_EVENTS" in refused["content"][0]["text"]
        listed = await tool(gateway, "EVENT_SUBSCRIPTION_LIST", {})
        assert listed["items"] == []


async def test_a_call_that_fails_on_the_way_is_an_error_run_and_is_retried(
    tmp_path: Path, subscriber: Upstream
) -> None:
    async with bus(tmp_path, subscriber, f"sqlite:///{tmp_path / 'retry.db'}", first_retry_s=10) as (
        gateway,
        worker,
        clock,
    ):
        created = await automation(gateway)
        await tool(gateway, "AUTOMATION_TRIGGER_ADD", {"automationId": created["id"], "eventType": "job.done"})
        update = {"id": gateway.conn_id, "data": {"status": "inactive"}}
        await tool(gateway, "COLLECTION_CONNECTIONS_UPDATE", update)
        data = {"title": "t", "labels": ["x"], "count": 1}
        event = await tool(gateway, "EVENT_PUBLISH", {"type": "job.done", "subject": "s", "data": data})
        assert await worker.run_once() == 1
        [failed] = await runs(gateway, created["id"])
        assert failed["status"] == "error" and "inactive" in failed["error"]
        [pending] = await deliveries(gateway, event["id"])
        assert (pending["status"], pending["attempts"]) == ("pending", 1)

        await tool(gateway, "COLLECTION_CONNECTIONS_UPDATE", {**update, "data": {"status": "active"}})
        clock.advance(10)
        assert await worker.run_once() == 1
        assert [run["status"] for run in await runs(gateway, created["id"])] == ["ok", "error"]  # a run per attempt
        assert [item["status"] for item in await deliveries(gateway, event["id"])] == ["delivered"]
        assert len(await received(gateway)) == 1
