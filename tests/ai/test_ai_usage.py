"""AI usage: every call of the OpenAI-compatible API audited (model, caller, tokens, latency, cost, never the
prompt), MONITORING_STATS by model and caller, and token budgets and request rates answering OpenAI's 429;
the official `openai` SDK against the provider stand-ins (tests/support/ai_providers.py), on every backend."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import openai
import pytest

from conftest import key_for_user, new_owner
from support.ai_providers import ANTHROPIC_KEY, OPENAI_KEY, Providers
from support.databases import fresh_database
from support.gateway import Gateway, Owner, free_port, start_gateway
from support.mcp_client import call, connect
from support.secrets import remember_secret
from support.served import serve_asgi

pytestmark = pytest.mark.anyio

_OPEN: list[openai.AsyncOpenAI] = []
GPT_4O = (5 * 2.50 + 3 * 10.00) / 1_000_000  # the stand-in's 5 tokens in, 3 out at gpt-4o's list price
SONNET_4 = (7 * 3.00 + 4 * 15.00) / 1_000_000  # 7 in, 4 out at claude-sonnet-4's


def sdk(gateway: Gateway, key: str, slug: str) -> openai.AsyncOpenAI:
    client = openai.AsyncOpenAI(api_key=key, base_url=f"{gateway.url}/api/{slug}/v1", max_retries=0, timeout=30)
    _OPEN.append(client)
    return client


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    while _OPEN:
        await _OPEN.pop().close()


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


async def org_with_providers(gateway: Gateway, url: str) -> Owner:
    owner = await new_owner(gateway)
    async with connect(gateway.mcp_url, owner.api_key) as client:
        data = {"provider": "openai", "apiKey": OPENAI_KEY, "baseUrl": f"{url}/openai/v1"}
        await call(client, "AI_PROVIDER_KEY_CREATE", data)
        data = {"provider": "anthropic", "apiKey": ANTHROPIC_KEY, "baseUrl": f"{url}/anthropic/v1"}
        await call(client, "AI_PROVIDER_KEY_CREATE", data)
    return owner


async def ai_logs(gateway: Gateway, key: str, count: int) -> list[dict[str, Any]]:
    """The organization's audit records of AI calls, oldest first, once `count` are written (with a deadline)."""
    with anyio.fail_after(15):
        while True:
            async with connect(gateway.mcp_url, key) as client:
                logs = await call(client, "MONITORING_LOGS_LIST", {"limit": 1000})
            found = [item for item in logs["items"] if item["method"].startswith("ai/")]
            if len(found) >= count:
                return found[::-1]
            await anyio.sleep(0.05)


HELLO: Any = [{"role": "user", "content": "hello"}]


async def test_every_ai_call_is_audited_with_model_caller_tokens_latency_and_cost(
    gateway: Gateway, standin: tuple[Providers, str]
) -> None:
    owner = await org_with_providers(gateway, standin[1])
    client = sdk(gateway, owner.api_key, owner.organization_slug)
    await client.chat.completions.create(model="openai/gpt-4o", messages=HELLO)
    await client.chat.completions.create(model="anthropic/claude-sonnet-4", messages=HELLO)
    stream = await client.chat.completions.create(model="anthropic/claude-sonnet-4", messages=HELLO, stream=True)
    async for _chunk in stream:
        pass
    await client.embeddings.create(model="openai/text-embedding-3-small", input="a")
    logs = await ai_logs(gateway, owner.api_key, 4)
    assert [(log["method"], log["toolName"]) for log in logs] == [
        ("ai/chat.completions", "openai/gpt-4o"),
        ("ai/chat.completions", "anthropic/claude-sonnet-4"),
        ("ai/chat.completions", "anthropic/claude-sonnet-4"),
        ("ai/embeddings", "openai/text-embedding-3-small"),
    ]
    assert [(log["tokensIn"], log["tokensOut"]) for log in logs] == [(5, 3), (7, 4), (7, 4), (3, None)]
    assert [log["costUsd"] for log in logs] == pytest.approx([GPT_4O, SONNET_4, SONNET_4, 3 * 0.02 / 1_000_000])
    for log in logs:
        assert log["caller"] == {
            "type": "api_key",
            "userId": owner.user_id,
            "apiKeyId": log["caller"]["apiKeyId"],
            "clientId": None,
        }
        assert log["caller"]["apiKeyId"] is not None
        assert log["durationMs"] > 0 and log["isError"] is False
        assert log["userAgent"].startswith("AsyncOpenAI/Python")


