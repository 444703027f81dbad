"""The tutorial-style script users copy today, made correct enough to compare: requests, no checks.

Token, then one create-call POST on behalf of the agent. No retries, no validation, no timeouts
handling: this is the baseline gcdial's extra safety is measured against.
"""

import os
import sys

import requests

base = os.environ["BENCH_BASE_URL"]
client_id = os.environ["BENCH_CLIENT_ID"]
secret = os.environ["BENCH_CLIENT_SECRET"]
agent_id, number = sys.argv[1], sys.argv[2]

token = requests.post(
    f"{base}/oauth/token",
    auth=(client_id, secret),
    data={"grant_type": "client_credentials"},
    timeout=30,
).json()["access_token"]
resp = requests.post(
    f"{base}/api/v2/conversations/calls/user/{agent_id}",
    headers={"Authorization": f"Bearer {token}"},
    json={"phoneNumber": number},
    timeout=30,
)
resp.raise_for_status()
print(resp.json()["id"])
