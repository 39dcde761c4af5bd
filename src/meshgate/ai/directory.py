"""The organizations' AI providers in memory (keys opened once, forgotten when they change) and each
provider's model listing, cached for a while: the API's steady state queries no database."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from meshgate.ai import anthropic, openai_wire
from meshgate.ai.models import ANTHROPIC, OpenedProvider
from meshgate.ai.service import AI_TOPIC, ProviderKeyService
from meshgate.ai.wire import ProviderHttp
from meshgate.db.database import EVERYTHING, Database
from meshgate.errors import NotFound, ProviderError
from meshgate.identity.service import IDENTITY, OrganizationService
from meshgate.vault import Vault

log = logging.getLogger(__name__)


class AiProviders:
    def __init__(
        self,
        db: Database,
        vault: Vault,
        http: ProviderHttp,
        *,
        models_ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._vault = vault
        self.http = http
        self._ttl = models_ttl_s
        self._clock = clock
        self._orgs: dict[str, dict[str, OpenedProvider]] = {}
        self._models: dict[tuple[str, str], tuple[float, list[str]]] = {}
        self._keep_prompts: dict[str, bool] = {}  # the organization's `ai_keep_prompts` setting
        self._generation = 0  # a load that a change overtook is not kept
        db.subscribe(self._on_change)

    def _on_change(self, topic: str) -> None:
        if topic in (AI_TOPIC, EVERYTHING):
            self._generation += 1
            self._orgs.clear()
            self._models.clear()
            self._keep_prompts.clear()
        elif topic == IDENTITY:  # where organization settings change
            self._generation += 1
            self._keep_prompts.clear()

    async def providers(self, organization_id: str) -> dict[str, OpenedProvider]:
        found = self._orgs.get(organization_id)
        if found is None:
            generation = self._generation
            async with self._db.transaction() as session:
                found = await ProviderKeyService(session, organization_id, self._vault).opened()
                settings = await OrganizationService(session).get_settings(organization_id)
            if generation == self._generation:
                self._orgs[organization_id] = found
                self._keep_prompts[organization_id] = settings.get("ai_keep_prompts") is True
        return found

    async def keeps_prompts(self, organization_id: str) -> bool:
        """Whether the organization has AI calls' messages kept (redacted) in the audit log."""
        kept = self._keep_prompts.get(organization_id)
        if kept is None:
            generation = self._generation
            async with self._db.transaction() as session:
                settings = await OrganizationService(session).get_settings(organization_id)
            kept = settings.get("ai_keep_prompts") is True
            if generation == self._generation:
                self._keep_prompts[organization_id] = kept
        return kept

    async def provider(self, organization_id: str, name: str) -> OpenedProvider:
        found = (await self.providers(organization_id)).get(name)
        if found is None:
            raise NotFound(f"no AI provider named {name[:40]!r} in this organization (see AI_PROVIDER_KEY_LIST)")
        return found

    async def models(self, opened: OpenedProvider) -> list[str]:
        """The provider's model ids as `<name>/<model>`, from its listing (kept `MESHGATE_AI_MODELS_TTL_SECONDS`)."""
        cache_key = (opened.key.organization_id, opened.key.id)
        cached = self._models.get(cache_key)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        listing = anthropic.models if opened.key.provider == ANTHROPIC else openai_wire.models
        ids = [f"{opened.key.name}/{model}" for model in await listing(self.http, opened)]
        self._models[cache_key] = (self._clock() + self._ttl, ids)
        return ids

    async def all_models(self, organization_id: str) -> tuple[dict[str, list[str]], dict[str, str]]:
        """Every provider's models, fetched side by side; a provider that fails is reported, not fatal."""
        providers = list((await self.providers(organization_id)).values())
        answers = await asyncio.gather(*(self.models(p) for p in providers), return_exceptions=True)
        models: dict[str, list[str]] = {}
        errors: dict[str, str] = {}
        for opened, answer in zip(providers, answers, strict=True):
            if isinstance(answer, ProviderError):
                errors[opened.key.name] = answer.message
            elif isinstance(answer, BaseException):
                raise answer
            else:
                models[opened.key.name] = answer
        return models, errors

    def close(self) -> None:
        self.http.close()
