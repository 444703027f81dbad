"""Constants shared by the client and the emulator: names from the wire contract, no logic."""

from typing import Final

CORRELATION_HEADER: Final = "ININ-Correlation-Id"
RATELIMIT_COUNT_HEADER: Final = "inin-ratelimit-count"
RATELIMIT_ALLOWED_HEADER: Final = "inin-ratelimit-allowed"
RATELIMIT_RESET_HEADER: Final = "inin-ratelimit-reset"
RETRY_AFTER_HEADER: Final = "Retry-After"

DEFAULT_RATE_LIMIT_PER_MINUTE: Final = 300
NOTIFICATION_CHANNEL_LIMIT: Final = 20

HEARTBEAT_TOPIC: Final = "channel.metadata"
SOCKET_CLOSING_TOPIC: Final = "v2.system.socket_closing"

# Region name -> domain, as the official SDKs name them.
REGION_DOMAINS: Final[dict[str, str]] = {
    "us_east_1": "mypurecloud.com",
    "us_east_2": "use2.us-gov-pure.cloud",
    "us_west_2": "usw2.pure.cloud",
    "ca_central_1": "cac1.pure.cloud",
    "sa_east_1": "sae1.pure.cloud",
    "mx_central_1": "mxc1.pure.cloud",
    "eu_west_1": "mypurecloud.ie",
    "eu_west_2": "euw2.pure.cloud",
    "eu_central_1": "mypurecloud.de",
    "eu_central_2": "euc2.pure.cloud",
    "me_central_1": "mec1.pure.cloud",
    "ap_south_1": "aps1.pure.cloud",
    "ap_southeast_1": "apse1.pure.cloud",
    "ap_southeast_2": "mypurecloud.com.au",
    "ap_northeast_1": "mypurecloud.jp",
    "ap_northeast_2": "apne2.pure.cloud",
    "ap_northeast_3": "apne3.pure.cloud",
    "eusc_de_east_1": "edee1.eusc-pure.cloud",
}

DEFAULT_RESOLVE_TIMEOUT_S: Final = 180.0
"""How long a dial waits for an ambiguous create to resolve (more than the default settle time)."""

DEFAULT_WRAPUP_TIMEOUT_S: Final = 300.0
"""How long after a call ends its wrap-up is waited for (then conversation details are asked once):
an agent who never wraps up must not hold a follower forever."""
WRAPUP_CODES_PATH: Final = "/api/v2/routing/wrapupcodes"
