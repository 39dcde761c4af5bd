"""The OpenID Connect relying party: discovery, the code exchange, and `id_token` validation.

Every request goes through `meshgate.oauth.fetch` (the SSRF address policy after DNS, capped bodies). The
`id_token` is checked as OpenID Connect Core 1.0 §3.1.3.7 asks: signature by a key of the issuer's JWKS with an
asymmetric algorithm the issuer announces (never `none` or HMAC), `iss` exactly the discovered issuer, `aud`
containing the client id (and `azp` equal to it when present), `exp` and `iat` against the injected clock with
one minute of leeway, and the `nonce` of this sign-in. PyJWT checks the signature, `iss` and `aud`; the times
are checked here so that they follow the gateway's clock.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt

from meshgate.connections.addresses import AddressPolicy
from meshgate.errors import OAuthSetupError, PermissionDenied
from meshgate.jsonvalues import as_dict, as_list
from meshgate.oauth.fetch import Fetched, FetchError, fetch
from meshgate.oauth.server_metadata import check_authorization_endpoint

ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY_S = 60
MAX_TOKEN = 16 * 1024


class SignInRefused(PermissionDenied):
    """The identity provider's answer cannot sign anybody in; the message says why."""


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What the issuer's `/.well-known/openid-configuration` says (the parts a relying party uses)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    basic_auth: bool  # client_secret_basic (the default of OIDC) rather than client_secret_post

    def to_dict(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "jwks_uri": self.jwks_uri,
            "algorithms": list(self.algorithms),
            "basic_auth": self.basic_auth,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProviderMetadata:
        return cls(
            issuer=str(data["issuer"]),
            authorization_endpoint=str(data["authorization_endpoint"]),
            token_endpoint=str(data["token_endpoint"]),
            jwks_uri=str(data["jwks_uri"]),
            algorithms=tuple(str(alg) for alg in data["algorithms"]),
            basic_auth=bool(data["basic_auth"]),
        )


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the identity provider says signed in: only an address it confirmed is ever taken."""

    issuer: str
    subject: str
    email: str
    name: str | None


class OidcClient:
    """Talks to identity providers on behalf of the gateway."""

    def __init__(self, addresses: AddressPolicy) -> None:
        self._addresses = addresses

    async def discover(self, issuer: str) -> ProviderMetadata:
        """The issuer's metadata; its `issuer` must be the configured one (Discovery 1.0 §4.3)."""
        url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
        document = as_dict((await self._get(url)).json())
        found = str(document.get("issuer", ""))
        if found.rstrip("/") != issuer.rstrip("/"):
            raise OAuthSetupError(f"the metadata at {url} names issuer {found[:200]!r}, expected {issuer}")
        try:
            authorization = check_authorization_endpoint(str(document["authorization_endpoint"]), self._addresses)
            token_endpoint, jwks_uri = str(document["token_endpoint"]), str(document["jwks_uri"])
        except KeyError as exc:
            raise OAuthSetupError(f"the OpenID configuration of {issuer} lacks {exc.args[0]}") from exc
        announced = [str(alg) for alg in as_list(document.get("id_token_signing_alg_values_supported"))]
        algorithms = tuple(alg for alg in announced if alg in ASYMMETRIC) or ("RS256",)
        methods = [str(m) for m in as_list(document.get("token_endpoint_auth_methods_supported"))]
        basic = not methods or "client_secret_basic" in methods
        return ProviderMetadata(found, authorization, token_endpoint, jwks_uri, algorithms, basic)

    def authorization_url(self, provider: ProviderMetadata, params: Mapping[str, str]) -> str:
        separator = "&" if "?" in provider.authorization_endpoint else "?"
        return provider.authorization_endpoint + separator + urlencode(params)

    async def exchange(
        self,
        provider: ProviderMetadata,
        *,
        code: str,
        verifier: str,
        redirect_uri: str,
        client_id: str,
        client_secret: str | None,
    ) -> str:
        """Trade the authorization code (with its PKCE verifier) for the `id_token`."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        form["code_verifier"] = verifier
        headers = {"content-type": "application/x-www-form-urlencoded"}
        if client_secret and provider.basic_auth:
            pair = f"{_form_quote(client_id)}:{_form_quote(client_secret)}".encode()
            headers["authorization"] = "Basic " + base64.b64encode(pair).decode()
        else:
            form["client_id"] = client_id
            if client_secret:
                form["client_secret"] = client_secret
        try:
            answer = await fetch(
                provider.token_endpoint,
                addresses=self._addresses,
                method="POST",
                headers=headers,
                body=urlencode(form).encode(),
            )
        except FetchError as exc:
            raise OAuthSetupError(f"cannot reach the identity provider's token endpoint: {exc}") from exc
        document = as_dict(_json_or_none(answer))
        token = document.get("id_token")
        if answer.status != 200 or not isinstance(token, str):
            error = str(document.get("error") or f"HTTP {answer.status}")[:60]
            raise SignInRefused(f"the identity provider did not give an id_token for the code ({error})")
        return token

    async def keys(self, provider: ProviderMetadata) -> jwt.PyJWKSet:
        try:
            return jwt.PyJWKSet.from_dict(as_dict((await self._get(provider.jwks_uri)).json()))
        except jwt.PyJWKSetError as exc:
            raise OAuthSetupError(f"the issuer's JWKS at {provider.jwks_uri} has no usable key: {exc}") from exc

    async def _get(self, url: str) -> Fetched:
        try:
            fetched = await fetch(url, addresses=self._addresses, timeout_s=10.0)
        except FetchError as exc:
            raise OAuthSetupError(f"cannot reach the identity provider: {exc}") from exc
        if fetched.status != 200:
            raise OAuthSetupError(f"{url[:200]} answered HTTP {fetched.status}")
        return fetched


def token_kid(token: str) -> str | None:
    """The `kid` an `id_token`'s header names (None when it names none or is no JWT; validation says why)."""
    if len(token) > MAX_TOKEN:
        return None
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError:
        return None
    return kid if isinstance(kid, str) else None


def validate_id_token(
    token: str, keys: jwt.PyJWKSet, provider: ProviderMetadata, *, client_id: str, nonce: str, now: float
) -> Identity:
    """The identity an `id_token` proves, or `SignInRefused` naming the first check that failed."""
    if len(token) > MAX_TOKEN:
        raise SignInRefused("the id_token is too large")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise SignInRefused("the id_token is not a signed JWT") from exc
    alg, kid = str(header.get("alg", "")), header.get("kid")
    if alg not in provider.algorithms:
        raise SignInRefused(f"the id_token is signed with {alg[:20]!r}; this issuer announces {provider.algorithms}")
    candidates = [key for key in keys.keys if kid is None or key.key_id == kid]
    if not candidates:
        raise SignInRefused("the id_token names a signing key the issuer does not publish")
    claims: dict[str, Any] | None = None
    for key in candidates:
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=client_id,
                issuer=provider.issuer,
                options={
                    "verify_exp": False,  # checked below against the gateway's clock
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["iss", "aud", "sub", "exp", "iat"],
                },
            )
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidAudienceError as exc:
            raise SignInRefused("the id_token was issued for another client (aud does not match)") from exc
        except jwt.InvalidIssuerError as exc:
            raise SignInRefused(f"the id_token comes from another issuer than {provider.issuer}") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise SignInRefused(f"the id_token lacks the {exc.claim} claim") from exc
        except jwt.InvalidTokenError as exc:
            raise SignInRefused(f"the id_token is not valid: {exc}") from exc
    if claims is None:
        raise SignInRefused("the id_token's signature does not verify with the issuer's keys")
    return _identity(claims, provider, client_id=client_id, nonce=nonce, now=now)


