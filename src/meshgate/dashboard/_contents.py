"""What a resource read or a prompt answered, as parts a page can show safely and within a size budget.

Text is shown as text (the template escapes it). Binary data becomes a `data:` URL built here: inline for
PNG, JPEG, GIF and WebP images and `audio/*` (the page's CSP allows `data:` images and media), else a download
link whose URL says `application/octet-stream`, so the browser never renders what the upstream sent as a
document. SVG is never inline (it can carry script). An image or audio content block of another type is
described ("an image of type X, N bytes"). A `resource_link` is a link only for http(s) URLs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from meshgate.jsonvalues import as_dict, as_list

MAX_TEXT = 256 * 1024  # characters of text one page shows
MAX_BINARY = 2 * 1024 * 1024  # bytes of binary data one page carries as data: URLs
MAX_PARTS = 200

_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_WEB_LINK = re.compile(r"https?://[^\s]+", re.IGNORECASE)
MAX_LINK = 2048


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of an answer. `kind`: text, image, audio, download, described (`note` says what it is), link
    (`text` its name, `href` set only for an http(s) `uri`), omitted (too large: `note` says so) or other
    (shown as JSON in `text`)."""

    kind: str
    text: str = ""
    uri: str = ""
    mime_type: str = ""
    data_url: str = ""
    filename: str = ""
    size: int = 0
    cut: bool = False
    note: str = ""
    href: str = ""


class Budget:
    """How much text and binary data the page still shows; each part takes its share."""

    def __init__(self, text: int = MAX_TEXT, binary: int = MAX_BINARY) -> None:
        self.text = text
        self.binary = binary
        self.cut = False  # some part was shortened or left out

    def take_text(self, value: str) -> tuple[str, bool]:
        shown = value[: max(self.text, 0)]
        self.text -= len(shown)
        cut = len(shown) < len(value)
        self.cut = self.cut or cut
        return shown, cut

    def take_binary(self, size: int) -> bool:
        if size > self.binary:
            self.cut = True
            return False
        self.binary -= size
        return True


def resource_parts(contents: Any, budget: Budget) -> list[Part]:
    """`resources/read` contents (text or blob items) as parts."""
    parts: list[Part] = []
    for raw in as_list(contents)[:MAX_PARTS]:
        item = as_dict(raw)
        uri = str(item.get("uri") or "")
        mime = str(item.get("mimeType") or "")
        if isinstance(item.get("text"), str):
            text, cut = budget.take_text(item["text"])
            parts.append(Part("text", text, uri=uri, mime_type=mime, cut=cut))
        elif isinstance(item.get("blob"), str):
            parts.append(_binary(item["blob"], mime, uri, budget))
        else:
            parts.append(_other(item, budget))
    return parts


def content_parts(content: Any, budget: Budget) -> list[Part]:
    """A prompt message's or a tool result's content (one block, or a list of them) as parts."""
    blocks = as_list(content) if isinstance(content, list) else [content]
    parts: list[Part] = []
    for raw in blocks[:MAX_PARTS]:
        block = as_dict(raw)
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            text, cut = budget.take_text(block["text"])
            parts.append(Part("text", text, cut=cut))
        elif kind in ("image", "audio") and isinstance(block.get("data"), str):
            parts.append(_binary(block["data"], str(block.get("mimeType") or ""), "", budget, block=str(kind)))
        elif kind == "resource_link" and isinstance(block.get("uri"), str):
            parts.append(_link(block))
        elif kind == "resource":
            parts.extend(resource_parts([block.get("resource")], budget))
        else:
            parts.append(_other(block, budget))
    return parts


def _binary(data: str, mime: str, uri: str, budget: Budget, *, block: str = "") -> Part:
    """Base64 `data`; `block` is "image" or "audio" for a content block of that type, "" for a resource blob."""
    mime = mime.strip().lower()
    if _BASE64.fullmatch(data) is None or len(data) % 4:
        return Part("omitted", uri=uri, mime_type=mime, note="the data is not valid base64, so it is not shown")
    size = len(data) // 4 * 3 - data[-2:].count("=")
    typed = _MIME.fullmatch(mime) is not None
    major = mime.split("/")[0] if typed else ""
    inline = "image" if mime in INLINE_IMAGES else "audio" if major == "audio" else ""
    if block and inline != block:
        what = "an image" if block == "image" else "audio"
        shown = mime if typed else "unknown"
        return Part("described", uri=uri, mime_type=mime, size=size, note=f"{what} of type {shown}, {size:,} bytes")
    if not budget.take_binary(size):
        note = f"{size:,} bytes: larger than this page shows ({budget.binary:,} bytes left of {MAX_BINARY:,})"
        return Part("omitted", uri=uri, mime_type=mime, size=size, note=note)
    kind = inline or "download"
    shown_as = mime if kind != "download" else "application/octet-stream"
    return Part(
        kind,
        uri=uri,
        mime_type=mime,
        data_url=f"data:{shown_as};base64,{data}",
        filename=_filename(uri) if uri or not block else block,
        size=size,
    )


def _link(block: dict[str, Any]) -> Part:
    full = str(block["uri"])
    uri = full[:MAX_LINK]  # a longer one is shown cut, never linked
    name = str(block.get("title") or block.get("name") or "")[:500]
    mime = str(block.get("mimeType") or "")[:200]
    description = str(block.get("description") or "")[:500]
    href = uri if uri == full and _WEB_LINK.fullmatch(uri) else ""
    return Part("link", name, uri=uri, mime_type=mime, note=description, href=href)


def _other(block: dict[str, Any], budget: Budget) -> Part:
    text, cut = budget.take_text(repr_json(block))
    return Part("other", text, cut=cut)


def repr_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _filename(uri: str) -> str:
    last = uri.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    return _FILENAME_UNSAFE.sub("_", last).strip("._")[:100] or "resource"
