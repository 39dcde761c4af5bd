"""What a call through meshgate is made of, independent of the transport that brought it."""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry.trace import SpanKind

from meshgate.access import Principal
from meshgate.jsonrpc import Envelope


@dataclass(frozen=True, slots=True)
class Target:
    """Where a call goes: a connection, reached directly or through a virtual MCP (which then names the tool
    as it shows it to its clients: a grant on the virtual MCP's exposed name allows the call too)."""

    connection_id: str
    virtual_mcp_id: str | None = None
    exposed_name: str | None = None


class Trace(Protocol):
    """The span, metrics labels and log context of the request a call belongs to."""

    error: str | None

    def identify(self, principal: Principal, connection: str, envelope: Envelope, tool_label: str) -> None: ...

    def child(
        self, name: str, kind: SpanKind = SpanKind.INTERNAL, **attributes: Any
    ) -> contextlib.AbstractContextManager[object]: ...

    def propagate(self, headers: dict[str, str]) -> None: ...


class NoTrace:
    """For calls that no request traces (workers inside meshgate): records nothing."""

    __slots__ = ("error",)

    def __init__(self) -> None:
        self.error: str | None = None

    def identify(self, principal: Principal, connection: str, envelope: Envelope, tool_label: str) -> None:
        pass

    def child(
        self, name: str, kind: SpanKind = SpanKind.INTERNAL, **attributes: Any
    ) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    def propagate(self, headers: dict[str, str]) -> None:
        pass


@dataclass(slots=True)
class CallContext:
    """Where a call comes from: named in the upstream's headers and in the audit record."""

    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    user_agent: str | None = None
    protocol_version: str | None = None
    trace: Trace = field(default_factory=NoTrace)
    started: float = field(default_factory=time.perf_counter)
    # False for the calls meshgate's event machinery makes itself (deliveries, automation runs): they never
    # become `meshgate.tool_call.completed` events, which could otherwise set one another off without end.
    announced: bool = True


class MeshTokens(Protocol):
    """Issues the `x-mesh-token` that tells an upstream who is calling."""

    def token(self, principal: Principal, connection_id: str) -> str: ...


class ConnectionCredentials(Protocol):
    """Issues the token an upstream calls meshgate with as its own connection (`x-mesh-connection-token`)."""

    def token(self, organization_id: str, connection_id: str) -> str: ...
