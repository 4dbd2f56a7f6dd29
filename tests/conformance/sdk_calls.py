"""Drives the gateway with the official openai SDK's AzureOpenAI client, as an application would.

Environment: GATEWAY_ENDPOINT (the gateway, as azure_endpoint), GATEWAY_KEY (a subscription key),
API_VERSION, and ASSISTANTS=1 where the api-version has the Assistants API.

Prints one JSON line describing what it saw; exits non-zero, with the reason, at the first
mismatch. The Rust test `tests/sdk_conformance.rs` starts the gateway and the simulated backends
and runs this once per api-version.
"""

import io
import json
import os
import struct
import sys
import warnings

import httpx
import openai
from openai import AzureOpenAI

warnings.filterwarnings("ignore", category=DeprecationWarning)


def check(condition, message):
    if not condition:
        print(f"conformance failure: {message}", file=sys.stderr)
        sys.exit(1)


def tiny_wav():
    """A tenth of a second of silence as a valid WAV file."""
    samples = b"\x00\x00" * 1600
    header = b"RIFF" + struct.pack("<I", 36 + len(samples)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    return header + b"data" + struct.pack("<I", len(samples)) + samples


def main():
    endpoint = os.environ["GATEWAY_ENDPOINT"]
    key = os.environ["GATEWAY_KEY"]
    version = os.environ["API_VERSION"]
    client = AzureOpenAI(azure_endpoint=endpoint, api_key=key, api_version=version, max_retries=0, timeout=30)
    seen = {"api_version": version, "sdk": openai.__version__, "regions": []}

    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello"}]
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=messages, temperature=0.2, max_tokens=50)
        chat = raw.parse()
        seen["regions"].append(raw.headers.get("x-ms-region"))
        check(chat.choices[0].message.role == "assistant", f"chat role: {chat}")
        check(chat.choices[0].message.content.startswith("Hello from"), f"chat content: {chat.choices[0].message.content!r}")
        check(chat.usage.total_tokens > 0, "chat usage")
        check(raw.headers.get("apim-request-id"), "apim-request-id header")

    text, usage, chunks = "", None, 0
    stream = client.chat.completions.create(model="gpt-4o", messages=messages, stream=True, stream_options={"include_usage": True})
    for chunk in stream:
        chunks += 1
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    check(text.startswith("Hello from"), f"streamed text {text!r}")
    check(usage is not None and usage.total_tokens > 0, "the include_usage chunk")
    seen["stream_chunks"] = chunks

    # A backend that dies half-way through a stream: the SDK must fail, not hand back part of a
    # completion as if it were all of it (the gateway fails the client's response in turn).
    received = ""
    try:
        for chunk in client.chat.completions.create(model="cut-stream", messages=messages, stream=True):
            if chunk.choices:
                received += chunk.choices[0].delta.content or ""
        check(False, f"a stream cut by the backend ended normally after {received!r}")
    except (openai.APIConnectionError, httpx.TransportError) as e:
        # Mid-stream, the SDK lets httpx's own error through (an incomplete chunked read).
        seen["cut_stream_raised"] = type(e).__name__

    embeddings = client.embeddings.create(model="text-embedding-3-small", input=["first text", "second text"])
    check(len(embeddings.data) == 2 and len(embeddings.data[0].embedding) > 100, "two embeddings")
    check(embeddings.data[0].embedding != embeddings.data[1].embedding, "distinct embeddings")

    transcript = client.audio.transcriptions.create(model="whisper", file=("clip.wav", io.BytesIO(tiny_wav()), "audio/wav"))
    check(transcript.text.startswith("Simulated transcript"), f"transcript {transcript.text!r}")
    verbose = client.audio.transcriptions.create(model="whisper", file=("clip.wav", tiny_wav(), "audio/wav"), response_format="verbose_json")
    check(verbose.duration > 0, "verbose transcript")

    image = client.images.generate(model="dall-e-3", prompt="A lighthouse at dusk", n=1, size="1024x1024")
    check(image.data[0].url.startswith("https://"), f"image url {image.data[0].url!r}")

    if os.environ.get("ASSISTANTS") == "1":
        assistant = client.beta.assistants.create(model="gpt-4o", name="helper", instructions="Answer briefly.")
        check(assistant.id.startswith("asst_") and assistant.name == "helper", f"assistant {assistant}")
        again = client.beta.assistants.retrieve(assistant.id)
        check(again.id == assistant.id, "retrieve the same assistant")
        deleted = client.beta.assistants.delete(assistant.id)
        check(deleted.deleted, "delete the assistant")
        seen["assistant"] = assistant.id

    # The gateway's own errors reach the SDK as the exceptions an application handles.
    try:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "robot", "content": "x"}])
        check(False, "an invalid role was accepted")
    except openai.BadRequestError as e:
        check(e.status_code == 400 and "messages[0].role" in str(e), f"bad request error: {e}")
    try:
        AzureOpenAI(azure_endpoint=endpoint, api_key="wrong", api_version=version, max_retries=0).embeddings.create(model="e", input="x")
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
