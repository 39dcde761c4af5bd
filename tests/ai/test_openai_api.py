"""The OpenAI-compatible API (`/api/{org_slug}/v1`) driven by the official `openai` SDK, over stand-ins for
OpenAI and Anthropic (tests/support/ai_providers.py), through a real gateway on every database backend."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import openai
import pytest

from conftest import key_for_user, new_owner
from support.ai_providers import ANTHROPIC_KEY, OPENAI_KEY, Providers
from support.gateway import Gateway, Owner, free_port
from support.mcp_client import call, call_error, connect
from support.secrets import remember_secret
from support.served import serve_asgi

pytestmark = pytest.mark.anyio

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


_OPEN: list[openai.AsyncOpenAI] = []


def sdk(gateway: Gateway, key: str, slug: str) -> openai.AsyncOpenAI:
    """The official client against one organization's API (closed after the test, on its own loop)."""
    client = openai.AsyncOpenAI(api_key=key, base_url=f"{gateway.url}/api/{slug}/v1", max_retries=0, timeout=30)
    _OPEN.append(client)
    return client


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    while _OPEN:
        await _OPEN.pop().close()


@dataclass
class Org:
    owner: Owner
    gateway: Gateway
    standin: Providers

    def client(self, key: str | None = None, slug: str | None = None) -> openai.AsyncOpenAI:
        return sdk(self.gateway, key or self.owner.api_key, slug or self.owner.organization_slug)


@pytest.fixture
async def standin() -> AsyncIterator[tuple[Providers, str]]:
    remember_secret(OPENAI_KEY)
    remember_secret(ANTHROPIC_KEY)
    app = Providers()
    port = free_port()
    async with serve_asgi(app, port):
        try:
            yield app, f"http://127.0.0.1:{port}"
        finally:
            app.release.set()
            app.held.set()


async def add_provider(gateway: Gateway, owner: Owner, **data: Any) -> dict[str, Any]:
    async with connect(gateway.mcp_url, owner.api_key) as client:
        return await call(client, "AI_PROVIDER_KEY_CREATE", data)


@pytest.fixture
async def org(gateway: Gateway, standin: tuple[Providers, str]) -> Org:
    app, url = standin
    owner = await new_owner(gateway)
    await add_provider(gateway, owner, provider="openai", apiKey=OPENAI_KEY, baseUrl=f"{url}/openai/v1")
    await add_provider(gateway, owner, provider="anthropic", apiKey=ANTHROPIC_KEY, baseUrl=f"{url}/anthropic/v1")
    return Org(owner, gateway, app)


@pytest.mark.parametrize("model", ["openai/gpt-4o", "anthropic/claude-sonnet-4"])
async def test_chat_completion_answers_through_the_organizations_provider(org: Org, model: str) -> None:
    answer = await org.client().chat.completions.create(
        model=model, messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    )
    assert answer.choices[0].message.content == "echo: hello"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == model
    assert answer.usage is not None and answer.usage.total_tokens > 0


async def test_anthropic_receives_a_messages_request_with_system_and_max_tokens(org: Org) -> None:
    await org.client().chat.completions.create(
        model="anthropic/claude-sonnet-4",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}],
        temperature=0.5,
        stop="END",
    )
    path, headers, body = org.standin.requests[-1]
    assert path == "/anthropic/v1/messages"
    assert headers["x-api-key"] == ANTHROPIC_KEY and "authorization" not in headers
    assert body["model"] == "claude-sonnet-4"
    assert body["system"] == "be brief"
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]
    assert body["max_tokens"] == 4096 and body["temperature"] == 0.5 and body["stop_sequences"] == ["END"]


@pytest.mark.parametrize("model", ["openai/gpt-4o", "anthropic/claude-sonnet-4"])
async def test_a_tool_call_round_trip_works_unchanged_for_every_provider(org: Org, model: str) -> None:
    client = org.client()
    messages: list[Any] = [{"role": "user", "content": "what is the weather in Paris?"}]
    first = await client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call_ = choice.message.tool_calls[0]
    assert call_.type == "function"
    assert call_.function.name == "get_weather" and json.loads(call_.function.arguments) == {"city": "Paris"}
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call_.id, "content": "sunny, 21 C"},
    ]
    second = await client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "It is sunny in Paris"


