"""Clients identified by an https URL: meshgate fetches their metadata document (through the SSRF guard),
validates it and caches it; the SDK's OAuth client logs in with one instead of registering."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest

from meshgate.connections.addresses import METADATA_ADDRESSES
from support.databases import fresh_database
from support.gateway import Gateway, free_port, start_gateway
from support.hostile_oauth import hostile_authorization_server
from support.mcp_client import call
from support.oauth import REDIRECT_URI, Browser, MemoryStorage, connect_oauth, new_person, pkce_pair, sdk_provider
from support.tls import DocumentServer, document_server, make_authority

UNAVAILABLE = "client metadata document unavailable"
# A cloud metadata address, from the guard's own table (no address outside loopback is written in a test).
METADATA = next(str(address) for address in sorted(METADATA_ADDRESSES, key=str) if address.version == 4)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, DocumentServer]]:
    tmp = tmp_path_factory.mktemp("cimd")
    authority = make_authority(tmp / "tls")
    with document_server(authority) as server, fresh_database("sqlite", tmp) as url:
        gateway = start_gateway(url, tmp, SSL_CERT_FILE=str(authority.ca_file))
        try:
            yield gateway, server
        finally:
            assert gateway.stop() == 0, gateway.logs()


async def test_sdk_client_logs_in_with_a_client_id_metadata_document(documents: tuple[Gateway, DocumentServer]) -> None:
    gateway, server = documents
    client_id = f"{server.base}/clients/sdk.json"
    server.documents["/clients/sdk.json"] = {
        "client_id": client_id,
        "client_name": "Metadata Client",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    }
    person = await new_person(gateway)
    browser = Browser(person)
    storage = MemoryStorage()
    provider = sdk_provider(gateway.mcp_url, browser, storage=storage, client_metadata_url=client_id)
    async with connect_oauth(gateway.mcp_url, provider) as client:
        orgs = await call(client, "ORGANIZATION_LIST", {})
    assert [org["id"] for org in orgs["items"]] == [person.organization_id]
    assert storage.client_info is not None and storage.client_info.client_id == client_id  # no registration
    assert "Metadata Client" in browser.pages[0] and "127.0.0.1" in browser.pages[0]
    assert server.fetched.count("/clients/sdk.json") == 1  # cached for the token request


def _authorize(gateway: Gateway, client_id: str) -> str:
    _verifier, challenge = pkce_pair()
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": gateway.mcp_url,
    }
    return str(httpx.URL(f"{gateway.url}/oauth/authorize", params=params))


@pytest.mark.parametrize(
    ("path", "document", "reason"),
    [
        (
            "/bad/other-id.json",
            {"client_id": "https://elsewhere.example/x.json", "redirect_uris": [REDIRECT_URI]},
            "client_id is its URL",
        ),
        (
            "/bad/secret.json",
            {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "client_secret_basic"},
            "'none'",
        ),
        ("/bad/no-redirects.json", {"redirect_uris": []}, "redirect_uris"),
        ("/bad/missing.json", None, "404"),
    ],
)
async def test_bad_metadata_documents_are_refused(
    documents: tuple[Gateway, DocumentServer], path: str, document: dict[str, object] | None, reason: str
) -> None:
    gateway, server = documents
    client_id = server.base + path
    if document is not None:
        server.documents[path] = {"client_id": client_id, **document}
    person = await new_person(gateway)
    page = await Browser(person).http.get(_authorize(gateway, client_id))
    assert page.status_code == 400 and "location" not in page.headers
    assert UNAVAILABLE in page.text and reason not in page.text  # the reason is for the operator's log
    await _logged(gateway, f"{client_id} unavailable", reason)


async def test_metadata_urls_are_checked_against_the_ssrf_guard(documents: tuple[Gateway, DocumentServer]) -> None:
    gateway, _server = documents
    person = await new_person(gateway)
    page = await Browser(person).http.get(_authorize(gateway, "http://127.0.0.1/client.json"))
    assert page.status_code == 400
    metadata_page = await Browser(person).http.get(_authorize(gateway, f"https://{METADATA}/latest/meta-data.json"))
    assert metadata_page.status_code == 400 and UNAVAILABLE in metadata_page.text
    await _logged(gateway, f"{METADATA}/latest/meta-data.json unavailable", "metadata address")


async def test_redirects_of_metadata_documents_are_checked_again(documents: tuple[Gateway, DocumentServer]) -> None:
    gateway, server = documents
    server.redirects["/moved/client.json"] = f"https://{METADATA}/latest/meta-data/client.json"
    person = await new_person(gateway)
    page = await Browser(person).http.get(_authorize(gateway, f"{server.base}/moved/client.json"))
    assert page.status_code == 400 and UNAVAILABLE in page.text and "/moved/client.json" in server.fetched
    await _logged(gateway, "/moved/client.json unavailable", "metadata address")


@pytest.mark.finding(10)
async def test_metadata_fetch_failures_answer_the_same_bytes_whatever_the_port_did(
    documents: tuple[Gateway, DocumentServer], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A closed port, a plaintext port, a TLS server the gateway does not trust, a missing document and a refused
    address: the requester (unauthenticated) cannot tell them apart, so the fetch is no port scanner."""
    gateway, server = documents
    untrusted = make_authority(tmp_path_factory.mktemp("untrusted"))
    with document_server(untrusted) as stranger, hostile_authorization_server() as plaintext:
        stranger.documents["/client.json"] = {"client_id": f"{stranger.base}/client.json", "redirect_uris": []}
        client_ids = [
            f"https://127.0.0.1:{free_port()}/client.json",  # nothing listens
            f"https://{plaintext.base.removeprefix('http://')}/client.json",  # plain http answers the TLS handshake
            f"{stranger.base}/client.json",  # TLS with a certificate the gateway does not trust
            f"{server.base}/nothing/here.json",  # a trusted server without the document
            f"https://{METADATA}/latest/client.json",  # refused by the address guard
        ]
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            pages = [await http.get(_authorize(gateway, client_id)) for client_id in client_ids]
            tokens = [
                await http.post(
                    "/oauth/token",
                    data={"grant_type": "authorization_code", "code": "x", "client_id": client_id},
                )
                for client_id in client_ids
            ]
    assert {(page.status_code, page.content) for page in pages} == {(pages[0].status_code, pages[0].content)}
    assert pages[0].status_code == 400 and UNAVAILABLE in pages[0].text
    assert {(answer.status_code, answer.content) for answer in tokens} == {(401, tokens[0].content)}
    assert tokens[0].json() == {"error": "invalid_client", "error_description": UNAVAILABLE}
    await _logged(gateway, f"{plaintext.base.removeprefix('http://')}/client.json unavailable", "")


async def _logged(gateway: Gateway, *parts: str) -> None:
    """Wait until one line of the gateway's log holds every part."""
    with anyio.fail_after(10):
        while True:
            if any(all(part in line for part in parts) for line in gateway.logs().splitlines()):
                return
            await anyio.sleep(0.05)