async def test_the_prompt_text_is_absent_from_the_audit_record(
    gateway: Gateway, standin: tuple[Providers, str]
) -> None:
    owner = await org_with_providers(gateway, standin[1])
    client = sdk(gateway, owner.api_key, owner.organization_slug)
    prompt = f"my private question {uuid.uuid4().hex}"
    answer = await client.chat.completions.create(
        model="openai/gpt-4o", messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": prompt}]
    )
    assert answer.choices[0].message.content == f"echo: {prompt}"
    [log] = await ai_logs(gateway, owner.api_key, 1)
    async with connect(gateway.mcp_url, owner.api_key) as mcp:
        record = await call(mcp, "MONITORING_LOG_GET", {"id": log["id"]})
    assert record["input"] is None and record["output"] is None
    text = json.dumps([log, record])
    assert prompt not in text and "private question" not in text and "be brief" not in text


async def test_an_organization_that_keeps_prompts_gets_them_redacted_in_the_audit(
    gateway: Gateway, standin: tuple[Providers, str]
) -> None:
    owner = await org_with_providers(gateway, standin[1])
    client = sdk(gateway, owner.api_key, owner.organization_slug)
    await client.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "before"}])
    async with connect(gateway.mcp_url, owner.api_key) as mcp:
        settings = await call(mcp, "ORGANIZATION_SETTINGS_UPDATE", {"ai_keep_prompts": True})
    assert settings["ai_keep_prompts"] is True
    secret = remember_secret("sk-proj-" + uuid.uuid4().hex * 2)
    prompt = f"summarise this; password={secret}"
    await client.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": prompt}])
    await client.embeddings.create(model="openai/text-embedding-3-small", input="embed me")
    first, kept, embedded = await ai_logs(gateway, owner.api_key, 3)
    assert first["input"] is None  # before the setting: never kept
    assert kept["input"] is not None and "summarise this" in kept["input"] and secret not in kept["input"]
    assert json.loads(kept["input"])["messages"][0]["role"] == "user"
    assert embedded["input"] is not None and "embed me" in embedded["input"]
    assert kept["output"] is None  # the answer never