async def test_anthropic_gets_tools_and_tool_results_in_its_own_format(org: Org) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "what is the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
    ]
    await org.client().chat.completions.create(
        model="anthropic/claude-sonnet-4", messages=messages, tools=[WEATHER_TOOL], tool_choice="required"
    )
    body = org.standin.requests[-1][2]
    assert body["tools"][0]["name"] == "get_weather" and body["tools"][0]["input_schema"]["required"] == ["city"]
    assert body["tool_choice"] == {"type": "any"}
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}],
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}],
    }


@pytest.mark.parametrize("model", ["openai/gpt-4o", "anthropic/claude-sonnet-4"])
async def test_streamed_text_arrives_in_deltas(org: Org, model: str) -> None:
    stream = await org.client().chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces: list[str] = []
    finish: list[str] = []
    async for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    assert "".join(pieces).strip() == "echo: one two three"
    assert len(pieces) > 1  # deltas, not one block
    assert finish == ["stop"]


@pytest.mark.parametrize("model", ["openai/gpt-4o", "anthropic/claude-sonnet-4"])
async def test_a_stream_is_relayed_while_the_provider_is_still_answering(org: Org, model: str) -> None:
    """The first delta reaches the client while the provider holds back the rest (nothing buffers the answer)."""
    org.standin.held.clear()
    stream = await org.client().chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hold on"}], stream=True
    )
    chunks = stream.__aiter__()
    with anyio.fail_after(20):
        seen = ""
        while "echo:" not in seen:
            chunk = await chunks.__anext__()
            seen += "".join(choice.delta.content or "" for choice in chunk.choices)
    org.standin.held.set()
    rest = [choice.delta.content or "" async for chunk in chunks for choice in chunk.choices]
    assert (seen + "".join(rest)).strip() == "echo: hold on"


@pytest.mark.parametrize("model", ["openai/gpt-4o", "anthropic/claude-sonnet-4"])
async def test_streamed_tool_calls_arrive_as_argument_deltas(org: Org, model: str) -> None:
    stream = await org.client().chat.completions.create(
        model=model, messages=[{"role": "user", "content": "weather please"}], tools=[WEATHER_TOOL], stream=True
    )
    names: list[str] = []
    arguments = ""
    finish: list[str] = []
    async for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                assert delta.index == 0
                if delta.function and delta.function.name:
                    names.append(delta.function.name)
                if delta.function and delta.function.arguments:
                    arguments += delta.function.arguments
            if choice.finish_reason:
                finish.append(choice.finish_reason)
    assert names == ["get_weather"]
    assert json.loads(arguments) == {"city": "Paris"}
    assert finish == ["tool_calls"]


async def test_models_lists_every_providers_models_by_prefix(org: Org) -> None:
    listed = [model.id async for model in org.client().models.list()]
    assert sorted(listed) == ["anthropic/claude-sonnet-4", "openai/gpt-4o", "openai/text-embedding-3-small"]


async def test_embeddings_come_from_an_openai_compatible_provider(org: Org) -> None:
    answer = await org.client().embeddings.create(model="openai/text-embedding-3-small", input=["a", "bb"])
    assert [len(item.embedding) for item in answer.data] == [3, 3]
    assert answer.model == "openai/text-embedding-3-small"
    with pytest.raises(openai.BadRequestError, match="no embeddings API"):
        await org.client().embeddings.create(model="anthropic/claude-sonnet-4", input="a")


