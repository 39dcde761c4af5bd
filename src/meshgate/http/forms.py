"""Bounded reading of `application/x-www-form-urlencoded` bodies and of browser cookies."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request

from meshgate.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

MAX_FORM_BYTES = 64 * 1024


async def read_form(request: Request, limit: int = MAX_FORM_BYTES, max_fields: int = 200) -> dict[str, list[str]]:
    """Every field with all its values; refuses other content types, bodies over `limit` and more than
    `max_fields` fields."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType(
            f"Content-Type is {media_type or 'missing'!r}; send application/x-www-form-urlencoded"
        )
    size = 0
    chunks: list[bytes] = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"form body is over the limit of {limit} bytes")
        chunks.append(chunk)
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("form body is not valid UTF-8") from exc
    try:
        return parse_qs(text, keep_blank_values=True, max_num_fields=max_fields)
    except ValueError as exc:  # parse_qs says only "Max number of fields exceeded"
        raise InvalidInput(f"form has more than {max_fields} fields") from exc


def single(form: dict[str, list[str]], name: str) -> str | None:
    """One value of a field; a repeated field is refused (RFC 6749 §3.1: parameters appear once)."""
    values = form.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidInput(f"parameter {name} appears more than once")
    return values[0]
