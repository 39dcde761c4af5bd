"""What meshgate takes as an email address: one rule for people, invitations and mail senders alike.

A module of its own (not in `meshgate.identity`) because the sign-in configuration checks sender addresses and
`meshgate.mail` reads that configuration, while `meshgate.identity` sends mail: no package cycle."""

from __future__ import annotations

import re

from meshgate.errors import InvalidInput

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")


def clean_email(value: str) -> str:
    email = value.strip().lower()
    if len(email) > 320 or not _EMAIL.match(email):
        raise InvalidInput(f"{value[:80]!r} is not an email address")
    return email
