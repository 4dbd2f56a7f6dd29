"""Drives the gateway's v1 API with the official openai SDK's plain OpenAI client, as a new
application would: base_url=<gateway>/openai/v1, the subscription key as api_key (which the SDK
sends as `Authorization: Bearer`), the deployment as `model`.

Environment: GATEWAY_ENDPOINT (the gateway's origin) and GATEWAY_KEY (a subscription key).

Prints one JSON line describing what it saw; exits non-zero, with the reason, at the first
mismatch. The Rust test `tests/sdk_conformance.rs` starts the gateway and the simulated backends
and runs this next to `sdk_calls.py` (the AzureOpenAI client on the dated versions).
"""

import io
import json
import os
import sys

import httpx
import openai
from openai import OpenAI


def check(condition, message):
    if not condition:
        print(f"conformance failure: {message}", file=sys.stderr)
        sys.exit(1)


def main():
    endpoint = os.environ["GATEWAY_ENDPOINT"].rstrip("/")
    key = os.environ["GATEWAY_KEY"]
    client = OpenAI(base_url=f"{endpoint}/openai/v1/", api_key=key, max_retries=0, timeout=30)
    seen = {"sdk": openai.__version__, "regions": []}

    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}]
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=messages, max_tokens=50)
        chat = raw.parse()
        seen["regions"].append(raw.headers.get("x-ms-region"))
        check(chat.choices[0].message.content.startswith("Hello from"), f"chat content: {chat.choices[0].message.content!r}")
        check(chat.usage.total_tokens > 0, "chat usage")
        check(raw.headers.get("apim-request-id"), "apim-request-id header")

    text, usage, chunks = "", None, 0
    for chunk in client.chat.completions.create(model="gpt-4o", messages=messages, stream=True, stream_options={"include_usage": True}):
        chunks += 1
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    check(text.startswith("Hello from"), f"streamed text {text!r}")
    check(usage is not None and usage.total_tokens > 0, "the include_usage chunk")
    seen["stream_chunks"] = chunks

    try:
        for _ in client.chat.completions.create(model="cut-stream", messages=messages, stream=True):
            pass
        check(False, "a stream cut by the backend ended normally")
    except (openai.APIConnectionError, httpx.TransportError) as e:
        seen["cut_stream_raised"] = type(e).__name__

    embeddings = client.embeddings.create(model="text-embedding-3-small", input=["first text", "second text"])
    check(len(embeddings.data) == 2 and len(embeddings.data[0].embedding) > 100, "two embeddings")

    response = client.responses.create(model="gpt-4o", input="Say hello")
    check(response.output_text.startswith("Hello from"), f"responses output {response.output_text!r}")
    check(response.usage.total_tokens > 0, "responses usage")
    seen["response"] = response.id

    uploaded = client.files.create(
        file=("notes.jsonl", io.BytesIO(b'{"prompt": "hi"}\n'), "application/jsonl"),
        purpose="assistants",
        expires_after={"anchor": "created_at", "seconds": 86400},
    )
    check(uploaded.id.startswith("file-") and uploaded.bytes == 17, f"uploaded {uploaded}")
    check(client.files.retrieve(uploaded.id).filename == "notes.jsonl", "retrieve the file")
    check(client.files.content(uploaded.id).read() == b'{"prompt": "hi"}\n', "the file's content")
    check(any(f.id == uploaded.id for f in client.files.list()), "the file is listed")
    check(client.files.delete(uploaded.id).deleted, "delete the file")
    seen["file"] = uploaded.id

    try:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "robot", "content": "x"}])
        check(False, "an invalid role was accepted")
    except openai.BadRequestError as e:
        check(e.status_code == 400 and "messages[0]" in str(e), f"bad request error: {e}")
    try:
        OpenAI(base_url=f"{endpoint}/openai/v1/", api_key="wrong", max_retries=0).embeddings.create(model="e", input="x")
        check(False, "a wrong key was accepted")
    except openai.AuthenticationError as e:
        check(e.status_code == 401, f"auth error: {e}")
    try:
        client.chat.completions.create(model="rate-limited", messages=messages)
        check(False, "the rate-limited deployment answered")
    except openai.RateLimitError as e:
        check(e.response.headers.get("retry-after") == "7", "retry-after passed through")

    print(json.dumps(seen))


if __name__ == "__main__":
    main()
