"""The one scrubber, both ways: no secret ever shown, and no ordinary text ever eaten."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from gcdial.scrub import REDACTED, Scrubber, basic_form, scrub

SRC = Path(__file__).resolve().parents[2] / "src" / "gcdial"

TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
secrets_ = st.text(alphabet=TOKEN_CHARS, min_size=12, max_size=64).filter(
    lambda s: any(c.isdigit() for c in s) and s[0].isalnum() and s[-1].isalnum()
)
client_ids = st.text(alphabet="abcdef0123456789-", min_size=4, max_size=36)
# Prose about tokens and auth. The scheme words come with the words that follow them in real
# messages ("Bearer tokens"): a credential-shaped word right after "Bearer" is taken for a token.
_WORDS = [
    "got",
    "a",
    "token:",
    "token",
    "client",
    "credentials",
    "secret",
    "secret:",
    "the",
    "auth",
    "authentication",
    "tokens",
    "id",
    "(client",
    "id)",
    "via",
    "http://127.0.0.1:8765",
    "https://login.mypurecloud.ie",
    "HTTP",
    "405",
    "answers",
    "invalid_client",
    "refused",
    "code",
    "sandbox-client",
    "region:",
    "eu_west_1",
    "from",
    "environment",
    "variable",
    "GENESYSCLOUD_OAUTHCLIENT_SECRET",
    "Alice",
    "Anders",
    "✓",
    "---",
    "=",
    ":",
    "token=",
    "secret=",
    "Basic:",
    "Bearer:",
    "passwordless",
    "OK.",
    "conversation:call:add",
    "not.a.user",
    "missing.permissions",
    "+14155550100",
]
_PHRASES = [
    "Bearer tokens",
    "Basic auth",
    "Bearer token.",
    "HTTP Basic authentication",
    "Bearer 405",
    "Basic client",
    "Basic",
]
prose_words = st.sampled_from([*_WORDS, *_PHRASES])
prose = st.lists(prose_words, min_size=1, max_size=30).map(" ".join)


def _embeddings(secret: str, client_id: str) -> list[str]:
    """The shapes a secret travels in, as a server or a library may echo them."""
    basic = basic_form(client_id, secret)
    return [
        secret,
        f"Authorization: Bearer {secret}",
        f"Authorization: Basic {basic}",
        basic,
        json.dumps({"access_token": secret, "token_type": "bearer"}),
        f"grant_type=client_credentials&client_secret={secret}",
        f"{{'refresh_token': '{secret}'}}",
        f"http://127.0.0.1:9/callback?code={secret}&state=x",
        f"code_verifier={secret}",
    ]


@settings(max_examples=200, deadline=None)
@given(secret=secrets_, client_id=client_ids, before=prose, after=prose)
def test_no_secret_is_ever_shown(secret: str, client_id: str, before: str, after: str) -> None:
    """Known values go whatever surrounds them; credential shapes go even when not known."""
    known = Scrubber([secret, basic_form(client_id, secret)])
    for embedded in _embeddings(secret, client_id):
        text = f"{before} {embedded} {after}"
        for scrubbed in (known(text), scrub(text, [secret, basic_form(client_id, secret)])):
            assert secret not in scrubbed, scrubbed
            assert basic_form(client_id, secret) not in scrubbed, scrubbed
            assert REDACTED in scrubbed


@settings(max_examples=200, deadline=None)
@given(secret=secrets_, client_id=client_ids, text=prose)
def test_shapes_alone_catch_unknown_credentials(secret: str, client_id: str, text: str) -> None:
    """A token the client never saw (a hostile server's echo) is scrubbed by its shape."""
    bare = {secret, basic_form(client_id, secret)}  # no shape to know them by: values only
    for embedded in (e for e in _embeddings(secret, client_id) if e not in bare):
        scrubbed = scrub(f"{text} {embedded}")
        assert secret not in scrubbed
        assert basic_form(client_id, secret) not in scrubbed


@settings(max_examples=300, deadline=None)
@given(text=prose, secret=secrets_)
def test_ordinary_text_is_never_eaten(text: str, secret: str) -> None:
    """Prose, even about tokens, secrets and Bearer auth, comes out exactly as it went in."""
    assert scrub(text) == text
    assert Scrubber([secret])(text) == text


def test_doctor_line_keeps_its_words() -> None:
    """The line that used to read 'got a token: *** credentials'."""
    line = "got a token: client credentials (client id sandbox-client) via http://127.0.0.1:8765"
    assert (
        Scrubber(["sandbox-secret", basic_form("sandbox-client", "sandbox-secret")])(line) == line
    )


def test_short_known_values_are_not_masked_everywhere() -> None:
    """A value too short to be a real secret would mask ordinary words: it is not registered."""
    assert Scrubber(["id"])("client id sandbox-client") == "client id sandbox-client"


def test_scrubbing_is_done_in_one_module() -> None:
    """No other module grows its own credential pattern (there were five, with two patterns)."""
    shape = re.compile(r"(?i)re\.compile\([^)]*(bearer|basic|access_token)")
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.name != "scrub.py"
        and "emulator" not in path.parts  # an independent implementation of the server side
        and shape.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
