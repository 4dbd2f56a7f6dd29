"""The openai SDK against a subscription's limit: it raises RateLimitError with the gateway's
retry-after, and with max_retries=1 it waits what it was told and gets through.

The subscription may make one call a minute (GATEWAY_KEY). The first call spends it; a second
at once is refused with about 60 s to wait; a call made 57 s after the first is refused with
about 3 s, which the SDK waits before its one retry, which then succeeds. Prints one JSON line.
"""

import json
import os
import time

from openai import AzureOpenAI, RateLimitError

endpoint = os.environ["GATEWAY_ENDPOINT"]
key = os.environ["GATEWAY_KEY"]


def client(retries):
    return AzureOpenAI(
        azure_endpoint=endpoint, api_key=key, api_version="2024-10-21", max_retries=retries
    )


def ask(c):
    return c.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hello"}], max_tokens=10
    )


first = time.monotonic()
ask(client(0))
try:
    ask(client(0))
    raise SystemExit("a second call within the minute was not refused")
except RateLimitError as e:
    refused_after = float(e.response.headers["retry-after"])
    refused_ms = int(e.response.headers["retry-after-ms"])
    code = e.body.get("code") if isinstance(e.body, dict) else None

time.sleep(max(0.0, 57 - (time.monotonic() - first)))
started = time.monotonic()
answer = ask(client(1))
waited = time.monotonic() - started

print(json.dumps({
    "refused_retry_after": refused_after,
    "refused_retry_after_ms": refused_ms,
    "refused_code": code,
    "waited": waited,
    "answered": answer.choices[0].message.content,
}))
