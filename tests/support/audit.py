"""Audit history written through the audit writer (the service the proxy uses), for charts and filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from meshgate.db.database import Database
from meshgate.monitoring.models import AuditEntry
from meshgate.monitoring.writer import AuditWriter
from support.gateway import Gateway


async def seed_history(
    gateway: Gateway,
    organization_id: str,
    connection_id: str,
    user_id: str,
    *,
    hours: int = 24,
    per_hour: int = 12,
    ago: timedelta = timedelta(0),
) -> int:
    """Past calls written through the audit writer, so charts and tables show a day of traffic."""
    db = Database(gateway.env["DATABASE_URL"])
    writer = AuditWriter(db)
    writer.start()
    now = datetime.now(UTC) - ago
    count = 0
    try:
        for hour in range(hours):
            for n in range(per_hour + (hour * 7) % 9):
                failed = (hour + n) % 11 == 0
                tool = ("echo", "add", "fail" if failed else "headers")[n % 3]
                writer.record(
                    AuditEntry(
                        organization_id=organization_id,
                        connection_id=connection_id,
                        method="tools/call",
                        tool_name=tool,
                        user_id=user_id,
                        api_key_id=None,
                        user_agent="seeded history",
                        request_id=f"seed-{hour}-{n}",
                        protocol_version="2025-11-25",
                        params={"n": n},
                        message_id=1,
                        started_at=now - timedelta(hours=hours - hour, minutes=(n * 13) % 60),
                        duration_ms=3.0 + (n * 37 + hour * 11) % 40 + (90.0 if n % 17 == 0 else 0.0),
                        is_error=failed or None,
                        error_message="it failed on purpose" if failed else None,
                    )
                )
                count += 1
    finally:
        await writer.stop()
        await db.close()
    return count
