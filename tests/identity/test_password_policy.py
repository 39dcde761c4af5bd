"""One password policy: bootstrap, invitations, change, reset and the CLI all refuse the same passwords."""

from __future__ import annotations

import pytest

from meshgate.errors import InvalidInput
from meshgate.identity.passwords import MIN_PASSWORD, Passwords, check_new_password, hash_password

pytestmark = pytest.mark.anyio


def test_bootstrap_hashing_refuses_a_password_the_invitation_page_refuses() -> None:
    # Bootstrap allowed 8 characters while invitations asked for 10: one minimum now.
    assert MIN_PASSWORD == 10
    with pytest.raises(InvalidInput, match="9 characters long; use at least 10"):
        hash_password("x" * 9)
    with pytest.raises(InvalidInput, match="longer than 1024"):
        check_new_password("x" * 1025)
    assert check_new_password("x" * 10) == "x" * 10


async def test_the_request_path_hasher_applies_the_same_policy() -> None:
    hasher = Passwords(workers=1)
    try:
        with pytest.raises(InvalidInput, match="use at least 10"):
            await hasher.hash("x" * 9)
        assert await hasher.check(await hasher.hash("x" * 10), "x" * 10)
    finally:
        hasher.close()
