"""The same call through the official Genesys SDK (PureCloudPlatformClientV2)."""

import os
import sys

import PureCloudPlatformClientV2 as genesys

base = os.environ["BENCH_BASE_URL"]
agent_id, number = sys.argv[1], sys.argv[2]

genesys.configuration.host = base
api_client = genesys.api_client.ApiClient().get_client_credentials_token(
    os.environ["BENCH_CLIENT_ID"], os.environ["BENCH_CLIENT_SECRET"]
)
calls = genesys.ConversationsApi(api_client)
body = genesys.CreateCallRequest()
body.phone_number = number
created = calls.post_conversations_calls_user_user_id(agent_id, body)
print(created.id)
