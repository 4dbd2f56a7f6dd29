"""The openai SDK with an Entra ID token instead of a key: AzureOpenAI's azure_ad_token_provider
returns a token the test signed (GATEWAY_TOKEN), which the SDK sends as Authorization: Bearer.
A chat call, a streamed one, and a provider returning a token the gateway refuses (GATEWAY_BAD_TOKEN),
which must raise AuthenticationError. Prints one JSON line.
"""

import json
import os

from openai import AuthenticationError, AzureOpenAI

endpoint = os.environ["GATEWAY_ENDPOINT"]


def client(token):
    return AzureOpenAI(
        azure_endpoint=endpoint,
        azure_ad_token_provider=lambda: token,
        api_version="2024-10-21",
        max_retries=0,
    )


good = client(os.environ["GATEWAY_TOKEN"])
chat = good.chat.completions.create(
    model="gpt-4o", messages=[{"role": "user", "content": "Hello"}], max_tokens=10
)
pieces = []
for chunk in good.chat.completions.create(
    model="gpt-4o", messages=[{"role": "user", "content": "Hello"}], stream=True
):
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)

refused = None
try:
    client(os.environ["GATEWAY_BAD_TOKEN"]).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Hello"}]
    )
except AuthenticationError as e:
    refused = {"status": e.status_code, "code": (e.body or {}).get("code")}

print(
    json.dumps(
        {
            "chat": chat.choices[0].message.content,
            "usage": chat.usage.total_tokens,
            "streamed": "".join(pieces),
            "refused": refused,
        }
    )
)
