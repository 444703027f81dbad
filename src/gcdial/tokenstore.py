"""The user token saved by ``gcdial login``: one owner-only file per profile under the config dir.

Layout: ``<config dir>/tokens/<profile or "default">.json``, the directory mode 0700 and the file
0600. A token file that others can read is refused, not used. A token is only ever handed to the
API host it was issued for.
"""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from gcdial.config import Settings
from gcdial.errors import ConfigError

__all__ = [
    "StoredToken",
    "delete_token",
    "load_for",
    "load_token",
    "path_for",
    "save_token",
    "token_path",
]

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")
_DIR_MODE = 0o700
_FILE_MODE = 0o600


class StoredToken(BaseModel):
    """A user token and what it is good for; ``access_token`` never shows in ``repr``."""

    model_config = ConfigDict(frozen=True)

    access_token: SecretStr
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_at: datetime | None = None
    api_base_url: str
    login_base_url: str
    client_id: str
    created_at: datetime

    def expired(self, *, now: datetime | None = None) -> bool:
        """Whether the token's lifetime has run out."""
        if self.expires_at is None:
            return False
        return (now or datetime.now(UTC)) >= self.expires_at


def token_path(config_dir: Path, profile: str | None) -> Path:
    """Where the token of ``profile`` lives (``default`` when there is no profile)."""
    name = _SAFE_NAME.sub("_", profile) if profile else "default"
    return config_dir / "tokens" / f"{name}.json"


def path_for(settings: Settings) -> Path | None:
    """The token file these settings use, or None when they have no config directory."""
    if settings.config_dir is None:
        return None
    return token_path(settings.config_dir, settings.profile)


def _private_dir(path: Path) -> None:
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=_DIR_MODE)
    path.mkdir(mode=_DIR_MODE, exist_ok=True)
    if os.name == "posix":
        path.chmod(_DIR_MODE)


def save_token(token: StoredToken, path: Path) -> None:
    """Write the token atomically with mode 0600 in a 0700 directory."""
    try:
        _private_dir(path.parent)
        payload: dict[str, Any] = json.loads(token.model_dump_json())
        payload["access_token"] = token.access_token.get_secret_value()
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
        try:
            if os.name == "posix":
                os.fchmod(fd, _FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                fd = -1
                json.dump(payload, handle)
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            if fd >= 0:
                os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(
            f"Cannot save the login token to {path}: {exc.strerror or exc}.",
            source=str(path),
            hint="Check that you may write to the config directory (XDG_CONFIG_HOME or "
            "~/.config/gcdial).",
        ) from None


def load_token(path: Path) -> StoredToken | None:
    """Read a saved token; None when there is none. Refuses a file that others can read."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(
            f"Cannot read the login token {path}: {exc.strerror or exc}.",
            source=str(path),
            hint="Run `gcdial login` again.",
        ) from None
    if os.name == "posix" and mode & 0o077:
        raise ConfigError(
            f"The saved login token {path} can be read by other users (mode {oct(mode)}), so it "
            "was not used.",
            source=str(path),
            hint=f"Delete it and run `gcdial login` again (or chmod 600 {path} if only you "
            "could have read it).",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return StoredToken.model_validate(data)
    except (OSError, ValueError, ValidationError):
        raise ConfigError(
            f"The saved login token {path} is unreadable or damaged.",
            source=str(path),
            hint="Run `gcdial login` again.",
        ) from None


def delete_token(path: Path) -> bool:
    """Remove a saved token; True when there was one."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def load_for(settings: Settings) -> StoredToken | None:
    """The saved token for these settings' profile, if it was issued for their API host."""
    path = path_for(settings)
    if path is None or settings.api_base_url is None:
        return None
    token = load_token(path)
    if token is None or token.api_base_url.rstrip("/") != settings.api_base_url.rstrip("/"):
        return None
    return token
