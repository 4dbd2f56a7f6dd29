"""The calls users make most, through the gateway with the official openai SDK, on every compiled
api-version that has their operations: none of them may be refused by the gateway.

Each case names the operations it needs (method and path below the version's mount, the
deployment segment left out); it runs on each version whose route table has them all, with the
`AzureOpenAI` client on dated versions and the plain `OpenAI` client on the v1 API. A case that
no compiled version can run is reported as such, never silently dropped.

Environment: GATEWAY_ENDPOINT, GATEWAY_KEY, and VERSIONS: a JSON list of
{"version", "mount", "operations": ["POST /chat/completions", ...]} from the gateway's route
table (the Rust test `tests/sdk_conformance.rs` writes it).

Prints one JSON line: {"ran": {version: [case, ...]}, "failed": [[version, case, error], ...],
"no_version": [case, ...]}. Exits 0 either way; the Rust test judges.
"""

import base64
import io
import json
import os
import struct
import sys
import traceback
import warnings

from openai import AzureOpenAI, OpenAI

warnings.filterwarnings("ignore", category=DeprecationWarning)

MESSAGES = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}, "sunny": {"type": "boolean"}},
    "required": ["city", "celsius", "sunny"],
    "additionalProperties": False,
}
# A 1x1 transparent PNG.
PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


# ----- chat completions -----

def chat_with_tools(client):
    auto = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=[WEATHER], tool_choice="auto")
    expect(auto.choices[0].message is not None, "an answer")
    forced = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}}, parallel_tool_calls=False,
    )
    calls = forced.choices[0].message.tool_calls
    expect(calls and calls[0].function.name == "get_weather", f"a call of get_weather, got {forced.choices[0].message}")
    expect(forced.choices[0].finish_reason == "tool_calls", forced.choices[0].finish_reason)


def tool_call_round_trip(client):
    first = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=[WEATHER], tool_choice="required")
    call = first.choices[0].message.tool_calls[0]
    # The assistant's turn as the SDK documents it: tool calls and no content at all.
    messages = MESSAGES + [
        {"role": "assistant", "tool_calls": [{"id": call.id, "type": "function",
                                              "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"city": "Paris", "celsius": 18})},
    ]
    second = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER])
    expect(second.choices[0].message.content, "a text answer after the tool's result")


def structured_outputs(client):
    answer = client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES,
        response_format={"type": "json_schema", "json_schema": {"name": "weather", "schema": WEATHER_SCHEMA, "strict": True}},
    )
    parsed = json.loads(answer.choices[0].message.content)
    expect(set(parsed) == {"city", "celsius", "sunny"}, f"the schema's fields, got {parsed}")


def image_parts(client):
    answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": PIXEL, "detail": "low"}},
    ]}])
    expect(answer.choices[0].message.content, "an answer")


def streaming_with_usage(client):
    text, usage = "", None
    for chunk in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                                 stream_options={"include_usage": True}):
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        usage = chunk.usage or usage
    expect(text and usage and usage.total_tokens > 0, f"text and usage, got {text!r} {usage}")


def max_completion_tokens(client):
    answer = client.chat.completions.create(model="o1", messages=[{"role": "user", "content": "Think."}],
                                            max_completion_tokens=200)
    expect(answer.usage.completion_tokens_details.reasoning_tokens > 0, f"reasoning tokens, got {answer.usage}")


def embeddings_dimensions_base64(client):
    answer = client.embeddings.create(model="text-embedding-3-small", input=["one", "two"], dimensions=256,
                                      encoding_format="base64")
    vector = answer.data[0].embedding
    if isinstance(vector, str):
        vector = struct.unpack(f"<{len(base64.b64decode(vector)) // 4}f", base64.b64decode(vector))
    expect(len(vector) == 256, f"256 dimensions, got {len(vector)}")


# ----- responses -----

def responses_with_tools(client):
    tool = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
            "parameters": WEATHER["function"]["parameters"], "strict": True}
    answer = client.responses.create(model="gpt-4o", input="What is the weather in Paris?", tools=[tool],
                                     tool_choice="required")
    calls = [item for item in answer.output if item.type == "function_call"]
    expect(calls and calls[0].name == "get_weather", f"a function call, got {answer.output}")


def responses_with_reasoning(client):
    answer = client.responses.create(model="o4-mini", input="Think briefly.", reasoning={"effort": "low"},
                                     max_output_tokens=300)
    expect(answer.usage.output_tokens_details.reasoning_tokens > 0, f"reasoning tokens, got {answer.usage}")


def responses_json_schema(client):
    answer = client.responses.create(model="gpt-4o", input="The weather in Paris, as JSON.", text={
        "format": {"type": "json_schema", "name": "weather", "schema": WEATHER_SCHEMA, "strict": True}})
    parsed = json.loads(answer.output_text)
    expect(set(parsed) == {"city", "celsius", "sunny"}, f"the schema's fields, got {parsed}")


