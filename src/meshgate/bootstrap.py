"""`meshgate bootstrap`: the first user, their organization and an owner API key."""

from __future__ import annotations

from dataclasses import dataclass

from meshgate.db.database import Database
from meshgate.identity.passwords import hash_password
from meshgate.identity.service import ApiKeyService, OrganizationService, UserService


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    user_id: str
    organization_id: str
    organization_slug: str
    api_key: str

    def to_dict(self) -> dict[str, str]:
        return {
            "user_id": self.user_id,
            "organization_id": self.organization_id,
            "organization_slug": self.organization_slug,
            "api_key": self.api_key,
        }


async def bootstrap_owner(database_url: str, *, email: str, password: str | None, org_name: str) -> BootstrapResult:
    """Everything in one transaction: a failure (such as an existing email) leaves nothing behind."""
    password_hash = None if password is None else hash_password(password)
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            # The operator names the address: it counts as verified (nobody else could have claimed it).
            user = await UserService(session).create(email, password_hash=password_hash, verified=True)
            org = await OrganizationService(session).create(org_name, user.id)
            _key, value = await ApiKeyService(session, org.id).create(user.id, "bootstrap")
    finally:
        await db.close()
    return BootstrapResult(user.id, org.id, org.slug, value)
