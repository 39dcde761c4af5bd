"""Run the reliability suite and write docs/reliability.md from what it measured.

Run:  .venv/bin/python scripts/reliability_report.py   (needs what ./scripts/test installs; PostgreSQL
and MariaDB tests run when MESHGATE_TEST_POSTGRES_URL / MESHGATE_TEST_MYSQL_URL are set)

The run is SUITES plus every test marked `@pytest.mark.finding(n)` anywhere under tests/ (selected by the
plugin in scripts/reliability_selection.py); the report lists those per item of the 2026-12 security review.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TIMING = re.compile(r"median refusal time \(ms\): (\{.*?\})")
SUITES = [
    "tests/reliability",
    "tests/identity/test_revocation_across_processes.py",
    "tests/mcp/test_bad_input.py",
    "tests/identity/test_cross_org_isolation.py",
    "tests/proxy/test_proxy_access.py",
    "tests/proxy/test_upstream_failures.py",
    "tests/monitoring/test_audit_shutdown.py",
    "tests/connections/test_addresses.py",
    "tests/connections/test_connect_time_addresses.py",
    "tests/oauth/test_authorization_rules.py",
    "tests/oauth/test_client_metadata_documents.py",
    "tests/oauth/test_token_lifetimes.py",
]
# The summary table of ../shared/security-review-2026-12.md (main at b97ad1c), one line per item.
FINDINGS = [
    ("high", "A virtual MCP reaches connections and tools its principal holds no grant on"),
    ("high", "Changing `connection_url` sends the sealed token and headers to the new host"),
    ("high", "Invitation sign-up takes any email unverified (account pre-hijacking)"),
    ("high", "One upstream freezes the gateway: quadratic SSE parsing, unbounded upstream input"),
    ("high", "Login blocks the event loop (argon2), is not throttled, and its timing reveals accounts"),
    ("high", "`x-mesh-token` signed with the raw `MESHGATE_SECRET`; internal keys not separated by purpose"),
    ("medium", "The `x-mesh-token` cache mixes a user's grants"),
    ("medium", "The consent page shows an unverified client name and host, never the redirect URI"),
    ("medium", "`/oauth/callback` is not bound to the browser session that started the flow"),
    ("medium", "SSRF: own listen address allowed, GET relays any body, CIMD fetch errors act as a port scanner"),
    ("medium", "Per-call deadlines not enforced on Python 3.11; no overall deadline on REST and virtual paths"),
    ("low", "`/metrics` unauthenticated by default, with every organization's ids and activity"),
    ("low", "Client `Mcp-Method` / `Mcp-Name` headers go upstream unchecked against the body"),
    ("low", "Timing oracle: another organization's pooled connection id answers faster than an unknown id"),
    ("low", "Server-to-client requests from an upstream are unbounded"),
    ("low", "Audit redaction misses common secret shapes and `Authorization` credentials in text"),
    ("low", "SSRF guard gaps with `MESHGATE_BLOCK_PRIVATE_NETWORKS=1` (100.64/10, 2002::/16, fec0::/10, ...)"),
    ("low", "Upstream tool names with control and bidi characters are stored and shown"),
    ("low", "`ORGANIZATION_MEMBER_ADD` adds any existing user without consent and reveals them"),
    ("low", "Held streams outlive the expiry of their credential"),
    ("low", "Unauthenticated dynamic client registration has no bound"),
    ("low", "The data dir and database are created world-readable"),
    ("info", "The settings page `<title>` swallows a form, CSRF token included"),
    ("info", "Invitation tokens travel in the URL path"),
    ("info", "An upstream's `authorization_endpoint` is used without a scheme check"),
    ("info", "An OAuth grant can mint a non-expiring API key that survives the grant"),
    ("info", "Cancellation is keyed by a client-chosen session id, not bound to the caller"),
]
# A decisions.md heading that names review items it explains instead of a test, after "security review":
# "## Tokens in URLs (security review 23 and 24)", "(issue 23; security review findings 23-27)".
DECIDED = re.compile(r"^#+ .*security review(?P<items>[^)]*)", re.IGNORECASE)


def commit() -> str:
    """The commit the report describes, marked when the worktree differs from it."""

    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603, S607  (fixed git commands)
        return run.stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return (git("rev-parse", "HEAD") or "unknown") + (" (with uncommitted changes)" if dirty else "")


def decided_items() -> dict[int, str]:
    """Review items that docs/decisions.md explains under a heading naming them, and that heading."""
    decisions = ROOT / "docs" / "decisions.md"
    found: dict[int, str] = {}
    for line in decisions.read_text().splitlines() if decisions.exists() else []:
        match = DECIDED.match(line)
        if match is not None:
            for first, last in re.findall(r"(\d+)(?:\s*[-–]\s*(\d+))?", match.group("items")):  # noqa: RUF001  (en dash)
                for number in range(int(first), int(last or first) + 1):
                    found.setdefault(number, line.lstrip("# ").strip())
    return found


def summary(outcomes: list[str]) -> str:
    """The outcomes of one test over its parameters: `3 passed, 2 skipped (why; why)`."""
    counts = Counter(outcome.partition(":")[0] for outcome in outcomes)
    reasons = sorted({outcome.split(":")[1].strip() for outcome in outcomes if outcome.startswith("skipped:")})
    why = f" ({'; '.join(reasons)})" if reasons else ""
    return ", ".join(f"{count} {outcome}" + (why if outcome == "skipped" else "") for outcome, count in counts.items())


def finding_rows(results: dict[str, dict[str, Any]]) -> tuple[list[str], list[int]]:
    """One table row per review item: its tests (grouped over parameters) and their outcomes; and the items
    with neither a test nor a decision."""
    decided = decided_items()
    by_item: dict[int, dict[str, list[str]]] = {}
    for nodeid, result in results.items():
        test = nodeid.split("[", 1)[0].removeprefix("tests/")
        for item in result["findings"]:
            by_item.setdefault(item, {}).setdefault(test, []).append(result["outcome"])
    rows: list[str] = []
    untested: list[int] = []
    for number, (severity, title) in enumerate(FINDINGS, start=1):
        tests = by_item.get(number, {})
        cells = [f"`{test}`: {summary(outcomes)}" for test, outcomes in sorted(tests.items())]
        if not tests and number in decided:
            cells.append(f"documented in docs/decisions.md ({decided[number]})")
        elif not tests:
            untested.append(number)
            cells.append("no test yet")
        tested = "<br>".join(cells).replace("|", r"\|")  # a skip reason must not end the table cell
        rows.append(f"| {number} | {severity} | {title} | {tested} |")
    return rows, untested


def main() -> int:
    with tempfile.TemporaryDirectory() as out:
        report = Path(out) / "junit.xml"
        env = {
            **os.environ,
            "MESHGATE_RELIABILITY_OUT": out,
            "MESHGATE_RELIABILITY_SUITES": os.pathsep.join(SUITES),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "scripts"), os.environ.get("PYTHONPATH")])),
        }
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "reliability_selection"]
        result = subprocess.run(  # noqa: S603  (fixed command)
            [*pytest, f"--junitxml={report}", "-o", "junit_logging=system-out", "tests"],
            cwd=ROOT,
            env=env,
            check=False,
        )
        cases = ET.parse(report).getroot().iter("testcase")  # noqa: S314  (pytest's own report)
        rows = []
        timings: dict[str, dict[str, float]] = {}
        for case in cases:
            printed = case.find("system-out")
            found = TIMING.search(printed.text or "") if printed is not None else None
            if found is not None:
                backend = (case.get("name") or "").partition("[")[2].rstrip("]") or "sqlite"
                timings[backend] = json.loads(found.group(1).replace("'", '"'))
            outcome = "passed"
            if case.find("failure") is not None or case.find("error") is not None:
                outcome = "FAILED"
            elif case.find("skipped") is not None:
                outcome = "skipped: " + (case.find("skipped").get("message") or "")  # type: ignore[union-attr]
            rows.append(
                f"| `{case.get('classname', '').split('.')[-1]}::{case.get('name')}` | {outcome} | {float(case.get('time', 0)):.1f} s |"
            )
        soak_path = Path(out) / "soak.json"
        soak = json.loads(soak_path.read_text()) if soak_path.exists() else None
        findings_path = Path(out) / "findings.json"
        findings = json.loads(findings_path.read_text()) if findings_path.exists() else {}
    review_rows, untested = finding_rows(findings)
    lines = [
        "# Reliability and security results",
        "",
        f"Generated by `scripts/reliability_report.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}) from commit "
        f"`{commit()}`. Do not edit by hand.",
        "",
        "## What was tried",
        "",
        "- **Fuzzing** (hypothesis, 250 examples per property): random bytes, random JSON, JSON-RPC messages with",
        "  mutated versions, ids, methods and params, brackets nested up to 5,000 deep, batches, every management",
        "  tool with random arguments, against `/mcp` and `/mcp/{connection_id}` of one `meshgate serve` process",
        "  over loopback; no answer may be a 500 or non-JSON, and afterwards that same process must be alive,",
        "  ready, and answer a management call and a proxied call within 10 s.",
        "- **Tenants**: every id-taking management tool and the proxy and REST paths with another organization's ids",
        "  (answers identical to unknown ids), members without the permission, deleted keys and removed members;",
        "  on every MCP endpoint (`/mcp`, `/mcp/{id}`, REST): expired and deleted API keys, OAuth tokens issued for",
        "  another endpoint, revoked OAuth tokens (refresh-token reuse revokes the family), garbage keys and JWTs —",
        "  all 401 with identical bodies whether or not the connection exists (credentials are checked first).",
        "- **OAuth**: reused codes, wrong redirect URIs, missing or plain PKCE, wrong verifiers, foreign resources,",
        "  bad scopes, forged consent forms (CSRF), expired tokens, client authentication of confidential clients.",
        "- **Limits**: bodies over 4 MiB (declared and chunked), wrong content types, batches, malformed JSON.",
        "- **SSRF**: link-local and cloud metadata addresses refused for connection URLs and OAuth metadata",
        "  fetches (client ID metadata documents, upstream discovery), redirects re-checked; private networks when",
        "  configured, checked again on every new upstream connection (a saved connection whose address became",
        "  refused is not reached).",
        "- **Rate limits**: per key and per organization, 429 with `Retry-After`, sliced across live replicas on",
        "  one database (checked with two processes on PostgreSQL); the check costs ~1 µs (bench/rate_limit_cost.py).",
        "- **Faults**: an upstream killed mid-session, hanging past its call timeout, answering HTML; SIGTERM under",
        "  load (no audit record lost); SIGKILL under load (database consistent, gateway serves again on restart);",
        "  PostgreSQL restarted under load (calls keep working, readiness recovers, change notifications come back).",
        "",
        "## Results",
        "",
        "| test | outcome | time |",
        "|---|---|---|",
        *rows,
        "",
    ]
    if soak is not None:
        lines += [
            "## Soak",
            "",
            f"{soak['calls']:,} proxied `tools/call` at {soak['clients']} concurrent clients in {soak['seconds']} s "
            f"({soak['calls_per_second']:,} calls/s), **{soak['errors']} errors**. Gateway RSS "
            f"{soak['rss_kib_after_warm_up'] / 1024:.1f} MiB after warm-up, {soak['rss_kib_at_end'] / 1024:.1f} MiB at the end; "
            f"open descriptors {soak['descriptors_after_warm_up']} → {soak['descriptors_at_end']}.",
            "",
        ]
    if timings:
        lines += [
            "## Refusal timing",
            "",
            "Median response time (ms) of 100 requests each, with another organization's valid key, to an existing",
            "connection of that organization and to a connection id that does not exist (same 404 body; measured,",
            "not asserted):",
            "",
            "| backend | existing, other org | missing |",
            "|---|---|---|",
            *(f"| {name} | {t['existing, other org']} | {t['missing']} |" for name, t in timings.items()),
            "",
        ]
    lines += [
        "## Security review items",
        "",
        "Each item of the 2026-12 security review, with the tests marked `@pytest.mark.finding(n)` for it (wherever",
        "they live; all of them ran above) and their outcomes, summed over parameters such as database backends.",
        "",
        "| # | severity | finding | tests and outcome |",
        "|---|---|---|---|",
        *review_rows,
        "",
        "## Not covered yet",
        "",
        "- Security review items with neither a regression test nor a decision in docs/decisions.md: "
        + (", ".join(str(number) for number in untested) if untested else "none")
        + ".",
        "- The fuzzing and fault tests use Streamable HTTP upstreams; STDIO and legacy SSE upstreams have their",
        "  own tests outside this report.",
        "",
    ]
    (ROOT / "docs" / "reliability.md").write_text("\n".join(lines))
    print(f"wrote docs/reliability.md (pytest exit code {result.returncode})")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
