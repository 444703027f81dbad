"""The emulator's organisation (OAuth clients and agents), loaded from a JSON or TOML fixture.

A bad fixture raises ``FixtureError`` naming the file, the field and the problem.
"""

import json
import tomllib
import uuid
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_FIXTURE_NAME = "default_fixture.json"
_GENERATED_NAMESPACE = uuid.UUID("8f0c2a52-6a43-4d53-9a59-1f5b0d7f3e10")


class FixtureError(ValueError):
    """A fixture file that cannot be used; the message names the file, field and problem."""


class StationSpec(BaseModel):
    """The agent's associated phone station."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)


class UserSpec(BaseModel):
    """One agent (a Genesys user)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str | None = None
    id: uuid.UUID
    name: str = Field(min_length=1)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    presence: str = Field(default="AVAILABLE", pattern=r"^[A-Z_]+$")
    routing_status: str | None = Field(default=None, pattern=r"^[A-Z_]+$")
    state: Literal["active", "inactive"] = "active"
    station: StationSpec | None = None
    title: str | None = None
    department: str | None = None


class ClientSpec(BaseModel):
    """An OAuth client: client credentials (with a secret) or a public PKCE client."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    grant: Literal["client_credentials", "authorization_code"]
    secret: str | None = Field(default=None, min_length=1)
    # An authorization_code client with ``user`` approves that user at once (the CLI's loopback
    # login); without one, /oauth/authorize shows a sign-in form to choose a sandbox user.
    user: str | None = None
    # Registered redirect URIs; a loopback one matches on any port (RFC 8252). None: any
    # loopback URI.
    redirect_uris: tuple[str, ...] | None = None
    token_lifetime_s: float | None = Field(default=None, gt=0)
    permissions: tuple[str, ...] | None = None

    def has_any(self, wanted: Iterable[str]) -> bool:
        """Whether the client holds at least one of ``wanted`` (no list means every permission)."""
        return self.permissions is None or any(p in self.permissions for p in wanted)

    @model_validator(mode="after")
    def _grant_fields(self) -> Self:
        if self.grant == "client_credentials" and self.secret is None:
            raise ValueError("a client_credentials client needs a 'secret'")
        if self.grant == "client_credentials" and (self.user or self.redirect_uris):
            raise ValueError("'user' and 'redirect_uris' are for authorization_code clients")
        return self


class GenerateAgents(BaseModel):
    """Bulk agents ``agent001@<email_domain>``..., each with a station."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=1, le=10_000)
    email_domain: str = Field(pattern=r"^[^@\s]+\.[^@\s]+$")
    presence: str = Field(default="AVAILABLE", pattern=r"^[A-Z_]+$")


class WrapupCodeSpec(BaseModel):
    """A wrap-up code of the organisation (``GET /api/v2/routing/wrapupcodes``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID
    name: str = Field(min_length=1)


class QueueSpec(BaseModel):
    """An ACD queue, the wrap-up codes assigned to it (names or ids of ``wrapup_codes``) and its
    members (keys, ids or emails of ``users``; none given: every user of the organisation)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID
    name: str = Field(min_length=1)
    wrapup_codes: tuple[str, ...] = ()
    members: tuple[str, ...] | None = None


class GroupSpec(BaseModel):
    """A group of users (``GET /api/v2/groups``) and its members (keys, ids or emails of
    ``users``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID
    name: str = Field(min_length=1)
    members: tuple[str, ...] = ()


class WrapupRule(BaseModel):
    """What the agent records after a queue call to a matching number.

    ``match`` is a shell-style pattern on the dialed E.164 number (``*2??``: the third digit from
    the end is 2); the first matching rule wins. ``code`` names a wrap-up code (name or id);
    ``never`` means the agent never records one (the call stays in after-call work). ``notes`` may
    hold ``{callback}``, replaced by the ISO 8601 UTC time ``callback_in_s`` simulated seconds
    after the wrap-up. ``after_s`` overrides ``EmulatorConfig.wrapup_after_s``. ``answered``
    (true or false) limits the rule to calls the customer answered, or did not.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str = Field(min_length=1)
    code: str | None = None
    notes: str = ""
    tags: tuple[str, ...] = ()
    never: bool = False
    answered: bool | None = None
    after_s: float | None = Field(default=None, ge=0)
    callback_in_s: float = Field(default=7200.0, ge=0)

    @model_validator(mode="after")
    def _code_or_never(self) -> Self:
        if self.never == (self.code is not None):
            raise ValueError("a wrap-up rule needs either 'code' or 'never': true (not both)")
        return self


