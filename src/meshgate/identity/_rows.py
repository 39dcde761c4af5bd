"""Row → model conversion for the identity services."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from meshgate.identity.models import ApiKey, Member, Organization, Role, User


def user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        email=row.email,
        name=row.name,
        created_at=row.created_at,
        email_verified=row.email_verified_at is not None,
    )


def organization(row: Row[Any]) -> Organization:
    return Organization(
        id=row.id,
        name=row.name,
        slug=row.slug,
        description=row.description,
        settings=row.settings or {},
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def member(row: Row[Any]) -> Member:
    return Member(
        id=row.id,
        organization_id=row.organization_id,
        user_id=row.user_id,
        email=row.email,
        name=row.name,
        role=row.role,
        created_at=row.created_at,
    )


def role(row: Row[Any]) -> Role:
    return Role(
        id=row.id,
        organization_id=row.organization_id,
        name=row.name,
        description=row.description,
        permissions=row.permissions,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def api_key(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        organization_id=row.organization_id,
        user_id=row.user_id,
        name=row.name,
        prefix=row.prefix,
        permissions=row.permissions,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        created_at=row.created_at,
    )
