"""An upstream's authorization_endpoint is only used when a browser may safely be sent there (review 25).

These values are only classified, never connected to."""

from __future__ import annotations

import pytest

from meshgate.connections.addresses import AddressPolicy
from meshgate.errors import OAuthSetupError
from meshgate.oauth.server_metadata import check_authorization_endpoint

OPEN = AddressPolicy(block_private=False)
BLOCKED = AddressPolicy(block_private=True)


@pytest.mark.finding(25)
@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,x", "http://auth.example.test/authorize", "https:///authorize", ""]
)
def test_an_authorization_endpoint_that_is_not_https_is_refused(url: str) -> None:
    with pytest.raises(OAuthSetupError, match="must be an https URL"):
        check_authorization_endpoint(url, OPEN)


@pytest.mark.finding(25)
def test_http_to_loopback_is_allowed_only_while_loopback_upstreams_are() -> None:
    assert check_authorization_endpoint("http://127.0.0.1:9200/authorize", OPEN).startswith("http://127.0.0.1")
    assert check_authorization_endpoint("https://auth.example.test/authorize?x=1", BLOCKED).endswith("x=1")
    with pytest.raises(OAuthSetupError):
        check_authorization_endpoint("http://127.0.0.1:9200/authorize", BLOCKED)
