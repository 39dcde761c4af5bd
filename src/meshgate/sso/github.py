"""The GitHub preset: GitHub's OAuth web flow, which is not OpenID Connect.

The browser goes to `{github}/login/oauth/authorize`; the code is exchanged at `{github}/login/oauth/access_token`
(client id and secret in the form, `Accept: application/json`; GitHub answers errors with HTTP 200 and an `error`
field), then `GET {api}/user` gives the stable numeric id and `GET {api}/user/emails` the addresses. Only the
address GitHub marks both `primary` and `verified` is used: GitHub's `/user` `email` is whatever public address
the person chose and says nothing about verification. Both URLs are the gateway's settings
(`MESHGATE_SSO_GITHUB_URL`, `MESHGATE_SSO_GITHUB_API_URL`) so GitHub Enterprise or a test stand-in can be used.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from meshgate.connections.addresses import AddressPolicy
from meshgate.errors import OAuthSetupError
from meshgate.jsonvalues import as_dict, as_list
from meshgate.oauth.fetch import Fetched, FetchError, fetch
from meshgate.sso.models import GITHUB_ISSUER
from meshgate.sso.oidc import Identity, ProviderMetadata, SignInRefused

SCOPES = "read:user user:email"
_API_HEADERS = {"accept": "application/vnd.github+json", "x-github-api-version": "2022-11-28"}


def github_metadata(github_url: str) -> ProviderMetadata:
    """The GitHub endpoints in the shape the sign-in flow keeps (no JWKS: GitHub signs no id_token)."""
    return ProviderMetadata(
        issuer=GITHUB_ISSUER,
        authorization_endpoint=f"{github_url}/login/oauth/authorize",
        token_endpoint=f"{github_url}/login/oauth/access_token",
        jwks_uri="",
        algorithms=(),
        basic_auth=False,
    )


class GitHubClient:
    def __init__(self, addresses: AddressPolicy, api_url: str) -> None:
        self._addresses = addresses
        self._api = api_url

    async def access_token(
        self, provider: ProviderMetadata, *, code: str, verifier: str, redirect_uri: str, client_id: str, secret: str
    ) -> str:
        form = {
            "client_id": client_id,
            "client_secret": secret,
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        headers = {"accept": "application/json", "content-type": "application/x-www-form-urlencoded"}
        try:
            answer = await fetch(
                provider.token_endpoint,
                addresses=self._addresses,
                method="POST",
                headers=headers,
                body=urlencode(form).encode(),
            )
        except FetchError as exc:
            raise OAuthSetupError(f"cannot reach GitHub's token endpoint: {exc}") from exc
        document = as_dict(_json(answer))
        token = document.get("access_token")
        if answer.status != 200 or not isinstance(token, str) or not token:
            error = str(document.get("error") or f"HTTP {answer.status}")[:60]
            raise SignInRefused(f"GitHub did not give an access token for the code ({error})")
        return token

    async def identity(self, token: str) -> Identity:
        """Who the token belongs to, with their verified primary address; `SignInRefused` without one."""
        user = as_dict(await self._get("/user", token))
        subject = user.get("id")
        if not isinstance(subject, int) or isinstance(subject, bool):
            raise SignInRefused("GitHub's /user answer has no numeric id")
        emails = [as_dict(e) for e in as_list(await self._get("/user/emails", token))]
        primary = next((e for e in emails if e.get("primary") is True), None)
        if primary is None or not isinstance(primary.get("email"), str):
            raise SignInRefused("GitHub gave no primary email address (the user:email scope is needed)")
        email = str(primary["email"])
        if primary.get("verified") is not True:
            raise SignInRefused(f"GitHub has not verified the primary address {email[:80]}")
        name = user.get("name") if isinstance(user.get("name"), str) else user.get("login")
        shown = str(name)[:200] if isinstance(name, str) and name.strip() else None
        return Identity(GITHUB_ISSUER, str(subject), email, shown)

    async def _get(self, path: str, token: str) -> Any:
        try:
            answer = await fetch(
                self._api + path,
                addresses=self._addresses,
                headers={**_API_HEADERS, "authorization": f"Bearer {token}"},
            )
        except FetchError as exc:
            raise OAuthSetupError(f"cannot reach GitHub's API: {exc}") from exc
        if answer.status != 200:
            raise SignInRefused(f"GitHub's API answered {path} with HTTP {answer.status}")
        found = _json(answer)
        if found is None:
            raise SignInRefused(f"GitHub's API answered {path} with no JSON")
        return found


def _json(answer: Fetched) -> Any:
    try:
        return answer.json()
    except FetchError:
        return None
