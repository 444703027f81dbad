import os
import stat
from pathlib import Path

import pytest

from gcdial.config import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_TIMEOUT_S,
    InsecureSettingWarning,
    Settings,
    default_config_dir,
    load_settings,
    parse_env_file,
)
from gcdial.errors import ConfigError

SECRET = "s3cr3t-VALUE-never-shown"


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def load(tmp_path: Path, environ: dict[str, str] | None = None, **kw: object) -> Settings:
    """load_settings with everything pointed inside tmp_path (no real env, cwd or home)."""
    env = {"HOME": str(tmp_path / "home"), **(environ or {})}
    kw.setdefault("cwd", tmp_path / "cwd")
    (tmp_path / "cwd").mkdir(exist_ok=True)
    return load_settings(environ=env, **kw)  # type: ignore[arg-type]


def config_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / ".config" / "gcdial" / "config.toml"


def test_nothing_set_gives_defaults(tmp_path: Path) -> None:
    s = load(tmp_path)
    assert s.client_id is None
    assert s.client_secret is None
    assert s.api_base_url is None
    assert s.call_route == "auto"
    assert s.default_country == "US"
    assert s.timeout_s == DEFAULT_TIMEOUT_S
    assert s.connect_timeout_s == DEFAULT_CONNECT_TIMEOUT_S
    assert s.verify_tls is True
    assert s.profile is None
    assert s.config_dir == tmp_path / "home" / ".config" / "gcdial"
    with pytest.raises(ConfigError, match="GENESYSCLOUD_REGION"):
        s.endpoints()


def test_ecosystem_environment_variables(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        {
            "GENESYSCLOUD_OAUTHCLIENT_ID": "cid",
            "GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET,
            "GENESYSCLOUD_REGION": "mypurecloud.ie",
            "GCDIAL_CALL_ROUTE": "on-behalf",
            "GCDIAL_DEFAULT_COUNTRY": "gb",
            "GCDIAL_TIMEOUT_S": "12.5",
            "GCDIAL_CONNECT_TIMEOUT_S": "2",
            "GCDIAL_LOGIN_PORT": "8085",
            "GCDIAL_LOGIN_CLIENT_ID": "pkce",
        },
    )
    assert s.client_id == "cid"
    assert s.client_secret is not None
    assert s.client_secret.get_secret_value() == SECRET
    assert s.region == "eu_west_1"
    assert s.endpoints().login_base_url == "https://login.mypurecloud.ie"
    assert s.call_route == "on_behalf"
    assert s.default_country == "GB"
    assert s.timeout_s == 12.5
    assert s.connect_timeout_s == 2.0
    assert s.login_port == 8085
    assert s.login_client_id == "pkce"
    assert s.source_of("region") == "environment variable GENESYSCLOUD_REGION"
    assert s.source_of("client_secret") == "environment variable GENESYSCLOUD_OAUTHCLIENT_SECRET"
    assert SECRET not in repr(s)
    assert SECRET not in str(s)


def test_empty_environment_values_count_as_unset(tmp_path: Path) -> None:
    s = load(tmp_path, {"GENESYSCLOUD_REGION": "  ", "GENESYSCLOUD_OAUTHCLIENT_ID": ""})
    assert s.region is None
    assert s.client_id is None


