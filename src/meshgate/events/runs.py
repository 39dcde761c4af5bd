"""Running an automation: its tool called through the call pipeline as its owner, and the run recorded.

The owner is read anew for every run (a member of the organization now, with their role's permissions now)
and narrowed to the one tool on the one connection, so a permission taken away stops the automation: the run
is recorded `refused` and the delivery that brought the event is not retried. A tool that answered with
`isError` ran: the run is `error` and the event is not delivered again (the tool may have done something). A
call that failed on the way (unreachable, timed out) is `error` and retried like any delivery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

import orjson
from sqlalchemy import select

from meshgate.access import Principal
from meshgate.calls.models import CallContext, Target
from meshgate.calls.service import CallService
from meshgate.db.database import Database
from meshgate.db.rows import new_id
from meshgate.db.tables import organizations
from meshgate.errors import MeshgateError, NotFound, PermissionDenied
from meshgate.events.automations import Automation, AutomationService, Run
from meshgate.events.models import DEAD, DELIVERED, CloudEvent
from meshgate.events.outcomes import Outcome, failed
from meshgate.events.templates import MissingValue, filled
from meshgate.identity.service import member_principal

MAX_RESULT = 4096
_MAX_ERROR = 500


@dataclass(frozen=True, slots=True)
class Fired:
    """What brought a run about: a trigger's event, or AUTOMATION_RUN (no trigger, perhaps a test event)."""

    event: CloudEvent | None
    trigger_id: str | None = None


class AutomationRunner:
    """Runs automations for the event worker and for AUTOMATION_RUN."""

    def __init__(self, db: Database, calls: CallService, clock: Callable[[], datetime], agent: str) -> None:
        self._db = db
        self._calls = calls
        self._clock = clock
        self._agent = agent

    async def on_event(self, organization_id: str, automation_id: str, fired: Fired) -> Outcome:
        """A trigger's delivery: run the automation (if it is enabled) and say what becomes of the delivery."""
        async with self._db.transaction() as session:
            service = AutomationService(session, organization_id, self._clock)
            try:
                automation = await service.get(automation_id)
            except NotFound:
                return Outcome(DEAD, "the automation is gone")
        if not automation.enabled:
            return Outcome(DEAD, "the automation is disabled")
        run, outcome = await self.run(automation, fired)
        return Outcome(outcome.status, run.error, outcome.retry_in_s, outcome.counts)

    async def run_now(self, organization_id: str, automation_id: str, fired: Fired) -> Run:
        """AUTOMATION_RUN: run it now, enabled or not."""
        async with self._db.transaction() as session:
            automation = await AutomationService(session, organization_id, self._clock).get(automation_id)
        run, _ = await self.run(automation, fired)
        return run

    async def run(self, automation: Automation, fired: Fired) -> tuple[Run, Outcome]:
        """Call the tool as the owner and record the run; returns it and what becomes of a delivery."""
        started = self._clock()
        try:
            principal = await self._owner(automation)
            arguments = filled(automation.arguments, {} if fired.event is None else fired.event.to_dict())
        except MissingValue as missing:
            status, result, error = "error", None, f"the event has no value at {missing} (the arguments need it)"
            outcome = Outcome(DEAD, error)
        except MeshgateError as refused:
            status, result, error, outcome = "refused", None, refused.message, Outcome(DEAD, refused.message)
        else:
            status, result, error, outcome = await self._call(automation, principal, arguments)
        run = Run(
            id=new_id(),
            automation_id=automation.id,
            trigger_id=fired.trigger_id,
            event_id=None if fired.event is None else fired.event.id,
            event_type=None if fired.event is None else fired.event.type,
            started_at=started,
            finished_at=self._clock(),
            status=status,
            result=result,
            error=None if error is None else error[:_MAX_ERROR],
        )
        async with self._db.transaction() as session:
            await AutomationService(session, automation.organization_id, self._clock).record(run)
        return run, outcome

    async def _call(
        self, automation: Automation, principal: Principal, arguments: dict[str, object]
    ) -> tuple[str, str | None, str | None, Outcome]:
        try:
            result = await self._calls.call_tool(
                principal,
                Target(automation.connection_id),
                automation.tool_name,
                arguments,
                CallContext(user_agent=self._agent, announced=False),
            )
        except MeshgateError as error:
            outcome = failed(error)
            return ("refused" if outcome.status == DEAD else "error"), None, error.message, outcome
        summary = _summary(result)
        if result.get("isError") is True:
            return "error", summary, f"{automation.tool_name} answered with an error", Outcome(DELIVERED)
        return "ok", summary, None, Outcome(DELIVERED)

    async def _owner(self, automation: Automation) -> Principal:
        """The owner as a member of the organization now, narrowed to the automation's one tool."""
        async with self._db.transaction() as session:
            slug = await session.scalar(
                select(organizations.c.slug).where(organizations.c.id == automation.organization_id)
            )
            if slug is None:
                raise NotFound("the organization is gone")
            try:
                member = await member_principal(session, automation.owner_id, str(slug))
            except NotFound as exc:
                raise PermissionDenied("the automation's owner is no longer a member of the organization") from exc
        if not member.allows(automation.connection_id, automation.tool_name):
            raise PermissionDenied(
                f"the automation's owner may no longer call {automation.tool_name}: it needs the permission"
                f" {automation.connection_id}:{automation.tool_name}"
            )
        narrowed = {automation.connection_id: [automation.tool_name]}
        return replace(member, grants=(*member.grants, narrowed))


def _summary(result: dict[str, object]) -> str:
    """The result as JSON, cut to `MAX_RESULT` bytes (on a character boundary)."""
    text = orjson.dumps(result).decode()
    if len(text.encode()) <= MAX_RESULT:
        return text
    return text.encode()[: MAX_RESULT - 3].decode("utf-8", "ignore") + "..."
