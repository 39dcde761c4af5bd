"""What can go wrong on the client side, each with the exit code a script can test.

    RemoteError            exit 1  the gateway or a tool refused (a tool result with isError, an HTTP error)
    ├── BadInput           exit 2  the command line was wrong (bad --json, --arg without '=') (click's usage code)
    ├── NotLoggedIn        exit 3  no credentials, or the gateway refused them and a refresh did not help
    └── Unreachable        exit 4  the gateway could not be reached (connection refused, DNS, timeout)

These never travel on the wire, so they are not part of `meshgate.errors` (the gateway's error tree).
"""

from __future__ import annotations

from typing import ClassVar


class RemoteError(Exception):
    """A failure of a remote command, with a one-line message."""

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadInput(RemoteError):
    exit_code = 2


class NotLoggedIn(RemoteError):
    exit_code = 3


class Unreachable(RemoteError):
    exit_code = 4
