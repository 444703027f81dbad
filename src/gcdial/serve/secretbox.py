"""Webhook signing secrets are stored encrypted (Fernet, from ``cryptography``), never in clear.

Whoever reads the store (a backup, a copied file, a database user) must not be able to forge
deliveries to the CRM. The key comes from ``$GCDIAL_SERVE_SECRET_KEY`` (a Fernet key:
``python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"``),
else from a key file, 0600, that is generated on first use: ``<store>.key`` beside a SQLite store,
``serve.key`` in gcdial's config directory for PostgreSQL (replicas on other machines must share
the key: set the variable on each). Sealed values read ``fernet:<token>``; a clear ``whsec_``
value found in an older store is sealed when the store opens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from gcdial.errors import ConfigError
from gcdial.private_files import PRIVATE_MODE, ensure_private

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

__all__ = ["SEALED_PREFIX", "SECRET_KEY_ENV", "SecretBox", "load_box"]

SECRET_KEY_ENV = "GCDIAL_SERVE_SECRET_KEY"  # noqa: S105 (a variable's name)
SEALED_PREFIX = "fernet:"

logger = logging.getLogger("gcdial.serve")


def _new_key() -> bytes:
    """A new Fernet key: 32 random bytes, url-safe base64 (what ``Fernet.generate_key`` makes)."""
    return base64.urlsafe_b64encode(os.urandom(32))


class SecretBox:
    """Seals and opens stored secrets with one Fernet key.

    ``cryptography`` loads on the first secret sealed or opened, not with the store (~5 MB of an
    idle service's memory); the key is checked at once, as Fernet checks it.
    """

    def __init__(self, key: bytes | str) -> None:
        try:
            raw = key if isinstance(key, bytes) else key.encode("ascii")
            if len(base64.urlsafe_b64decode(raw)) != 32:
                raise ValueError("a Fernet key is 32 url-safe base64-encoded bytes")
            self._key = raw
        except (ValueError, TypeError, binascii.Error):
            raise ConfigError(
                "the key for the webhook secrets is not a Fernet key",
                hint=f"Set {SECRET_KEY_ENV} to a key from Fernet.generate_key(), or remove it "
                "to use the key file beside the store.",
            ) from None
        self._sealer: Fernet | None = None

    @property
    def _fernet(self) -> Fernet:
        if self._sealer is None:
            from cryptography.fernet import Fernet

            self._sealer = Fernet(self._key)
        return self._sealer

    def derive(self, purpose: bytes) -> bytes:
        """A key for ``purpose`` (e.g. signing list cursors) from the one key every replica
        shares: no second secret to distribute, and not the sealing key itself."""
        return hmac.new(self._key, b"gcdial:" + purpose, hashlib.sha256).digest()

    def seal(self, secret: str) -> str:
        """``secret`` encrypted, as stored."""
        return SEALED_PREFIX + self._fernet.encrypt(secret.encode()).decode("ascii")

    def open(self, stored: str) -> str:
        """The secret of a stored value (a clear one, not migrated yet, as it is)."""
        if not self.is_sealed(stored):
            return stored
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(stored.removeprefix(SEALED_PREFIX)).decode()
        except InvalidToken:
            raise ConfigError(
                "a webhook secret in the store was sealed with another key",
                hint=f"Use the key the store was created with ({SECRET_KEY_ENV} or the key "
                "file); every replica needs the same one.",
            ) from None

    @staticmethod
    def is_sealed(stored: str) -> bool:
        """True when ``stored`` is encrypted."""
        return stored.startswith(SEALED_PREFIX)


def _read_key(key_file: Path) -> str:
    """The key in ``key_file``; waits a moment for a process that is creating it right now."""
    ensure_private(key_file)
    for _ in range(100):
        try:
            text = key_file.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read the webhook secrets key {key_file}: {exc}",
                hint=f"Fix the file's permissions, or set {SECRET_KEY_ENV}.",
            ) from None
        if text:
            return text
        time.sleep(0.02)
    raise ConfigError(
        f"the webhook secrets key file {key_file} is empty",
        hint=f"Delete it only if no webhook is registered yet, or set {SECRET_KEY_ENV}.",
    )


def load_box(key_file: Path, environ: Mapping[str, str] | None = None) -> SecretBox:
    """The box from ``$GCDIAL_SERVE_SECRET_KEY``, else from ``key_file``, created (0600) with a
    new key when missing; a key file readable by others is made 0600, with a warning."""
    env = os.environ if environ is None else environ
    given = env.get(SECRET_KEY_ENV, "").strip()
    if given:
        return SecretBox(given)
    key = _new_key()
    try:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        return SecretBox(_read_key(key_file))
    except OSError as exc:
        raise ConfigError(
            f"cannot create the webhook secrets key {key_file}: {exc.strerror}",
            hint=f"Make its folder writable, or set {SECRET_KEY_ENV}.",
        ) from None
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")
        out.flush()
        os.fsync(out.fileno())
    logger.info("created the webhook secrets key %s", key_file)
    return SecretBox(key)
