"""The README's promises that a reader acts on: its links stay inside the repository and lead to files that
exist, and every curl example that sends a body says it is JSON (meshgate answers 415 otherwise)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _curl_commands() -> list[str]:
    """Each `curl` command in the README's sh blocks: from its `curl` to the next one, comments left out."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        lines = [line for line in block.replace("\\\n", " ").splitlines() if not line.lstrip().startswith("#")]
        chunks = re.split(r"\n(?=curl )", "\n".join(lines))
        commands += [" ".join(chunk.split()) for chunk in chunks if chunk.startswith("curl ")]
    return commands


def test_readme_links_stay_inside_the_repository_and_exist() -> None:
    targets = LINK.findall(README)
    assert targets, "the README links nowhere: the pattern is wrong"
    for target in targets:
        assert "://" not in target and not target.startswith("//"), f"README links outside the repository: {target}"
        path = target.split("#", 1)[0]
        if path:
            assert (ROOT / path).exists(), f"README links to a missing file: {target}"


def test_every_curl_example_with_a_body_declares_json() -> None:
    with_body = [command for command in _curl_commands() if " -d " in command]
    assert len(with_body) >= 3, with_body
    for command in with_body:
        assert "Content-Type: application/json" in command, f"415 as written: {command}"


def test_the_readme_shows_a_stdio_connection_created_over_the_api() -> None:
    assert any('"connection_type":"STDIO"' in command for command in _curl_commands())
