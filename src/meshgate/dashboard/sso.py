"""An organization's single sign-on settings (owners only): the provider, the callback URL to register at it,
the email domains that join, the role joiners get and "SSO required". The page runs the same
ORGANIZATION_SSO_* and ORGANIZATION_DOMAIN_* tools as `/mcp`; the service refuses anyone but an owner."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meshgate.dashboard._core import Dashboard, Form, Visit, field, optional
from meshgate.errors import MeshgateError, NotFound, PermissionDenied
from meshgate.identity.models import BUILTIN_ROLES
from meshgate.jsonvalues import as_dict, as_list

PROVIDER_CHOICES = (("oidc", "Any OpenID Connect provider"), ("google", "Google"), ("github", "GitHub"))
_NOT_OWNER = "only an owner of the organization can see and change its single sign-on"


class SsoPages:
    def __init__(self, dashboard: Dashboard) -> None:
        self._d = dashboard

    def routes(self) -> list[Route]:
        d = self._d
        return [
            Route("/app/{org}/sso", d.view(self.show), methods=["GET"]),
            Route("/app/{org}/sso", d.action(self.save), methods=["POST"]),
            Route("/app/{org}/sso/clear", d.action(self.clear), methods=["POST"]),
            Route("/app/{org}/sso/domains", d.action(self.save_domains), methods=["POST"]),
        ]

    async def show(self, request: Request, visit: Visit, status: int = 200, **context: Any) -> Response:
        _owner(visit)
        try:
            current: dict[str, Any] | None = as_dict(await self._d.tool(visit, "ORGANIZATION_SSO_GET"))
        except NotFound:
            current = None
        domains = [str(d) for d in as_list((await self._d.tool(visit, "ORGANIZATION_DOMAIN_GET"))["domains"])]
        return self._d.page(
            request,
            visit,
            "dashboard/sso.html",
            status,
            section="settings",
            current=current,
            values=context.pop("values", None) or _values(current),
            domains=context.pop("domains_typed", None) or "\n".join(domains),
            callback_url=f"{self._d.runtime.settings.public_url}/sso/callback",
            providers=PROVIDER_CHOICES,
            role_names=await self._role_names(visit),
            **context,
        )

    async def save(self, request: Request, visit: Visit, form: Form) -> Response:
        _owner(visit)
        provider = field(form, "provider")
        arguments: dict[str, Any] = {
            "provider": provider,
            "issuer": field(form, "issuer") if provider == "oidc" else optional(form, "issuer"),
            "clientId": field(form, "client_id"),
            "scopes": optional(form, "scopes"),
            "defaultRole": field(form, "default_role") or "member",
            "ssoRequired": field(form, "sso_required") == "on",
        }
        secret = single_line(form, "client_secret")
        if field(form, "remove_secret") == "on":
            arguments["clientSecret"] = ""
        elif secret:
            arguments["clientSecret"] = secret
        try:
            await self._d.tool(visit, "ORGANIZATION_SSO_SET", arguments)
        except MeshgateError as error:
            typed = {k: field(form, k) for k in ("provider", "issuer", "client_id", "scopes", "default_role")}
            typed["sso_required"] = arguments["ssoRequired"]
            return await self.show(request, visit, error.http_status, error=error.message, values=typed)
        return self._d.back(visit, "/sso", "settings-saved")

    async def clear(self, request: Request, visit: Visit, _form: Form) -> Response:
        _owner(visit)
        try:
            await self._d.tool(visit, "ORGANIZATION_SSO_CLEAR")
        except NotFound as error:
            return await self.show(request, visit, error.http_status, error=error.message)
        return self._d.back(visit, "/sso", "settings-saved")

    async def save_domains(self, request: Request, visit: Visit, form: Form) -> Response:
        _owner(visit)
        typed = field(form, "domains")
        domains = [d for d in re.split(r"[\s,]+", typed) if d]
        try:
            if domains:
                await self._d.tool(visit, "ORGANIZATION_DOMAIN_SET", {"domains": domains})
            else:
                await self._d.tool(visit, "ORGANIZATION_DOMAIN_CLEAR")
        except MeshgateError as error:
            return await self.show(request, visit, error.http_status, domain_error=error.message, domains_typed=typed)
        return self._d.back(visit, "/sso", "settings-saved")

    async def _role_names(self, visit: Visit) -> list[str]:
        """The roles joiners may get: never owner."""
        custom: list[str] = []
        if visit.can("ROLE_LIST"):
            custom = [str(as_dict(r)["name"]) for r in as_list((await self._d.tool(visit, "ROLE_LIST"))["items"])]
        return [r for r in (*BUILTIN_ROLES, *custom) if r != "owner"]


def _owner(visit: Visit) -> None:
    if visit.principal.role != "owner":
        raise PermissionDenied(_NOT_OWNER)


def single_line(form: Form, name: str) -> str:
    return field(form, name).replace("\r", "").replace("\n", "")


def _values(current: dict[str, Any] | None) -> dict[str, Any]:
    if current is None:
        return {"provider": "oidc", "issuer": "", "client_id": "", "scopes": "", "default_role": "member"}
    return {
        "provider": current["provider"],
        "issuer": current["issuer"],
        "client_id": current["clientId"],
        "scopes": current["scopes"],
        "default_role": current["defaultRole"],
        "sso_required": current["ssoRequired"],
    }
