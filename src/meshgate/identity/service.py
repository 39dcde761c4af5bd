"""Identity services: each takes a database session (and an organization where it is scoped to one)."""

from meshgate.identity._api_keys import ApiKeyService, hash_key
from meshgate.identity._connection_keys import CONNECTION_KEY_PREFIX, ConnectionKey, ConnectionKeyService
from meshgate.identity._invitations import (
    InvitationService,
    accept_as_new_account,
    accept_invitation,
    open_invitation,
)
from meshgate.identity._members import MemberService
from meshgate.identity._organizations import IDENTITY, OrganizationService
from meshgate.identity._principals import member_principal
from meshgate.identity._roles import RoleService
from meshgate.identity._users import UserService

__all__ = [
    "CONNECTION_KEY_PREFIX",
    "IDENTITY",
    "ApiKeyService",
    "ConnectionKey",
    "ConnectionKeyService",
    "InvitationService",
    "MemberService",
    "OrganizationService",
    "RoleService",
    "UserService",
    "accept_as_new_account",
    "accept_invitation",
    "hash_key",
    "member_principal",
    "open_invitation",
]