def test_xdg_config_home(tmp_path: Path) -> None:
    assert default_config_dir({"XDG_CONFIG_HOME": "/x/cfg", "HOME": "/h"}) == Path("/x/cfg/gcdial")
    assert default_config_dir({"XDG_CONFIG_HOME": "rel", "HOME": "/h"}) == Path("/h/.config/gcdial")
    write(
        tmp_path / "xdg" / "gcdial" / "config.toml",
        '[profiles.default]\nregion = "us_east_1"\n',
    )
    s = load(tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert s.api_base_url == "https://api.mypurecloud.com"
    assert s.profile == "default"


PROFILES = """
default_profile = "prod"

[profiles.prod]
region = "eu_west_1"
client_id = "prod-id"
client_secret_file = "prod.secret"
call_route = "on_behalf"
default_country = "IE"
timeout_s = 9

[profiles.sandbox]
base_url = "http://127.0.0.1:8765"
client_id = "sandbox-client"
client_secret = "sandbox-secret"
verify_tls = true
"""


def test_profile_file_default_profile_and_secret_file(tmp_path: Path) -> None:
    cfg = write(config_path(tmp_path), PROFILES)
    write(cfg.parent / "prod.secret", SECRET + "\n")
    s = load(tmp_path)
    assert s.profile == "prod"
    assert s.client_id == "prod-id"
    assert s.client_secret is not None
    assert s.client_secret.get_secret_value() == SECRET
    assert s.call_route == "on_behalf"
    assert s.default_country == "IE"
    assert s.timeout_s == 9.0
    assert s.login_base_url == "https://login.mypurecloud.ie"
    assert "client_secret_file" in s.source_of("client_secret")
    assert "profile 'prod'" in s.source_of("region")


def test_profile_chosen_by_argument_env_and_dotenv(tmp_path: Path) -> None:
    write(config_path(tmp_path), PROFILES)
    write(config_path(tmp_path).parent / "prod.secret", SECRET)
    assert load(tmp_path, profile="sandbox").api_base_url == "http://127.0.0.1:8765"
    assert load(tmp_path, {"GCDIAL_PROFILE": "sandbox"}).client_id == "sandbox-client"
    write(tmp_path / "cwd" / ".env", "GCDIAL_PROFILE=sandbox\n")
    s = load(tmp_path)
    assert s.profile == "sandbox"
    assert s.login_base_url == "http://127.0.0.1:8765"
    # the argument beats the environment
    assert load(tmp_path, {"GCDIAL_PROFILE": "prod"}, profile="sandbox").profile == "sandbox"


def test_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    write(config_path(tmp_path), PROFILES)
    with pytest.raises(ConfigError) as info:
        load(tmp_path, profile="staging")
    text = str(info.value)
    assert "staging" in text
    assert "prod, sandbox" in text
    assert str(config_path(tmp_path)) in text


def test_profile_asked_without_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no config file at .*config\.toml") as info:
        load(tmp_path, {"GCDIAL_PROFILE": "prod"})
    assert "GCDIAL_PROFILE" in str(info.value)


def test_precedence_flags_env_dotenv_profile(tmp_path: Path) -> None:
    write(
        config_path(tmp_path),
        '[profiles.default]\nregion = "us_east_1"\nclient_id = "from-profile"\n'
        'call_route = "user"\ndefault_country = "FR"\ntimeout_s = 1\n',
    )
    write(
        tmp_path / "cwd" / ".env",
        "GENESYSCLOUD_REGION=eu_west_1\nGENESYSCLOUD_OAUTHCLIENT_ID=from-dotenv\n"
        "GCDIAL_DEFAULT_COUNTRY=DE\n",
    )
    env = {"GENESYSCLOUD_REGION": "ap_northeast_1", "GCDIAL_DEFAULT_COUNTRY": "JP"}
    s = load(tmp_path, env, overrides={"region": "us_west_2", "client_id": None})
    assert s.region == "us_west_2"  # flag beats everything
    assert s.source_of("region") == "argument region"
    assert s.default_country == "JP"  # env beats .env
    assert s.client_id == "from-dotenv"  # .env beats profile; a None override is ignored
    assert s.call_route == "user"  # only the profile sets it
    assert s.timeout_s == 1.0
    assert load(tmp_path, env).region == "ap_northeast_1"
    assert load(tmp_path).region == "eu_west_1"
    assert load(tmp_path, env_file=None).region == "us_east_1"


def test_base_url_and_region_share_one_slot(tmp_path: Path) -> None:
    write(config_path(tmp_path), '[profiles.default]\nbase_url = "http://127.0.0.1:9"\n')
    # the environment's region beats the profile's base URL
    s = load(tmp_path, {"GENESYSCLOUD_REGION": "eu_west_1"})
    assert s.api_base_url == "https://api.mypurecloud.ie"
    # within one layer, the base URL is the more specific and wins
    s = load(tmp_path, {"GENESYSCLOUD_REGION": "eu_west_1", "GCDIAL_BASE_URL": "http://[::1]:1"})
    assert s.api_base_url == "http://[::1]:1"
    assert s.login_base_url == "http://[::1]:1"
    assert s.region is None


def test_sandbox_flags_drop_a_user_token_from_the_environment(tmp_path: Path) -> None:
    env = {"GENESYSCLOUD_ACCESS_TOKEN": "user-token-xyz", "GENESYSCLOUD_REGION": "eu_west_1"}
    s = load(
        tmp_path,
        env,
        overrides={"base_url": "http://127.0.0.1:1", "client_id": "c", "client_secret": "x"},
    )
    assert s.access_token is None
    assert s.api_base_url == "http://127.0.0.1:1"
    # same layer: both are kept (auth prefers the explicit token)
    s = load(tmp_path, {**env, "GENESYSCLOUD_OAUTHCLIENT_SECRET": "x"})
    assert s.access_token is not None
    assert s.client_secret is not None


def test_access_token_from_environment(tmp_path: Path) -> None:
    s = load(tmp_path, {"GENESYSCLOUD_ACCESS_TOKEN": " tok-123 "})
    assert s.access_token is not None
    assert s.access_token.get_secret_value() == "tok-123"
    assert "tok-123" not in repr(s)


def test_secret_and_secret_file_in_one_layer_is_ambiguous(tmp_path: Path) -> None:
    secret_file = write(tmp_path / "s.txt", SECRET)
    env = {"GENESYSCLOUD_OAUTHCLIENT_SECRET": SECRET, "GCDIAL_CLIENT_SECRET_FILE": str(secret_file)}
    with pytest.raises(ConfigError, match="Keep only one") as info:
        load(tmp_path, env)
    assert SECRET not in str(info.value)


def test_secret_file_from_environment_relative_to_cwd_and_tilde(tmp_path: Path) -> None:
    write(tmp_path / "cwd" / "my.secret", "  " + SECRET + "\n\n")
    s = load(tmp_path, {"GCDIAL_CLIENT_SECRET_FILE": "my.secret"})
    assert s.client_secret is not None
    assert s.client_secret.get_secret_value() == SECRET
    write(tmp_path / "home" / "k", SECRET)
    s = load(tmp_path, {"GCDIAL_CLIENT_SECRET_FILE": "~/k"})
    assert s.client_secret is not None
    assert s.client_secret.get_secret_value() == SECRET


@pytest.mark.parametrize(
    ("content", "mode", "match"),
    [
        (None, 0o600, "does not exist"),
        ("", 0o600, "is empty"),
        (SECRET, 0o644, "chmod 600"),
        (SECRET, 0o640, "chmod 600"),
    ],
)
def test_bad_secret_files(tmp_path: Path, content: str | None, mode: int, match: str) -> None:
    path = tmp_path / "cwd" / "x.secret"
    if content is not None:
        write(path, content, mode)
    with pytest.raises(ConfigError, match=match) as info:
        load(tmp_path, {"GCDIAL_CLIENT_SECRET_FILE": str(path)})
    assert "GCDIAL_CLIENT_SECRET_FILE" in str(info.value) or str(path) in str(info.value)
    assert SECRET not in str(info.value)


def test_world_readable_config_file_without_secrets_warns(tmp_path: Path) -> None:
    write(config_path(tmp_path), '[profiles.default]\nregion = "eu_west_1"\n', 0o644)
    with pytest.warns(InsecureSettingWarning, match="chmod 600"):
        s = load(tmp_path)
    assert s.region == "eu_west_1"


def test_world_readable_config_file_with_a_secret_is_refused(tmp_path: Path) -> None:
    write(config_path(tmp_path), PROFILES, 0o604)
    with pytest.raises(ConfigError, match="can be read by other users") as info:
        load(tmp_path, profile="sandbox")
    assert "sandbox-secret" not in str(info.value)


def test_group_readable_dotenv_with_a_secret_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "cwd" / ".env", f"GENESYSCLOUD_OAUTHCLIENT_SECRET={SECRET}\n", 0o640)
    with pytest.raises(ConfigError, match=r"\.env.*chmod 600") as info:
        load(tmp_path)
    assert SECRET not in str(info.value)
    (tmp_path / "cwd" / ".env").chmod(0o600)
    s = load(tmp_path)
    assert s.client_secret is not None


