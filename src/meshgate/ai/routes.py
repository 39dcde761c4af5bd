"""The OpenAI-compatible API at `/api/{org_slug}/v1`: chat completions (streamed or not, tools), models and
embeddings over the organization's AI providers. Callers use meshgate API keys or access tokens, through the
same admission as every endpoint, and need `ai:<model>` (see `meshgate.ai.models.model_allowed`); the
provider's key never leaves meshgate. Errors have OpenAI's shape (`meshgate.http.errors.openai_error`)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from meshgate.access import Principal
from meshgate.ai import anthropic, openai_wire
from meshgate.ai.directory import AiProviders
from meshgate.ai.models import AI, ANTHROPIC, OpenedProvider, model_allowed, split_model_id
from meshgate.ai.usage import CHAT, EMBEDDINGS, AiCall, AiMeter
from meshgate.errors import InvalidInput, MeshgateError, NotFound, PermissionDenied
from meshgate.http.errors import openai_error, openai_error_body
from meshgate.http.guard import Admission, headers_of, request_id_of
from meshgate.jsonvalues import as_dict

log = logging.getLogger(__name__)
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class AiRoutes:
    def __init__(self, ai: AiProviders, admission: Admission, meter: AiMeter) -> None:
        self._ai = ai
        self._admission = admission
        self._meter = meter

    def routes(self) -> list[Route]:
        return [
            Route("/api/{org_slug}/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/api/{org_slug}/v1/models", self.list_models, methods=["GET"]),
            Route("/api/{org_slug}/v1/embeddings", self.embeddings, methods=["POST"]),
        ]

    async def _admit(self, request: Request, headers: dict[str, str] | None = None) -> tuple[Principal, bytes]:
        headers = headers_of(request.scope) if headers is None else headers
        principal, body = await self._admission.admit(request.scope, request.receive, headers)
        if principal.organization_slug != request.path_params["org_slug"]:
            raise NotFound(f"organization {str(request.path_params['org_slug'])[:100]} not found")
        return principal, body

    async def _call(self, request: Request, method: str) -> tuple[AiCall, dict[str, Any]]:
        """The audited call of an admitted caller, and its body."""
        headers = headers_of(request.scope)
        principal, raw = await self._admit(request, headers)
        call = self._meter.start(principal, method, headers.get("user-agent"), request_id_of(headers))
        try:
            return call, _json_object(raw)
        except MeshgateError as error:
            call.finish(error)
            raise

    async def _target(self, call: AiCall, body: dict[str, Any]) -> tuple[OpenedProvider, str, str]:
        """The provider, its own model name, and the model id as the caller wrote it; then the limits' check."""
        shown = body.get("model")
        provider, model = split_model_id(shown)
        assert isinstance(shown, str)  # noqa: S101  (split_model_id checked it)
        call.model, call.provider_model = shown, model
        if not model_allowed(call.principal, shown):
            raise PermissionDenied(
                f"model {shown[:100]!r} is not allowed for this credential: it needs {AI}:{shown[:100]}"
            )
        opened = await self._ai.provider(call.principal.organization_id, provider)
        self._meter.admit(call)
        return opened, model, shown

    async def chat_completions(self, request: Request) -> Response:
        call: AiCall | None = None
        try:
            call, body = await self._call(request, CHAT)
            opened, model, shown = await self._target(call, body)
            if not isinstance(body.get("messages"), list) or not body["messages"]:
                raise InvalidInput("messages must be a non-empty list of chat messages")
            if await self._ai.keeps_prompts(call.principal.organization_id):
                call.prompt = {"messages": body["messages"]}
            tokens = call.tokens
            if body.get("stream"):
                if opened.key.provider == ANTHROPIC:
                    stream = await anthropic.chat_stream(self._ai.http, opened, body, model, shown, tokens)
                else:
                    stream = await openai_wire.chat_stream(self._ai.http, opened, body, model, tokens)
                return StreamingResponse(_guarded(stream, call), media_type="text/event-stream", headers=_SSE_HEADERS)
            if opened.key.provider == ANTHROPIC:
                answer = await anthropic.chat(self._ai.http, opened, body, model, shown)
            else:
                answer = {**await openai_wire.chat(self._ai.http, opened, body, model), "model": shown}
            tokens.read(answer.get("usage"))
        except MeshgateError as error:
            if call is not None:
                call.finish(error)
            return openai_error(error)
        call.finish()
        return Response(orjson.dumps(answer), media_type="application/json")

    async def list_models(self, request: Request) -> Response:
        try:
            principal, _ = await self._admit(request)
            models, errors = await self._ai.all_models(principal.organization_id)
        except MeshgateError as error:
            return openai_error(error)
        for name, reason in errors.items():
            log.warning("AI provider %s left out of the model listing: %s", name, reason)
        now = int(time.time())
        data = [
            {"id": model, "object": "model", "created": now, "owned_by": name}
            for name in sorted(models)
            for model in models[name]
            if model_allowed(principal, model)
        ]
        return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")

    async def embeddings(self, request: Request) -> Response:
        call: AiCall | None = None
        try:
            call, body = await self._call(request, EMBEDDINGS)
            opened, model, shown = await self._target(call, body)
            if opened.key.provider == ANTHROPIC:
                raise InvalidInput(
                    f"provider {opened.key.name} (anthropic) has no embeddings API; use an OpenAI-compatible one"
                )
            if await self._ai.keeps_prompts(call.principal.organization_id):
                call.prompt = {"input": body.get("input")}
            answer = {
                **await openai_wire.post_json(self._ai.http, opened, "/embeddings", {**body, "model": model}),
                "model": shown,
            }
            call.tokens.read(answer.get("usage"))
        except MeshgateError as error:
            if call is not None:
                call.finish(error)
            return openai_error(error)
        call.finish()
        return Response(orjson.dumps(answer), media_type="application/json")


async def _guarded(stream: AsyncIterator[bytes], call: AiCall) -> AsyncIterator[bytes]:
    """The stream, and a failure after its first byte as an OpenAI error event (the status is already sent);
    the call is audited when the stream ends, however it ends."""
    failure: MeshgateError | None = None
    ended = False
    try:
        async for chunk in stream:
            yield chunk
        ended = True
    except MeshgateError as error:
        failure, ended = error, True
        yield b"data: " + orjson.dumps(openai_error_body(error)) + b"\n\n"
    finally:
        call.finish(failure, cut_short=not ended)  # not ended: the client went away (the task was cancelled)


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidInput("the body must be a JSON object")
    return as_dict(value)