class Fixture(BaseModel):
    """A whole fixture file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clients: list[ClientSpec] = Field(min_length=1)
    users: list[UserSpec] = Field(default_factory=list)
    generate_agents: GenerateAgents | None = None
    wrapup_codes: list[WrapupCodeSpec] = Field(default_factory=list)
    queues: list[QueueSpec] = Field(default_factory=list)
    groups: list[GroupSpec] = Field(default_factory=list)
    wrapups: list[WrapupRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_references(self) -> Self:
        _unique("clients", (c.id for c in self.clients), "id")
        _unique("users", (str(u.id) for u in self.users), "id")
        _unique("users", (u.email.lower() for u in self.users), "email")
        _unique("users", (u.key for u in self.users if u.key is not None), "key")
        if not any(c.grant == "client_credentials" for c in self.clients):
            raise ValueError("clients: at least one client must have grant 'client_credentials'")
        for index, client in enumerate(self.clients):
            if client.user is not None and self.find_user(client.user) is None:
                raise ValueError(
                    f"clients[{index}].user: no user has key, id or email {client.user!r}"
                )
        _unique("wrapup_codes", (str(c.id) for c in self.wrapup_codes), "id")
        _unique("wrapup_codes", (c.name.lower() for c in self.wrapup_codes), "name")
        _unique("queues", (str(q.id) for q in self.queues), "id")
        for index, queue in enumerate(self.queues):
            for c_index, ref in enumerate(queue.wrapup_codes):
                if self.find_wrapup_code(ref) is None:
                    raise ValueError(
                        f"queues[{index}].wrapup_codes[{c_index}]: no wrap-up code has name "
                        f"or id {ref!r}"
                    )
            for m_index, ref in enumerate(queue.members or ()):
                if self.find_user(ref) is None:
                    raise ValueError(
                        f"queues[{index}].members[{m_index}]: no user has key, id or email {ref!r}"
                    )
        _unique("groups", (str(g.id) for g in self.groups), "id")
        for index, group in enumerate(self.groups):
            for m_index, ref in enumerate(group.members):
                if self.find_user(ref) is None:
                    raise ValueError(
                        f"groups[{index}].members[{m_index}]: no user has key, id or email {ref!r}"
                    )
        for index, rule in enumerate(self.wrapups):
            if rule.code is not None and self.find_wrapup_code(rule.code) is None:
                raise ValueError(
                    f"wrapups[{index}].code: no wrap-up code has name or id {rule.code!r}"
                )
        return self

    def find_wrapup_code(self, ref: str) -> WrapupCodeSpec | None:
        """The wrap-up code whose id or name (compared without regard to case) is ``ref``."""
        for code in self.wrapup_codes:
            if ref.lower() in (str(code.id), code.name.lower()):
                return code
        return None

    def queue_codes(self, queue: QueueSpec) -> list[WrapupCodeSpec]:
        """The wrap-up codes assigned to ``queue``, in the fixture's order."""
        codes = (self.find_wrapup_code(ref) for ref in queue.wrapup_codes)
        return [code for code in codes if code is not None]

    def queue_members(self, queue: QueueSpec) -> list[UserSpec]:
        """The members of ``queue``, in the order given (every user when it names none)."""
        if queue.members is None:
            return self.all_users()
        return self._users(queue.members)

    def group_members(self, group: GroupSpec) -> list[UserSpec]:
        """The members of ``group``, in the order given."""
        return self._users(group.members)

    def _users(self, refs: Iterable[str]) -> list[UserSpec]:
        found = (self.find_user(ref) for ref in refs)
        return [user for user in found if user is not None]

    def find_user(self, ref: str) -> UserSpec | None:
        """The user whose key, id or email is ``ref``."""
        for user in self.all_users():
            if ref in (user.key, str(user.id)) or ref.lower() == user.email.lower():
                return user
        return None

    def all_users(self) -> list[UserSpec]:
        """The listed users followed by the generated agents."""
        return [*self.users, *_generated(self.generate_agents)]


def _unique(where: str, values: Iterable[str], field: str) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise ValueError(f"{where}[{index}].{field}: duplicate value {value!r}")
        seen.add(value)


def _generated(spec: GenerateAgents | None) -> list[UserSpec]:
    if spec is None:
        return []
    users = []
    for n in range(1, spec.count + 1):
        email = f"agent{n:03d}@{spec.email_domain}"
        users.append(
            UserSpec(
                id=uuid.uuid5(_GENERATED_NAMESPACE, email),
                name=f"Agent {n:03d}",
                email=email,
                presence=spec.presence,
                station=StationSpec(
                    id=str(uuid.uuid5(_GENERATED_NAMESPACE, "station:" + email)),
                    name=f"agent{n:03d}-webrtc",
                ),
            )
        )
    return users


def load_fixture(path: Path | None) -> Fixture:
    """Read and validate a fixture file (``.json`` or ``.toml``); None means the built-in one."""
    if path is None:
        text = resources.files("gcdial.emulator").joinpath(DEFAULT_FIXTURE_NAME).read_text()
        return parse_fixture(json.loads(text), source=DEFAULT_FIXTURE_NAME)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FixtureError(f"fixture file {path}: cannot be read: {exc.strerror}") from None
    data: Any
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw)
    except UnicodeDecodeError:
        raise FixtureError(f"fixture file {path}: is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise FixtureError(
            f"fixture file {path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise FixtureError(f"fixture file {path}: invalid TOML: {exc}") from None
    return parse_fixture(data, source=str(path))


def parse_fixture(data: object, *, source: str) -> Fixture:
    """Validate already-parsed fixture data; ``source`` names it in error messages."""
    try:
        return Fixture.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = _field_path(error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown field (check the spelling; see docs/emulator.md)"
            problems.append(f"field {field}: {message}" if field else message)
        raise FixtureError(f"fixture file {source}: " + "; ".join(problems)) from None


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path