def test_readable_dotenv_without_secrets_is_fine(tmp_path: Path) -> None:
    write(tmp_path / "cwd" / ".env", "GENESYSCLOUD_REGION=eu_west_1\n", 0o644)
    assert load(tmp_path).region == "eu_west_1"


@pytest.mark.parametrize(
    ("toml", "match"),
    [
        ("[profiles.default\nregion = 1", "not valid TOML"),
        ('region = "eu_west_1"\n', "unknown top-level keys: region"),
        ('[profiles.default]\nregoin = "eu_west_1"\n', "Unknown setting 'regoin'"),
        ("[profiles.default]\nclient_id = 5\n", "must be text"),
        ('[profiles.default]\ntimeout_s = "fast"\n', "not a positive number"),
        ("[profiles.default]\ntimeout_s = -1\n", "not a positive number"),
        ("[profiles.default]\nverify_tls = 3\n", "not true or false"),
        ('[profiles.default]\ncall_route = "fax"\n', "auto, on_behalf, user"),
        ('[profiles.default]\ndefault_country = "XX"\n', "not a known country code"),
        ("[profiles.default]\nlogin_port = 70000\n", "not a TCP port"),
        ('[profiles.default]\nregion = "eu_west_9"\n', "Unknown region"),
        ('[profiles.default]\nbase_url = "http://10.1.1.1"\n', "Plain http://"),
        ("profiles = 3\n", "must be tables"),
    ],
)
def test_config_file_problems_name_the_file(tmp_path: Path, toml: str, match: str) -> None:
    cfg = write(config_path(tmp_path), toml)
    with pytest.raises(ConfigError, match=match) as info:
        load(tmp_path)
    assert str(cfg) in str(info.value)


