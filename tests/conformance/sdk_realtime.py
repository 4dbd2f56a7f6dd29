"""Drives the gateway's realtime WebSocket with the official openai SDK's realtime client
(`openai[realtime]`), as a voice application would:

- the plain OpenAI client on the v1 API: `client.realtime.connect(model=...)` at
  base_url=<gateway>/openai/v1, the subscription key as api_key (sent as `Authorization: Bearer`);
- the AzureOpenAI client on a dated preview: api-version 2025-04-01-preview, the key in `api-key`,
  `websocket_base_url` pointed at the gateway (the client would otherwise say wss://);
- an ephemeral secret minted through the gateway with `client.realtime.client_secrets.create`,
  then used as the api_key of a session, as a browser would use it;
- with LIMITED_KEY set: that subscription's session, whose `response.create` is refused with an
  `error` event once its minute's tokens are spent, and whose next session is refused with 429.

Each session updates its session, sends text and audio, and asks for three responses; the usage
of each `response.done` is added up and printed, with the regions the answers came from.

Environment: GATEWAY_ENDPOINT (the gateway's origin), GATEWAY_KEY (a subscription key),
LIMITED_KEY (a subscription with a small token limit). Prints one JSON line; exits non-zero,
with the reason, at the first mismatch. Run by `tests/sdk_conformance.rs`.
"""

import base64
import json
import os
import sys

import openai
from openai import AzureOpenAI, OpenAI


def check(condition, message):
    if not condition:
        print(f"conformance failure: {message}", file=sys.stderr)
        sys.exit(1)


# 0.1 s of silence, pcm16 at 24 kHz.
AUDIO = base64.b64encode(bytes(4800)).decode()


def converse(connection, turns, session):
    """A session's conversation: what its responses said and spent."""
    seen = {"responses": 0, "input_tokens": 0, "output_tokens": 0, "audio_deltas": 0, "regions": [], "errors": []}
    created = connection.recv()
    check(created.type == "session.created", f"first event: {created.type}")
    connection.session.update(session=session)
    updated = connection.recv()
    check(updated.type == "session.updated", f"after session.update: {updated.type}")
    for turn in range(turns):
        connection.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"Turn {turn}: what now?"}]}
        )
        connection.input_audio_buffer.append(audio=AUDIO)
        connection.input_audio_buffer.commit()
        connection.response.create(event_id=f"turn{turn}")
        transcript = ""
        for event in connection:
            if event.type == "error":
                seen["errors"].append(event.error.code)
                break
            if event.type in ("response.output_audio.delta", "response.audio.delta"):
                seen["audio_deltas"] += 1
            if event.type.endswith("transcript.delta") or event.type.endswith("text.delta"):
                transcript += event.delta
            if event.type == "response.done":
                usage = event.response.usage
                seen["responses"] += 1
                seen["input_tokens"] += usage.input_tokens
                seen["output_tokens"] += usage.output_tokens
                seen["regions"].append(transcript.removeprefix("Hello from ").rstrip("."))
                break
    return seen


def main():
    endpoint = os.environ["GATEWAY_ENDPOINT"].rstrip("/")
    key = os.environ["GATEWAY_KEY"]
    ws_endpoint = endpoint.replace("http://", "ws://", 1)
    summary = {"sdk": openai.__version__}

    v1 = OpenAI(base_url=f"{endpoint}/openai/v1", api_key=key, max_retries=0, timeout=30)
    with v1.realtime.connect(model="gpt-realtime") as connection:
        summary["v1"] = converse(connection, 3, {"type": "realtime", "instructions": "Be brief."})
    check(summary["v1"]["responses"] == 3, f"v1 responses: {summary['v1']}")
    check(summary["v1"]["audio_deltas"] >= 3, f"v1 audio: {summary['v1']}")

    azure = AzureOpenAI(
        azure_endpoint=endpoint,
        api_key=key,
        api_version="2025-04-01-preview",
        websocket_base_url=f"{ws_endpoint}/openai",
        max_retries=0,
    )
    with azure.realtime.connect(model="gpt-4o-realtime-preview") as connection:
        summary["azure"] = converse(connection, 3, {"instructions": "Be brief.", "modalities": ["text", "audio"]})
    check(summary["azure"]["responses"] == 3, f"azure responses: {summary['azure']}")

    secret = v1.realtime.client_secrets.create(session={"type": "realtime", "model": "gpt-realtime"})
    check(secret.value, "a minted secret")
    browser = OpenAI(base_url=f"{endpoint}/openai/v1", api_key=secret.value, max_retries=0)
    with browser.realtime.connect(model="gpt-realtime") as connection:
        summary["secret"] = converse(connection, 1, {"type": "realtime"})
    check(summary["secret"]["responses"] == 1, f"secret session: {summary['secret']}")

    limited_key = os.environ.get("LIMITED_KEY")
    if limited_key:
        limited = OpenAI(base_url=f"{endpoint}/openai/v1", api_key=limited_key, max_retries=0)
        with limited.realtime.connect(model="gpt-realtime") as connection:
            summary["limited"] = converse(connection, 3, {"type": "realtime"})
        check(summary["limited"]["errors"] == ["rate_limit_exceeded"], f"limited session: {summary['limited']}")
        try:
            with limited.realtime.connect(model="gpt-realtime") as connection:
                connection.recv()
            summary["limited"]["reopened"] = "opened"
        except Exception as refused:  # websockets' InvalidStatus carries the HTTP answer
            response = getattr(refused, "response", None)
            summary["limited"]["reopened"] = getattr(response, "status_code", repr(refused))
        check(summary["limited"]["reopened"] == 429, f"reopened over the limit: {summary['limited']}")

    print(json.dumps(summary))


if __name__ == "__main__":
    main()
