"""The sealed cookie that carries a one-time secret across a redirect opens once, for its page, in time."""

from __future__ import annotations

from starlette.responses import Response

from meshgate.http.shown_once import LIFETIME_S, MAX_VALUE_LENGTH, ShownOnce

SECRET = b"s" * 32
SHOWN = {"name": "Laptop", "key": "mg_0123456789abcdef"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_sealed_value_opens_for_its_page_and_hides_the_secret() -> None:
    once = ShownOnce(SECRET, secure=False)
    value = once.seal(SHOWN, "user org /keys")
    assert value is not None and SHOWN["key"] not in value
    assert once.open(value, "user org /keys") == SHOWN


def test_a_value_sealed_for_another_visitor_page_or_secret_does_not_open() -> None:
    once = ShownOnce(SECRET, secure=False)
    value = once.seal(SHOWN, "user org /keys")
    assert once.open(value, "other org /keys") is None
    assert once.open(value, "user org /members") is None
    assert ShownOnce(b"t" * 32, secure=False).open(value, "user org /keys") is None


def test_an_altered_or_malformed_value_does_not_open() -> None:
    once = ShownOnce(SECRET, secure=False)
    value = once.seal(SHOWN, "b")
    assert value is not None
    flipped = value[:-2] + ("A" if value[-2] != "A" else "B") + value[-1]
    for bad in (None, "", flipped, "mgo1.", "mgo1.!!!", "other." + value[5:], value + "A" * MAX_VALUE_LENGTH):
        assert once.open(bad, "b") is None, bad


def test_a_value_expires_after_its_lifetime() -> None:
    clock = Clock()
    once = ShownOnce(SECRET, secure=False, clock=clock)
    value = once.seal(SHOWN, "b")
    clock.now += LIFETIME_S
    assert once.open(value, "b") == SHOWN
    clock.now += 1
    assert once.open(value, "b") is None


def test_what_would_not_fit_a_cookie_is_not_sealed() -> None:
    once = ShownOnce(SECRET, secure=False)
    assert once.seal({"url": "x" * MAX_VALUE_LENGTH}, "b") is None
    assert once.seal({"url": "x" * 2000}, "b") is not None


def test_the_cookie_is_http_only_strict_path_limited_short_lived_and_secure_on_https() -> None:
    response = Response()
    assert ShownOnce(SECRET, secure=True).hand_over(response, "/app/acme/keys", "b", SHOWN)
    attributes = [part.strip().lower() for part in response.headers["set-cookie"].split(";")]
    assert attributes[0].startswith("meshgate_once=mgo1.")
    assert {"httponly", "samesite=strict", "secure", "path=/app/acme/keys", f"max-age={LIFETIME_S}"} <= set(attributes)
    plain = Response()
    assert ShownOnce(SECRET, secure=False).hand_over(plain, "/app/acme/keys", "b", SHOWN)
    assert "secure" not in plain.headers["set-cookie"].lower()