@pytest.mark.parametrize(
    ("var", "value", "match"),
    [
        ("GCDIAL_TIMEOUT_S", "nan", "positive number"),
        ("GCDIAL_TIMEOUT_S", "0", "positive number"),
        ("GCDIAL_VERIFY_TLS", "maybe", "true or false"),
        ("GCDIAL_LOGIN_PORT", "http", "TCP port"),
        ("GENESYSCLOUD_REGION", "mars_north_1", "Unknown region"),
        ("GCDIAL_CALL_ROUTE", "fax", "on_behalf"),
    ],
)
def test_environment_problems_name_the_variable(
    tmp_path: Path, var: str, value: str, match: str
) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        load(tmp_path, {var: value})
    assert var in str(info.value)


def test_verify_tls_off_warns(tmp_path: Path) -> None:
    with pytest.warns(InsecureSettingWarning, match="GCDIAL_VERIFY_TLS"):
        s = load(tmp_path, {"GCDIAL_VERIFY_TLS": "false"})
    assert s.verify_tls is False
    with pytest.warns(InsecureSettingWarning):
        Settings(verify_tls=False)


def test_overrides_reject_unknown_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Unknown setting 'secret'"):
        load(tmp_path, overrides={"secret": "x"})


def test_empty_secret_override_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"client secret .*is empty"):
        load(tmp_path, overrides={"client_secret": " "})


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    cfg = write(tmp_path / "elsewhere.toml", '[profiles.default]\nregion = "eu_west_2"\n')
    assert load(tmp_path, {"GCDIAL_CONFIG_FILE": str(cfg)}).region == "eu_west_2"
    assert load(tmp_path, config_file=cfg).region == "eu_west_2"
    assert load(tmp_path, {"GCDIAL_CONFIG_FILE": str(cfg)}, config_file=None).region is None


def test_settings_built_directly_resolve_their_region() -> None:
    s = Settings(region="eu-central-1")
    assert s.api_base_url == "https://api.mypurecloud.de"
    s = Settings(api_base_url="http://127.0.0.1:5/")
    assert s.login_base_url == "http://127.0.0.1:5"
    s = Settings(api_base_url="https://api.x.example", login_base_url="https://login.y.example/")
    assert s.login_base_url == "https://login.y.example"
    with pytest.raises(ConfigError, match="Plain http"):
        Settings(api_base_url="http://example.com")
    with pytest.raises(ConfigError, match="country"):
        Settings(default_country="ZZ")


def test_parse_env_file_forms() -> None:
    text = (
        "# comment\n\nexport A=1\nB = two words # trailing\nC='single # kept'\n"
        'D="dq \\"x\\" y"\nE=\nF=a#b\n'
    )
    assert parse_env_file(text) == {
        "A": "1",
        "B": "two words",
        "C": "single # kept",
        "D": 'dq "x" y',
        "E": "",
        "F": "a#b",
    }


@pytest.mark.parametrize("line", ["not a pair", "X='unterminated", 'Y="a" trailing', "1A=b"])
def test_parse_env_file_names_the_line_not_its_content(line: str) -> None:
    with pytest.raises(ConfigError, match="line 2") as info:
        parse_env_file(f"OK=1\n{line}\n", path="/p/.env")
    assert line not in str(info.value)
    assert "/p/.env" in str(info.value)


def test_modes_are_real_posix_modes(tmp_path: Path) -> None:
    # guard against a umask or filesystem that would make the permission tests vacuous
    p = write(tmp_path / "f", "x", 0o644)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o644
