"""AI_PROVIDER_KEY_* and AI_PROVIDERS_* management tools."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from meshgate.ai.models import PROVIDERS
from meshgate.ai.service import ProviderKeyService
from meshgate.mcp.registry import ToolContext, ToolInput, ToolSpec


class ProviderKeyCreateInput(ToolInput):
    provider: str = Field(max_length=32, description=f"One of {', '.join(PROVIDERS)}")
    name: str | None = Field(
        default=None, max_length=40, description="Prefix of its model ids (`<name>/<model>`); the provider's by default"
    )
    apiKey: str | None = Field(default=None, max_length=4096, description="The provider's API key (write-only)")  # noqa: N815  (camelCase like the other tools)
    baseUrl: str | None = Field(  # noqa: N815
        default=None,
        max_length=2048,
        description="API root, e.g. http://127.0.0.1:11434/v1; needed for openai-compatible",
    )


class ProviderKeyUpdateInput(ToolInput):
    keyId: str = Field(max_length=36, description="From AI_PROVIDER_KEY_LIST")  # noqa: N815
    apiKey: str | None = Field(default=None, max_length=4096, description="A new key; empty string removes it")  # noqa: N815
    baseUrl: str | None = Field(default=None, max_length=2048, description="A new API root")  # noqa: N815


class ProviderKeyIdInput(ToolInput):
    keyId: str = Field(max_length=36, description="From AI_PROVIDER_KEY_LIST")  # noqa: N815


class NoInput(ToolInput):
    pass


class ListModelsInput(ToolInput):
    provider: str | None = Field(default=None, max_length=40, description="Only this provider's models (its name)")


def _service(ctx: ToolContext) -> ProviderKeyService:
    return ProviderKeyService(ctx.session, ctx.principal.organization_id, ctx.runtime.vault)


async def key_create(ctx: ToolContext, args: ProviderKeyCreateInput) -> Any:
    key = await _service(ctx).create(ctx.principal, args.provider, args.name, args.apiKey, args.baseUrl)
    return key.to_dict()


async def key_list(ctx: ToolContext, _args: NoInput) -> Any:
    return {"items": [key.to_dict() for key in await _service(ctx).list(ctx.principal)]}


async def key_update(ctx: ToolContext, args: ProviderKeyUpdateInput) -> Any:
    changes: dict[str, Any] = {}
    if "apiKey" in args.model_fields_set:
        changes["api_key"] = args.apiKey
    if "baseUrl" in args.model_fields_set:
        changes["base_url"] = args.baseUrl
    return (await _service(ctx).update(ctx.principal, args.keyId, **changes)).to_dict()


async def key_delete(ctx: ToolContext, args: ProviderKeyIdInput) -> Any:
    return {**(await _service(ctx).delete(ctx.principal, args.keyId)).to_dict(), "deleted": True}


async def providers_list(ctx: ToolContext, _args: NoInput) -> Any:
    opened = await ctx.runtime.ai.providers(ctx.principal.organization_id)
    items = [
        {"name": p.key.name, "provider": p.key.provider, "baseUrl": p.key.api_root, "hasKey": p.secret is not None}
        for p in sorted(opened.values(), key=lambda p: p.key.name)
    ]
    return {"items": items, "supported": list(PROVIDERS)}


async def providers_list_models(ctx: ToolContext, args: ListModelsInput) -> Any:
    ai = ctx.runtime.ai
    if args.provider is not None:
        return {"items": await ai.models(await ai.provider(ctx.principal.organization_id, args.provider)), "errors": {}}
    models, errors = await ai.all_models(ctx.principal.organization_id)
    return {"items": [model for name in sorted(models) for model in models[name]], "errors": errors}


TOOLS: list[ToolSpec[Any]] = [
    ToolSpec(
        "AI_PROVIDER_KEY_CREATE",
        "Add an AI provider (OpenAI, Anthropic, Gemini, OpenRouter or any OpenAI-compatible API) with its key, sealed"
        " in the vault and never shown again; owners and admins only.",
        ProviderKeyCreateInput,
        key_create,
    ),
    ToolSpec(
        "AI_PROVIDER_KEY_LIST",
        "List the organization's AI provider keys (a hint of each key's last characters, never the key).",
        NoInput,
        key_list,
        read_only=True,
    ),
    ToolSpec("AI_PROVIDER_KEY_UPDATE", "Replace an AI provider's key or base URL.", ProviderKeyUpdateInput, key_update),
    ToolSpec("AI_PROVIDER_KEY_DELETE", "Remove an AI provider and its key.", ProviderKeyIdInput, key_delete),
    ToolSpec(
        "AI_PROVIDERS_LIST",
        "The organization's AI providers (the prefixes of model ids) and the provider kinds meshgate supports.",
        NoInput,
        providers_list,
        read_only=True,
    ),
    ToolSpec(
        "AI_PROVIDERS_LIST_MODELS",
        "Model ids (`<provider>/<model>`) from each provider's own listing, cached for a few minutes; providers"
        " that could not be asked are named under errors.",
        ListModelsInput,
        providers_list_models,
        read_only=True,
    ),
]