def responses_streaming(client):
    kinds, text, completed = [], "", None
    for event in client.responses.create(model="gpt-4o", input="Say hello", stream=True):
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
        if event.type == "response.completed":
            completed = event.response
    expect(kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds)
    expect(text.startswith("Hello from") and completed.usage.total_tokens > 0, f"{text!r} {completed}")


# ----- stored objects -----

def assistants_threads_runs(client):
    assistant = client.beta.assistants.create(model="gpt-4o", name="weather", instructions="Answer briefly.",
                                              tools=[WEATHER])
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(thread_id=thread.id, role="user", content="Weather in Paris?")
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    expect(run.thread_id == thread.id, f"the run of the thread, got {run}")
    again = client.beta.threads.runs.retrieve(run_id=run.id, thread_id=thread.id)
    expect(again.id == run.id, "the same run")
    listed = client.beta.threads.messages.list(thread_id=thread.id)
    expect(len(listed.data) == 1, f"one message, got {listed.data}")
    both = client.beta.threads.create_and_run(assistant_id=assistant.id,
                                              thread={"messages": [{"role": "user", "content": "And in Rome?"}]})
    expect(both.thread_id and both.thread_id != thread.id, f"a new thread's run, got {both}")
    client.beta.assistants.delete(assistant.id)


def files(client):
    # The SDK's documented upload: no expires_after (the v1 spec requires it; see the overlay).
    uploaded = client.files.create(file=("notes.jsonl", io.BytesIO(b'{"prompt": "hi"}\n'), "application/jsonl"),
                                   purpose="assistants")
    expect(client.files.retrieve(uploaded.id).id == uploaded.id, "retrieve")
    expect(client.files.content(uploaded.id).read() == b'{"prompt": "hi"}\n', "content")
    expect(client.files.delete(uploaded.id).deleted, "delete")


def batches(client):
    source = client.files.create(file=("batch.jsonl", io.BytesIO(b"{}\n"), "application/jsonl"), purpose="batch")
    batch = client.batches.create(input_file_id=source.id, endpoint="/chat/completions", completion_window="24h")
    expect(client.batches.retrieve(batch.id).id == batch.id, "retrieve the batch")


CHAT = ["POST /chat/completions"]
RESPONSES = ["POST /responses"]
CASES = [
    ("chat_with_tools", CHAT, chat_with_tools),
    ("tool_call_round_trip", CHAT, tool_call_round_trip),
    ("structured_outputs", CHAT, structured_outputs),
    ("image_parts", CHAT, image_parts),
    ("streaming_with_usage", CHAT, streaming_with_usage),
    ("max_completion_tokens", CHAT, max_completion_tokens),
    ("embeddings_dimensions_base64", ["POST /embeddings"], embeddings_dimensions_base64),
    ("responses_with_tools", RESPONSES, responses_with_tools),
    ("responses_with_reasoning", RESPONSES, responses_with_reasoning),
    ("responses_json_schema", RESPONSES, responses_json_schema),
    ("responses_streaming", RESPONSES, responses_streaming),
    ("assistants_threads_runs", [
        "POST /assistants", "DELETE /assistants/{assistant_id}", "POST /threads",
        "POST /threads/{thread_id}/messages", "GET /threads/{thread_id}/messages",
        "POST /threads/{thread_id}/runs", "GET /threads/{thread_id}/runs/{run_id}", "POST /threads/runs",
    ], assistants_threads_runs),
    ("files", ["POST /files", "GET /files/{file_id}", "GET /files/{file_id}/content", "DELETE /files/{file_id}"], files),
    ("batches", ["POST /files", "POST /batches", "GET /batches/{batch_id}"], batches),
]


def client_for(endpoint, key, version):
    if version["mount"]:
        return OpenAI(base_url=f"{endpoint}/openai{version['mount']}/", api_key=key, max_retries=0, timeout=30)
    return AzureOpenAI(azure_endpoint=endpoint, api_key=key, api_version=version["version"], max_retries=0, timeout=30)


def main():
    endpoint = os.environ["GATEWAY_ENDPOINT"].rstrip("/")
    key = os.environ["GATEWAY_KEY"]
    versions = json.loads(os.environ["VERSIONS"])
    ran, failed, runnable = {}, [], set()
    for version in versions:
        client = client_for(endpoint, key, version)
        operations = set(version["operations"])
        ran[version["version"]] = []
        for name, needs, case in CASES:
            if not all(op in operations for op in needs):
                continue
            runnable.add(name)
            try:
                case(client)
                ran[version["version"]].append(name)
            except Exception as error:  # every failure is reported, then the next case runs
                detail = f"{type(error).__name__}: {error}"
                print(f"{version['version']} {name}: {detail}\n{traceback.format_exc()}", file=sys.stderr)
                failed.append([version["version"], name, detail])
    no_version = [name for name, _, _ in CASES if name not in runnable]
    print(json.dumps({"ran": ran, "failed": failed, "no_version": no_version}))


if __name__ == "__main__":
    main()