def _identity(
    claims: dict[str, Any], provider: ProviderMetadata, *, client_id: str, nonce: str, now: float
) -> Identity:
    audiences = as_list(claims["aud"]) or [claims["aud"]]
    azp = claims.get("azp")
    if (len(audiences) > 1 or azp is not None) and azp != client_id:
        raise SignInRefused("the id_token was issued to another party (azp does not match)")
    exp, iat = claims["exp"], claims["iat"]
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        raise SignInRefused("the id_token's exp and iat must be numbers")
    if exp + LEEWAY_S <= now:
        raise SignInRefused("the id_token has expired")
    if iat - LEEWAY_S > now:
        raise SignInRefused("the id_token was issued in the future")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf - LEEWAY_S > now:
        raise SignInRefused("the id_token is not valid yet")
    found = claims.get("nonce")
    if not isinstance(found, str) or not hmac.compare_digest(found.encode(), nonce.encode()):
        raise SignInRefused("the id_token belongs to another sign-in (nonce does not match)")
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise SignInRefused("the id_token's sub must be a string of 1 to 255 characters")
    email, verified = claims.get("email"), claims.get("email_verified")
    if not isinstance(email, str) or not email:
        raise SignInRefused("the identity provider gave no email address (ask for the email scope)")
    if verified is not True and verified != "true":
        raise SignInRefused(f"the identity provider has not confirmed the address {email[:80]}")
    name = claims.get("name")
    return Identity(provider.issuer, subject, email, name[:200] if isinstance(name, str) and name.strip() else None)


def _form_quote(value: str) -> str:
    # RFC 6749 §2.3.1: the client id and secret are form-encoded before they go into Basic credentials.
    return urlencode({"": value})[1:]


def _json_or_none(answer: Fetched) -> Any:
    try:
        return answer.json()
    except FetchError:
        return None
