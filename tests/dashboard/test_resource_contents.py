"""Resource templates expand as RFC 6570 says; what a read or a prompt answered becomes bounded, safe parts."""

from __future__ import annotations

import pytest

from meshgate.dashboard._contents import Budget, content_parts, resource_parts
from meshgate.dashboard._uritemplate import Variable, expand, variables
from meshgate.errors import InvalidInput

# RFC 6570 section 3.2 examples (levels 1 to 3), with its variable values.
VALUES = {"var": "value", "hello": "Hello World!", "path": "/foo/bar", "x": "1024", "y": "768", "empty": ""}
EXAMPLES = [
    ("{var}", "value"),
    ("{hello}", "Hello%20World%21"),
    ("{+hello}", "Hello%20World!"),
    ("{+path}/here", "/foo/bar/here"),
    ("here?ref={+path}", "here?ref=/foo/bar"),
    ("map?{x,y}", "map?1024,768"),
    ("{#path,x}/here", "#/foo/bar,1024/here"),
    ("X{.var}", "X.value"),
    ("{/var,x}/here", "/value/1024/here"),
    ("{;x,y}", ";x=1024;y=768"),
    ("{?x,y}", "?x=1024&y=768"),
    ("?fixed=yes{&x}", "?fixed=yes&x=1024"),
    ("{?x,undefined}", "?x=1024"),
]


@pytest.mark.parametrize(("template", "uri"), EXAMPLES)
def test_templates_expand_as_rfc_6570_shows(template: str, uri: str) -> None:
    assert expand(template, VALUES) == uri


def test_a_value_is_percent_encoded_so_it_stays_one_path_segment() -> None:
    assert expand("shelf://{shelf}/{book}", {"shelf": "Sci Fi", "book": "a/b?c#d&e%"}) == (
        "shelf://Sci%20Fi/a%2Fb%3Fc%23d%26e%25"
    )
    assert expand("{+p}", {"p": "a%20b %"}) == "a%20b%20%25"  # triplets kept, a lone % encoded


def test_variables_are_listed_once_and_path_ones_are_required() -> None:
    assert variables("memo://{name}/{+rest}{?q,name}") == [
        Variable("name", required=True),
        Variable("rest", required=True),
        Variable("q", required=False),
    ]


@pytest.mark.parametrize("template", ["{list*}", "{var:3}", "{}", "{a b}", "memo://{name"])
def test_templates_it_cannot_expand_are_refused_with_a_reason(template: str) -> None:
    with pytest.raises(InvalidInput):
        variables(template)


def test_text_beyond_the_budget_is_cut_and_said_so() -> None:
    budget = Budget(text=5)
    parts = resource_parts([{"uri": "a://1", "text": "abcdefgh"}, {"uri": "a://2", "text": "more"}], budget)
    assert [(p.text, p.cut) for p in parts] == [("abcde", True), ("", True)]
    assert budget.cut


def test_binary_becomes_a_data_url_inline_for_images_and_audio_and_a_download_otherwise() -> None:
    parts = resource_parts(
        [
            {"uri": "a://p.png", "blob": "AAEC", "mimeType": "image/png"},
            {"uri": "a://s.wav", "blob": "AAEC", "mimeType": "audio/wav"},
            {"uri": "a://page.html", "blob": "AAEC", "mimeType": "text/html"},
            {"uri": "a://x", "blob": "AAEC", "mimeType": 'image/png" onerror="x'},
            {"uri": "a://i.svg", "blob": "AAEC", "mimeType": "image/svg+xml"},
        ],
        Budget(),
    )
    assert [(p.kind, p.data_url) for p in parts] == [
        ("image", "data:image/png;base64,AAEC"),
        ("audio", "data:audio/wav;base64,AAEC"),
        ("download", "data:application/octet-stream;base64,AAEC"),  # never rendered as a document
        ("download", "data:application/octet-stream;base64,AAEC"),
        ("download", "data:application/octet-stream;base64,AAEC"),  # SVG can carry script: never inline
    ]
    assert [p.filename for p in parts] == ["p.png", "s.wav", "page.html", "x", "i.svg"]
    assert parts[0].size == 3


def test_binary_too_large_or_not_base64_is_left_out_with_a_note() -> None:
    large, broken = resource_parts(
        [{"blob": "AAAAAAAA", "mimeType": "image/png"}, {"blob": "not base64!", "mimeType": "image/png"}],
        Budget(binary=5),
    )
    assert large.kind == "omitted" and large.size == 6 and "larger than this page shows" in large.note
    assert broken.kind == "omitted" and "not valid base64" in broken.note


def test_prompt_content_blocks_become_parts() -> None:
    parts = content_parts(
        [
            {"type": "text", "text": "hi"},
            {"type": "image", "data": "AAEC", "mimeType": "image/gif"},
            {"type": "resource", "resource": {"uri": "a://r", "text": "inside"}},
            {"type": "resource_link", "uri": "a://l", "name": "l"},
        ],
        Budget(),
    )
    assert [p.kind for p in parts] == ["text", "image", "text", "link"]
    assert parts[2].uri == "a://r" and (parts[3].text, parts[3].uri, parts[3].href) == ("l", "a://l", "")


@pytest.mark.parametrize(
    ("block", "note"),
    [
        ({"type": "image", "data": "AAEC", "mimeType": "image/svg+xml"}, "an image of type image/svg+xml, 3 bytes"),
        ({"type": "image", "data": "AAEC", "mimeType": "image/tiff"}, "an image of type image/tiff, 3 bytes"),
        ({"type": "image", "data": "AAEC", "mimeType": "audio/wav"}, "an image of type audio/wav, 3 bytes"),
        ({"type": "audio", "data": "AAEC", "mimeType": "image/png"}, "audio of type image/png, 3 bytes"),
        ({"type": "audio", "data": "AAEC", "mimeType": "<x>"}, "audio of type unknown, 3 bytes"),
    ],
)
def test_an_image_or_audio_block_the_page_does_not_show_inline_is_described(block: dict[str, str], note: str) -> None:
    (part,) = content_parts([block], Budget())
    assert (part.kind, part.note, part.data_url) == ("described", note, "")


def test_a_resource_link_links_only_to_a_web_address() -> None:
    links = content_parts(
        [
            {"type": "resource_link", "uri": "https://example.org/a?b=1", "name": "a", "title": "The A"},
            {"type": "resource_link", "uri": "HTTP://example.org/", "name": "b"},
            {"type": "resource_link", "uri": "javascript:alert(1)", "name": "c"},
            {"type": "resource_link", "uri": "data:text/html,<script>x</script>", "name": "d"},
            {"type": "resource_link", "uri": "https://example.org/ x", "name": "e"},
            {"type": "resource_link", "uri": "https://example.org/" + "x" * 3000, "name": "f"},
        ],
        Budget(),
    )
    assert [(p.kind, p.text, p.href) for p in links] == [
        ("link", "The A", "https://example.org/a?b=1"),
        ("link", "b", "HTTP://example.org/"),
        ("link", "c", ""),
        ("link", "d", ""),
        ("link", "e", ""),
        ("link", "f", ""),  # too long: shown cut, not linked
    ]
    assert len(links[-1].uri) == 2048