async def test_a_key_limited_to_anthropic_models_is_refused_other_models(org: Org) -> None:
    key = await key_for_user(org.gateway, org.owner.organization_id, org.owner.user_id, {"ai": ["anthropic/*"]})
    client = org.client(key)
    answer = await client.chat.completions.create(
        model="anthropic/claude-sonnet-4", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content == "echo: hi"
    with pytest.raises(openai.PermissionDeniedError) as refused:
        await client.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 403
    error = refused.value.body
    assert isinstance(error, dict)
    assert error["code"] == "permission_denied" and error["type"] == "permission_error"
    assert "ai:openai/gpt-4o" in error["message"]
    assert [model.id async for model in client.models.list()] == ["anthropic/claude-sonnet-4"]


async def test_a_key_without_any_ai_permission_is_refused(org: Org) -> None:
    key = await key_for_user(org.gateway, org.owner.organization_id, org.owner.user_id, {"self": ["ORGANIZATION_GET"]})
    with pytest.raises(openai.PermissionDeniedError, match="needs ai:anthropic/claude-sonnet-4"):
        await org.client(key).chat.completions.create(
            model="anthropic/claude-sonnet-4", messages=[{"role": "user", "content": "hi"}]
        )


async def test_another_organizations_slug_answers_not_found(org: Org) -> None:
    other = await new_owner(org.gateway, "Other")
    with pytest.raises(openai.NotFoundError, match="organization"):
        await org.client(other.api_key).chat.completions.create(
            model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.NotFoundError, match="no AI provider named 'openai'"):
        await org.client(other.api_key, other.organization_slug).chat.completions.create(
            model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )


async def test_no_credential_and_a_wrong_one_are_refused_in_openais_shape(org: Org) -> None:
    with pytest.raises(openai.AuthenticationError) as refused:
        await org.client("mg_not-a-real-key").models.list()
    assert isinstance(refused.value.body, dict) and refused.value.body["code"] == "unauthenticated"
    answer = httpx.get(f"{org.gateway.url}/api/{org.owner.organization_slug}/v1/models", timeout=10)
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "authentication_error"


async def test_bad_model_ids_and_bodies_are_explained(org: Org) -> None:
    with pytest.raises(openai.BadRequestError, match="<provider>/<model>"):
        await org.client().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="does not exist"):
        await org.client().chat.completions.create(model="openai/gpt-5", messages=[{"role": "user", "content": "hi"}])


async def test_a_provider_that_answers_garbage_or_fails_gives_a_clear_error(
    gateway: Gateway, standin: tuple[Providers, str]
) -> None:
    _app, url = standin
    owner = await new_owner(gateway)
    await add_provider(gateway, owner, provider="openai-compatible", name="garbage", baseUrl=f"{url}/garbage/v1")
    await add_provider(gateway, owner, provider="openai-compatible", name="broken", baseUrl=f"{url}/broken/v1")
    await add_provider(gateway, owner, provider="anthropic", name="claude", baseUrl=f"{url}/garbage/v1")
    client = sdk(gateway, owner.api_key, owner.organization_slug)
    hello: Any = [{"role": "user", "content": "hi"}]
    for model in ("garbage/m", "claude/m"):
        with pytest.raises(openai.APIStatusError, match="not JSON") as failed:
            await client.chat.completions.create(model=model, messages=hello)
        assert failed.value.status_code == 502
    with pytest.raises(openai.APIStatusError, match="answered HTTP 500: the stand-in is broken") as failed:
        await client.chat.completions.create(model="broken/m", messages=hello)
    assert isinstance(failed.value.body, dict) and failed.value.body["code"] == "provider_error"
    with pytest.raises(openai.APIStatusError, match="did not answer a stream"):
        await client.chat.completions.create(model="garbage/m", messages=hello, stream=True)


async def test_a_provider_that_is_down_gives_a_clear_error(gateway: Gateway) -> None:
    owner = await new_owner(gateway)
    await add_provider(
        gateway, owner, provider="openai-compatible", name="down", baseUrl=f"http://127.0.0.1:{free_port()}/v1"
    )
    client = sdk(gateway, owner.api_key, owner.organization_slug)
    with pytest.raises(openai.APIStatusError, match="AI provider down is unreachable") as failed:
        await client.chat.completions.create(model="down/m", messages=[{"role": "user", "content": "hi"}])
    assert failed.value.status_code == 502
    listed = [model.id async for model in client.models.list()]  # a provider that is down is left out
    assert listed == []