async def test_a_streamed_call_counts_its_tokens_and_gives_the_usage_chunk_only_to_who_asked(
    gateway: Gateway, standin: tuple[Providers, str]
) -> None:
    app, url = standin
    owner = await org_with_providers(gateway, url)
    client = sdk(gateway, owner.api_key, owner.organization_slug)
    plain = await client.chat.completions.create(model="openai/gpt-4o", messages=HELLO, stream=True)
    chunks = [chunk async for chunk in plain]
    assert chunks and all(chunk.choices and chunk.usage is None for chunk in chunks)  # no empty-choices chunk
    assert app.requests[-1][2]["stream_options"] == {"include_usage": True}  # the provider was asked anyway
    asked = await client.chat.completions.create(
        model="openai/gpt-4o", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    last = [chunk async for chunk in asked][-1]
    assert last.choices == [] and last.usage is not None and last.usage.total_tokens == 8
    logs = await ai_logs(gateway, owner.api_key, 2)
    assert [(log["tokensIn"], log["tokensOut"]) for log in logs] == [(5, 3), (5, 3)]
    assert [log["costUsd"] for log in logs] == pytest.approx([GPT_4O, GPT_4O])


async def test_a_stream_the_client_leaves_is_audited_as_cut_short(
    gateway: Gateway, standin: tuple[Providers, str]
) -> None:
    app, url = standin
    owner = await org_with_providers(gateway, url)
    app.held.clear()  # the stand-in stops after its first word of an answer to "hold …"
    stream = await sdk(gateway, owner.api_key, owner.organization_slug).chat.completions.create(
        model="openai/gpt-4o", messages=[{"role": "user", "content": "hold on"}], stream=True
    )
    chunks = stream.__aiter__()
    with anyio.fail_after(20):
        seen = ""
        while "echo:" not in seen:
            seen += "".join(choice.delta.content or "" for choice in (await chunks.__anext__()).choices)
    await stream.close()
    [log] = await ai_logs(gateway, owner.api_key, 1)
    app.held.set()
    assert log["isError"] is True and log["errorMessage"] == "the client closed the stream before its end"
    assert log["toolName"] == "openai/gpt-4o" and log["tokensIn"] is None


async def test_monitoring_stats_show_ai_usage_by_model_and_by_caller(
    gateway: Gateway, standin: tuple[Providers, str]
) -> None:
    owner = await org_with_providers(gateway, standin[1])
    member_key = await key_for_user(gateway, owner.organization_id, owner.user_id, {"ai": ["anthropic/*"]})
    mine = sdk(gateway, owner.api_key, owner.organization_slug)
    theirs = sdk(gateway, member_key, owner.organization_slug)
    await mine.chat.completions.create(model="openai/gpt-4o", messages=HELLO)
    await mine.chat.completions.create(model="openai/gpt-4o", messages=HELLO)
    await theirs.chat.completions.create(model="anthropic/claude-sonnet-4", messages=HELLO)
    with pytest.raises(openai.PermissionDeniedError):
        await theirs.chat.completions.create(model="openai/gpt-4o", messages=HELLO)
    logs = await ai_logs(gateway, owner.api_key, 4)
    refused = logs[-1]
    assert refused["isError"] is True and "needs ai:openai/gpt-4o" in refused["errorMessage"]
    assert refused["tokensIn"] is None and refused["costUsd"] is None
    async with connect(gateway.mcp_url, owner.api_key) as client:
        stats = await call(client, "MONITORING_STATS", {})
    usage = stats["aiUsage"]
    assert (usage["calls"], usage["errors"], usage["tokensIn"], usage["tokensOut"]) == (4, 1, 17, 10)
    assert usage["costUsd"] == pytest.approx(2 * GPT_4O + SONNET_4)
    by_model = {item["model"]: item for item in usage["byModel"]}
    assert {name: (m["calls"], m["errors"], m["tokensIn"], m["tokensOut"]) for name, m in by_model.items()} == {
        "openai/gpt-4o": (3, 1, 10, 6),
        "anthropic/claude-sonnet-4": (1, 0, 7, 4),
    }
    assert by_model["openai/gpt-4o"]["costUsd"] == pytest.approx(2 * GPT_4O)
    keys = {log["caller"]["apiKeyId"] for log in logs}
    owner_key = logs[0]["caller"]["apiKeyId"]
    by_caller = {item["caller"]["apiKeyId"]: item for item in usage["byCaller"]}
    assert set(by_caller) == keys and len(keys) == 2
    assert (by_caller[owner_key]["calls"], by_caller[owner_key]["tokensIn"]) == (2, 10)
    [other] = keys - {owner_key}
    assert (by_caller[other]["calls"], by_caller[other]["errors"], by_caller[other]["tokensOut"]) == (2, 1, 4)
    assert all(tool["toolName"] not in by_model for tool in stats["topTools"])  # models are not tools


# --- limits: a gateway of their own --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Per key: 20 tokens an hour and 5 requests at once; per organization: 30 tokens an hour."""
    tmp = tmp_path_factory.mktemp(f"gw-ai-limits-{backend}")
    with fresh_database(backend, tmp) as url:
        gw = start_gateway(
            url,
            tmp,
            MESHGATE_AI_TOKEN_BUDGET_KEY="20/h",
            MESHGATE_AI_TOKEN_BUDGET_ORG="30/h",
            MESHGATE_AI_RATE_LIMIT_KEY="1/h,burst=5",
        )
        try:
            yield gw
        finally:
            assert gw.stop() == 0, gw.logs()


async def test_a_keys_exhausted_token_budget_answers_429_in_openais_shape(
    limited: Gateway, standin: tuple[Providers, str]
) -> None:
    owner = await org_with_providers(limited, standin[1])
    client = sdk(limited, owner.api_key, owner.organization_slug)
    for _ in range(3):  # 8 tokens each: 24 of 20, the last one into debt
        await client.chat.completions.create(model="openai/gpt-4o", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as refused:
        await client.chat.completions.create(model="openai/gpt-4o", messages=HELLO)
    assert refused.value.status_code == 429
    assert refused.value.body == {
        "message": refused.value.body["message"],  # pyright: ignore[reportIndexIssue, reportOptionalSubscript]
        "type": "rate_limit_error",
        "param": None,
        "code": "token_budget_exhausted",
    }
    assert "AI token budget of this credential is used up" in refused.value.message
    assert float(refused.value.response.headers["retry-after"]) > 0
    requests = len(standin[0].requests)
    with pytest.raises(openai.RateLimitError):
        stream = await client.chat.completions.create(model="openai/gpt-4o", messages=HELLO, stream=True)
        async for _chunk in stream:
            pass
    assert len(standin[0].requests) == requests  # refused before the provider is asked


async def test_an_organizations_token_budget_is_shared_by_its_keys(
    limited: Gateway, standin: tuple[Providers, str]
) -> None:
    owner = await org_with_providers(limited, standin[1])
    other_key = await key_for_user(limited, owner.organization_id, owner.user_id, {"ai": ["*"]})
    first = sdk(limited, owner.api_key, owner.organization_slug)
    second = sdk(limited, other_key, owner.organization_slug)
    for _ in range(3):
        await first.chat.completions.create(model="openai/gpt-4o", messages=HELLO)  # 24 of the 30
    await second.chat.completions.create(model="openai/gpt-4o", messages=HELLO)  # 32: the organization in debt
    with pytest.raises(openai.RateLimitError, match="AI token budget of this organization is used up"):
        await second.chat.completions.create(model="openai/gpt-4o", messages=HELLO)


async def test_the_request_rate_per_key_answers_429_and_its_refusals_are_not_audited(
    limited: Gateway, standin: tuple[Providers, str]
) -> None:
    owner = await org_with_providers(limited, standin[1])
    client = sdk(limited, owner.api_key, owner.organization_slug)
    for _ in range(5):  # a burst of five; 3 tokens each, within the budgets
        await client.embeddings.create(model="openai/text-embedding-3-small", input="a")
    with pytest.raises(openai.RateLimitError) as refused:
        await client.embeddings.create(model="openai/text-embedding-3-small", input="a")
    assert isinstance(refused.value.body, dict) and refused.value.body["code"] == "rate_limited"
    assert "AI request rate limit of this credential reached" in refused.value.message
    other_key = await key_for_user(limited, owner.organization_id, owner.user_id, {"ai": ["*"]})
    await sdk(limited, other_key, owner.organization_slug).chat.completions.create(
        model="openai/gpt-4o", messages=HELLO
    )
    logs = await ai_logs(limited, owner.api_key, 6)  # written in order: the refusal would come before the last
    assert [log["method"] for log in logs] == ["ai/embeddings"] * 5 + ["ai/chat.completions"]


# --- the dashboard ------------------------------------------------------------------------------------------


async def test_the_audit_page_shows_ai_usage_by_model_and_by_caller(
    web_gateway: Gateway, standin: tuple[Providers, str]
) -> None:
    from support.browser import add_member  # noqa: PLC0415  (the dashboard's helpers, used here only)
    from support.oauth import logged_in  # noqa: PLC0415

    owner = await org_with_providers(web_gateway, standin[1])
    client = sdk(web_gateway, owner.api_key, owner.organization_slug)
    await client.chat.completions.create(model="openai/gpt-4o", messages=HELLO)
    await client.chat.completions.create(model="anthropic/claude-sonnet-4", messages=HELLO)
    await ai_logs(web_gateway, owner.api_key, 2)
    admin = await add_member(web_gateway, owner.organization_id, "admin")
    async with logged_in(web_gateway, admin.email, admin.password) as http:
        page = await http.get(f"/app/{owner.organization_slug}/audit")
    assert page.status_code == 200
    section = page.text[page.text.index('id="ai-usage"') :]
    assert "2 AI calls, 12 tokens in, 7 out" in section
    by_model = section[section.index("AI usage by model") : section.index("AI usage by caller")]
    assert "<code>openai/gpt-4o</code></td><td>1</td><td>0</td><td>5</td><td>3</td><td>0.000043</td>" in by_model
    assert "<code>anthropic/claude-sonnet-4</code></td><td>1</td><td>0</td><td>7</td><td>4</td>" in by_model
    by_caller = section[section.index("AI usage by caller") :]
    assert "api key" in by_caller and "<td>2</td><td>0</td><td>12</td><td>7</td>" in by_caller
