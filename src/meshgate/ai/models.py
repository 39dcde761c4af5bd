"""AI provider kinds, stored provider keys, model ids (`<provider name>/<model>`) and who may use a model."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meshgate.access import WILDCARD, Principal
from meshgate.errors import InvalidInput

AI = "ai"  # the permission resource: `{"ai": ["anthropic/*", "openai/gpt-4o"]}`; a tool name is a model pattern

OPENAI, ANTHROPIC, GEMINI, OPENROUTER, COMPATIBLE = "openai", "anthropic", "gemini", "openrouter", "openai-compatible"
# The API root of each provider; `openai-compatible` (Ollama, vLLM, LM Studio …) has none and needs a base URL.
# Gemini is reached through Google's OpenAI-compatible endpoint (chat, streaming, tools, embeddings, models).
DEFAULT_BASE_URLS = {
    OPENAI: "https://api.openai.com/v1",
    ANTHROPIC: "https://api.anthropic.com/v1",
    GEMINI: "https://generativelanguage.googleapis.com/v1beta/openai",
    OPENROUTER: "https://openrouter.ai/api/v1",
}
PROVIDERS = (OPENAI, ANTHROPIC, GEMINI, OPENROUTER, COMPATIBLE)
# Providers that speak OpenAI's Chat Completions wire format, so requests pass through with the model renamed.
OPENAI_WIRE = frozenset({OPENAI, GEMINI, OPENROUTER, COMPATIBLE})
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def clean_provider_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInput(
            f"provider name {name[:60]!r} must be 1-40 lower-case letters, digits, '-' or '_' (it starts model ids)"
        )
    return name


@dataclass(frozen=True, slots=True)
class ProviderKey:
    """A provider credential as reads show it: never the key, only its last characters."""

    id: str
    organization_id: str
    name: str
    provider: str
    base_url: str | None
    hint: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime

    @property
    def api_root(self) -> str:
        return (self.base_url or DEFAULT_BASE_URLS[self.provider]).rstrip("/")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "organizationId": self.organization_id,
            "name": self.name,
            "provider": self.provider,
            "baseUrl": self.api_root,
            "keyHint": None if self.hint is None else f"…{self.hint}",
            "createdBy": self.created_by,
            "createdAt": _iso(self.created_at),
            "updatedAt": _iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class OpenedProvider:
    """A provider key with its secret opened, kept in memory for the API's hot path."""

    key: ProviderKey
    secret: str | None


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def split_model_id(model: object) -> tuple[str, str]:
    """`anthropic/claude-sonnet-4` → ("anthropic", "claude-sonnet-4"); the model part may hold more slashes."""
    if not isinstance(model, str) or "/" not in model or len(model) > 300:
        raise InvalidInput("model must be a string '<provider>/<model>', e.g. 'openai/gpt-4o' (see GET /models)")
    provider, _, name = model.partition("/")
    if not provider or not name:
        raise InvalidInput("model must be a string '<provider>/<model>', e.g. 'openai/gpt-4o' (see GET /models)")
    return provider, name


def model_allowed(principal: Principal, model: str) -> bool:
    """Whether every grant of the caller allows `model` under "ai" (or "*"): a pattern is `*`, an exact id or a
    glob such as `anthropic/*`."""
    for grant in principal.grants:
        patterns = [*grant.get(AI, ()), *grant.get(WILDCARD, ())]
        if not any(p in (WILDCARD, model) or ("*" in p and fnmatch.fnmatchcase(model, p)) for p in patterns):
            return False
    return True
