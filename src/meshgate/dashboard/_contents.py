"""What a resource read or a prompt answered, as parts a page can show safely and within a size budget.

Text is shown as text (the template escapes it). Binary data becomes a `data:` URL built here: inline for
`image/*` and `audio/*` (the page's CSP allows `data:` images and media), else a download link whose URL
says `application/octet-stream`, so the browser never renders what the upstream sent as a document."""

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


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of an answer. `kind`: text, image, audio, download, omitted (too large: `note` says so) or
    other (shown as JSON in `text`)."""

    kind: str
    text: str = ""
    uri: str = ""
    mime_type: str = ""
    data_url: str = ""
    filename: str = ""
    size: int = 0
    cut: bool = False
    note: str = ""


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
    """A prompt message's content (one block, or a list of them) as parts."""
    blocks = as_list(content) if isinstance(content, list) else [content]
    parts: list[Part] = []
    for raw in blocks[:MAX_PARTS]:
        block = as_dict(raw)
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            text, cut = budget.take_text(block["text"])
            parts.append(Part("text", text, cut=cut))
        elif kind in ("image", "audio") and isinstance(block.get("data"), str):
            parts.append(_binary(block["data"], str(block.get("mimeType") or ""), "", budget))
        elif kind == "resource":
            parts.extend(resource_parts([block.get("resource")], budget))
        else:
            parts.append(_other(block, budget))
    return parts


def _binary(data: str, mime: str, uri: str, budget: Budget) -> Part:
    mime = mime.strip().lower()
    if _BASE64.fullmatch(data) is None or len(data) % 4:
        return Part("omitted", uri=uri, mime_type=mime, note="the data is not valid base64, so it is not shown")
    size = len(data) // 4 * 3 - data[-2:].count("=")
    if not budget.take_binary(size):
        note = f"{size:,} bytes: larger than this page shows ({budget.binary:,} bytes left of {MAX_BINARY:,})"
        return Part("omitted", uri=uri, mime_type=mime, size=size, note=note)
    typed = _MIME.fullmatch(mime) is not None
    kind = mime.split("/")[0] if typed and mime.split("/")[0] in ("image", "audio") else "download"
    shown_as = mime if kind != "download" else "application/octet-stream"
    return Part(
        kind,
        uri=uri,
        mime_type=mime,
        data_url=f"data:{shown_as};base64,{data}",
        filename=_filename(uri),
        size=size,
    )


def _other(block: dict[str, Any], budget: Budget) -> Part:
    text, cut = budget.take_text(repr_json(block))
    return Part("other", text, cut=cut)


def repr_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _filename(uri: str) -> str:
    last = uri.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    return _FILENAME_UNSAFE.sub("_", last).strip("._")[:100] or "resource"
