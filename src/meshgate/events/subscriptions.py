"""Who receives an organization's events: connections (their ON_EVENTS tool) and https webhooks.

A connection is subscribed by someone allowed to call its ON_EVENTS (deliveries run with that person's
permissions), or by itself with its connection credential (then `created_by` is the connection's own id and
deliveries run as the connection, narrowed to its ON_EVENTS). A connection acting for itself names no other
connection. A webhook carries events out of meshgate, so it needs the right to read them (`self:EVENT_LIST`);
a connection's credential makes none.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from meshgate.access import SELF, Principal
from meshgate.connections.addresses import AddressPolicy
from meshgate.db.database import announce_change
from meshgate.db.rows import new_id, utc_now
from meshgate.db.tables import connections, event_subscriptions
from meshgate.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from meshgate.events.filters import checked_filter
from meshgate.events.models import SUBSCRIPTIONS_TOPIC, Subscription, checked_pattern
from meshgate.events.webhooks import checked_url, new_secret
from meshgate.vault import Vault

DELIVERY_TOOL = "ON_EVENTS"
MAX_SUBSCRIPTIONS_PER_CONNECTION = 500
MAX_WEBHOOKS = 100  # per organization
_OWN_ONLY = "a connection's credential acts for its own connection only"


class SubscriptionService:
    """The subscriptions of one organization."""

    def __init__(self, session: AsyncSession, organization_id: str, clock: Callable[[], datetime] = utc_now) -> None:
        self._session = session
        self._org = organization_id
        self._clock = clock

    # -- subscriptions ------------------------------------------------------------------------------------

    async def subscribe(
        self,
        principal: Principal,
        connection_id: str,
        event_type: str,
        publisher: str | None = None,
        filter_: Any = None,
    ) -> tuple[Subscription, bool]:
        """Subscribe a connection; deliveries will call its ON_EVENTS as `principal`'s user, so the principal
        must be allowed to call it. The same subscription twice is one (returned with `False`)."""
        checked_pattern(event_type)
        checked_filter(filter_)
        await self.may_deliver_to(principal, connection_id)
        rows = await self._subscription_rows(connection_id)
        for row in rows:
            if row.event_type == event_type and row.publisher == publisher and row.filter == filter_:
                return _subscription(row), False
        if len(rows) >= MAX_SUBSCRIPTIONS_PER_CONNECTION:
            raise Conflict(f"a connection has at most {MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions")
        now = self._clock()
        values = {
            "id": new_id(),
            "organization_id": self._org,
            "connection_id": connection_id,
            "event_type": event_type,
            "publisher": publisher,
            "filter": filter_,
            "created_by": creator_of(principal),
            "created_at": now,
            "updated_at": now,
        }
        await self._session.execute(insert(event_subscriptions).values(**values))
        await announce_change(self._session, SUBSCRIPTIONS_TOPIC)
        return await self.subscription(str(values["id"])), True

    async def subscribe_webhook(  # noqa: PLR0917  (a webhook subscription has this many parts)
        self,
        principal: Principal,
        url: str,
        event_type: str,
        publisher: str | None,
        filter_: Any,
        vault: Vault,
        addresses: AddressPolicy,
    ) -> tuple[Subscription, str]:
        """Subscribe an https endpoint; returns the subscription and its signing secret (shown this once).

        A webhook carries events out of meshgate, so it needs the right to read them (`self:EVENT_LIST`)."""
        checked_pattern(event_type)
        checked_filter(filter_)
        if principal.connection_id is not None:
            raise PermissionDenied("a connection's credential subscribes its own connection only, not a webhook")
        _may_read(principal)
        await checked_url(url, addresses)
        webhooks = await self._session.scalar(
            select(func.count())
            .select_from(event_subscriptions)
            .where(event_subscriptions.c.organization_id == self._org, event_subscriptions.c.webhook_url.is_not(None))
        )
        if int(webhooks or 0) >= MAX_WEBHOOKS:
            raise Conflict(f"an organization has at most {MAX_WEBHOOKS} webhook subscriptions")
        now, subscription_id, secret = self._clock(), new_id(), new_secret()
        await self._session.execute(
            insert(event_subscriptions).values(
                id=subscription_id,
                organization_id=self._org,
                webhook_url=url,
                webhook_secret=vault.seal(secret.encode(), context=webhook_context(subscription_id)),
                event_type=event_type,
                publisher=publisher,
                filter=filter_,
                created_by=principal.user_id,
                created_at=now,
                updated_at=now,
            )
        )
        await announce_change(self._session, SUBSCRIPTIONS_TOPIC)
        return await self.subscription(subscription_id), secret

    async def unsubscribe(self, principal: Principal, subscription_id: str) -> Subscription:
        found = await self.subscription(subscription_id)
        if found.connection_id is None and found.webhook_url is None:
            raise Conflict(f"subscription {subscription_id} is an automation's trigger: use AUTOMATION_TRIGGER_REMOVE")
        if found.connection_id is None:
            _may_read(principal)
        else:
            await self.may_deliver_to(principal, found.connection_id)
        await self._session.execute(delete(event_subscriptions).where(event_subscriptions.c.id == subscription_id))
        await announce_change(self._session, SUBSCRIPTIONS_TOPIC)
        return found

    async def subscription(self, subscription_id: str) -> Subscription:
        row = (
            await self._session.execute(
                select(event_subscriptions).where(
                    event_subscriptions.c.organization_id == self._org, event_subscriptions.c.id == subscription_id
                )
            )
        ).first()
        if row is None:
            raise NotFound(f"subscription {subscription_id[:80]} not found")
        return _subscription(row)

    async def subscriptions(self, connection_id: str | None = None) -> list[Subscription]:
        query = select(event_subscriptions).where(
            event_subscriptions.c.organization_id == self._org,
            # an automation's triggers are listed with it (AUTOMATION_GET), not here
            or_(event_subscriptions.c.connection_id.is_not(None), event_subscriptions.c.webhook_url.is_not(None)),
        )
        if connection_id is not None:
            query = query.where(event_subscriptions.c.connection_id == connection_id)
        rows = (await self._session.execute(query.order_by(event_subscriptions.c.created_at))).all()
        return [_subscription(row) for row in rows]

    async def sync(
        self, principal: Principal, connection_id: str, wanted: Sequence[Mapping[str, Any]]
    ) -> dict[str, list[dict[str, Any]]]:
        """Make a connection's subscriptions exactly `wanted` (each `{eventType, publisher?, filter?}`): one per
        type and publisher; a changed filter updates it in place, so its pending deliveries stay."""
        await self.may_deliver_to(principal, connection_id)
        if len(wanted) > MAX_SUBSCRIPTIONS_PER_CONNECTION:
            raise InvalidInput(f"at most {MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions per connection")
        desired: dict[tuple[str, str | None], Any] = {}
        for index, item in enumerate(wanted):
            event_type = checked_pattern(str(item.get("eventType", "")))
            publisher = item.get("publisher")
            if (event_type, publisher) in desired:
                raise InvalidInput(f"subscriptions[{index}] repeats eventType {event_type} with the same publisher")
            desired[(event_type, publisher)] = checked_filter(item.get("filter"))
        report: dict[str, list[dict[str, Any]]] = {"created": [], "updated": [], "deleted": [], "unchanged": []}
        existing = {(row.event_type, row.publisher): row for row in await self._subscription_rows(connection_id)}
        now = self._clock()
        for key, row in existing.items():
            if key not in desired:
                await self._session.execute(delete(event_subscriptions).where(event_subscriptions.c.id == row.id))
                await announce_change(self._session, SUBSCRIPTIONS_TOPIC)
                report["deleted"].append(_subscription(row).to_dict())
            elif row.filter != desired[key]:
                await self._session.execute(
                    update(event_subscriptions)
                    .where(event_subscriptions.c.id == row.id)
                    .values(filter=desired[key], created_by=creator_of(principal), updated_at=now)
                )
                report["updated"].append({**_subscription(row).to_dict(), "filter": desired[key]})
            else:
                report["unchanged"].append(_subscription(row).to_dict())
        for (event_type, publisher), filter_ in desired.items():
            if (event_type, publisher) not in existing:
                created, _ = await self.subscribe(principal, connection_id, event_type, publisher, filter_)
                report["created"].append(created.to_dict())
        return report

    async def may_deliver_to(self, principal: Principal, connection_id: str) -> None:
        """The connection exists in this organization and `principal` may have meshgate call its ON_EVENTS."""
        found = await self._session.scalar(
            select(connections.c.id).where(
                connections.c.organization_id == self._org, connections.c.id == connection_id
            )
        )
        if found is None:
            raise NotFound(f"connection {connection_id[:80]} not found")
        if principal.connection_id is not None:
            if connection_id != principal.connection_id:
                raise PermissionDenied(_OWN_ONLY)
            return
        if not principal.allows(connection_id, DELIVERY_TOOL):
            raise PermissionDenied(
                f"subscribing connection {connection_id} needs permission to call its {DELIVERY_TOOL} tool"
            )

    async def _subscription_rows(self, connection_id: str) -> Sequence[Row[Any]]:
        return (
            await self._session.execute(
                select(event_subscriptions).where(
                    event_subscriptions.c.organization_id == self._org,
                    event_subscriptions.c.connection_id == connection_id,
                )
            )
        ).all()


def subscriber_of(principal: Principal, connection_id: str | None) -> str:
    """The connection a subscription tool is about: for a connection acting for itself, itself (naming another
    is refused); anyone else names it."""
    if principal.connection_id is not None:
        if connection_id not in (None, principal.connection_id):
            raise PermissionDenied(_OWN_ONLY)
        return principal.connection_id
    if connection_id is None:
        raise InvalidInput("give connectionId: the connection whose ON_EVENTS receives the events")
    return connection_id


def creator_of(principal: Principal) -> str:
    """Whose permissions a subscription's deliveries run with: the person, or the connection itself."""
    return principal.connection_id or principal.user_id


def webhook_context(subscription_id: str) -> bytes:
    """The vault context of a webhook's secret: a sealed secret opens only for its own subscription."""
    return f"webhook-secret:{subscription_id}".encode()


def _may_read(principal: Principal) -> None:
    if principal.connection_id is not None:
        raise PermissionDenied("a connection's credential has no webhooks: it acts for its own connection only")
    if not principal.allows(SELF, "EVENT_LIST"):
        raise PermissionDenied(
            "a webhook carries events out of meshgate: it needs self:EVENT_LIST, the right to read them"
        )


def _subscription(row: Row[Any]) -> Subscription:
    return Subscription(
        id=row.id,
        organization_id=row.organization_id,
        connection_id=row.connection_id,
        webhook_url=row.webhook_url,
        event_type=row.event_type,
        publisher=row.publisher,
        filter=row.filter,
        created_by=row.created_by,
        created_at=row.created_at,
    )