async def test_provider_keys_are_never_shown_nor_logged(org: Org) -> None:
    async with connect(org.gateway.mcp_url, org.owner.api_key) as client:
        listed = await call(client, "AI_PROVIDER_KEY_LIST")
        providers = await call(client, "AI_PROVIDERS_LIST")
        models = await call(client, "AI_PROVIDERS_LIST_MODELS")
    text = json.dumps([listed, providers, models])
    assert OPENAI_KEY not in text and ANTHROPIC_KEY not in text
    assert sorted(item["keyHint"] for item in listed["items"]) == ["…cdef", "…cdef"]
    assert models["items"] == ["anthropic/claude-sonnet-4", "openai/gpt-4o", "openai/text-embedding-3-small"]
    answer = await org.client().chat.completions.create(
        model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert OPENAI_KEY not in answer.model_dump_json()
    # the session fixture `no_secret_in_any_log` checks every gateway log for both keys at the end


async def test_provider_keys_can_be_replaced_and_removed(org: Org) -> None:
    async with connect(org.gateway.mcp_url, org.owner.api_key) as client:
        items = (await call(client, "AI_PROVIDER_KEY_LIST"))["items"]
        openai_key = next(item for item in items if item["name"] == "openai")
        await call(
            client,
            "AI_PROVIDER_KEY_UPDATE",
            {"keyId": openai_key["id"], "apiKey": remember_secret("sk-wrong-000000000000")},
        )
        with pytest.raises(openai.APIStatusError, match="key for it was refused"):
            await org.client().chat.completions.create(
                model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}]
            )
        await call(client, "AI_PROVIDER_KEY_DELETE", {"keyId": openai_key["id"]})
        with pytest.raises(openai.NotFoundError):
            await org.client().chat.completions.create(
                model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}]
            )
        reason = await call_error(client, "AI_PROVIDER_KEY_CREATE", {"provider": "openai-compatible", "name": "x"})
        assert "needs baseUrl" in reason
        reason = await call_error(client, "AI_PROVIDER_KEY_CREATE", {"provider": "anthropic", "apiKey": "k"})
        assert "exists already" in reason


async def test_members_cannot_manage_provider_keys(org: Org) -> None:
    from conftest import new_member  # noqa: PLC0415  (a fixture helper, used here only)

    member = await new_member(org.gateway, org.owner.organization_id, "admin")
    async with connect(org.gateway.mcp_url, member.api_key) as client:
        assert len((await call(client, "AI_PROVIDER_KEY_LIST"))["items"]) == 2
    plain = await new_member(org.gateway, org.owner.organization_id, "member")
    async with connect(org.gateway.mcp_url, plain.api_key) as client:
        reason = await call_error(client, "AI_PROVIDER_KEY_LIST")
    assert "AI_PROVIDER_KEY_LIST" in reason or "owners and admins" in reason


async def test_a_slow_provider_times_out_with_a_clear_error(
    tmp_db: str, tmp_path: Any, standin: tuple[Providers, str]
) -> None:
    from support.gateway import start_gateway  # noqa: PLC0415

    _app, url = standin
    gw = start_gateway(tmp_db, tmp_path, MESHGATE_AI_TIMEOUT_SECONDS="0.5")
    try:
        owner = await new_owner(gw)
        await add_provider(gw, owner, provider="openai-compatible", name="slow", baseUrl=f"{url}/slow/v1")
        client = sdk(gw, owner.api_key, owner.organization_slug)
        with anyio.fail_after(20):
            with pytest.raises(openai.APIStatusError, match=r"did not answer within 0\.5 s") as failed:
                await client.chat.completions.create(model="slow/m", messages=[{"role": "user", "content": "hi"}])
        assert failed.value.status_code == 504
    finally:
        assert gw.stop() == 0
