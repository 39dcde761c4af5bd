"""Every symmetric key meshgate uses internally, derived from `MESHGATE_SECRET` with HKDF-SHA256.

Each purpose has its own label (HKDF `info`), so a value signed or sealed for one purpose (a CSRF
token, a consent request, an access token, a session id, a connection token, a secret on its way to
the page that shows it once) never verifies for another, and learning one derived key reveals neither
the secret nor the other keys. `x-mesh-token` is signed with its own Ed25519 keys and takes nothing
from here.
"""

from __future__ import annotations

from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class KeyPurpose(StrEnum):
    ACCESS_TOKEN = "meshgate oauth access token v2"  # noqa: S105  (a label, not a secret)
    CONSENT = "meshgate consent request v2"
    CSRF = "meshgate csrf v2"
    SESSION_ID = "meshgate mcp session id v2"
    CONNECTION_TOKEN = "meshgate connection token v1"  # noqa: S105  (a label, not a secret)
    SHOWN_ONCE = "meshgate shown once v1"


def derive_key(secret: bytes, purpose: KeyPurpose) -> bytes:
    """The 32-byte key for `purpose`."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.value.encode()).derive(secret)
