"""Stored objects through the gateway with the official openai SDK's plain OpenAI client on the
v1 API, as an application uses them: responses created, retrieved, their input items listed and
deleted; a conversation chained by previous_response_id; a background response polled to
completion; a file uploaded, used as an input_file, deleted. Or (`list`) the caller's vector
stores and files, paged by the SDK's own auto-pagination.

Environment: GATEWAY_ENDPOINT (the gateway's origin), GATEWAY_KEY (a subscription key) and, for
`list`, PAGE (the page size asked for).

Prints one JSON line describing what it saw; exits non-zero, with the reason, at the first
mismatch. `tests/stored_objects.rs` starts the gateway and two simulated backends that both
serve the deployment, so creates rotate and every follow-up must find its holder.
"""

import io
import json
import os
import sys
import time

from openai import OpenAI


def check(condition, message):
    if not condition:
        print(f"stored objects failure: {message}", file=sys.stderr)
        sys.exit(1)


def backend(raw):
    return raw.headers.get("x-aoai-gateway-backend")


def flows(client):
    seen = {"created_on": [], "turns_on": []}

    created = []
    for n in range(20):
        raw = client.responses.with_raw_response.create(model="gpt-4o", input=f"Question {n}")
        response = raw.parse()
        seen["created_on"].append(backend(raw))
        created.append(response.id)
    for rid in created:
        raw = client.responses.with_raw_response.retrieve(rid)
        check(raw.parse().id == rid, f"retrieve {rid}")
        items = list(client.responses.input_items.list(rid))
        check(len(items) == 1 and items[0].type == "message", f"input items of {rid}: {items}")
        check(client.responses.delete(rid) is None, f"delete {rid}")
    # Deleted: gone, and the gateway says so without asking anyone.
    try:
        client.responses.retrieve(created[0])
        check(False, "a deleted response is still there")
    except Exception as e:  # noqa: BLE001 - the SDK's NotFoundError
        check(getattr(e, "status_code", None) == 404, f"a deleted response: {e!r}")

    previous = None
    for turn in range(5):
        raw = client.responses.with_raw_response.create(
            model="gpt-4o", input=f"Turn {turn}", previous_response_id=previous
        )
        previous = raw.parse().id
        seen["turns_on"].append(backend(raw))

    queued = client.responses.create(model="gpt-4o", input="Take your time", background=True)
    check(queued.status in ("queued", "in_progress"), f"a background response starts {queued.status}")
    polled = queued
    for _ in range(20):
        if polled.status not in ("queued", "in_progress"):
            break
        time.sleep(0.05)
        polled = client.responses.retrieve(queued.id)
    check(polled.status == "completed", f"the background response ended {polled.status}")
    seen["background_polls"] = True

    uploaded = client.files.create(file=("notes.txt", io.BytesIO(b"The answer is 42.\n")), purpose="assistants")
    used = client.responses.create(
        model="gpt-4o",
        input=[{"role": "user", "content": [
            {"type": "input_file", "file_id": uploaded.id},
            {"type": "input_text", "text": "What is the answer?"},
        ]}],
    )
    check(used.status == "completed", f"a response that reads the file: {used.status}")
    check(client.files.delete(uploaded.id).deleted, "delete the file")
    seen["file_used"] = True
    return seen


def listing(client):
    page = int(os.environ.get("PAGE", "20"))
    stores = [s.id for s in client.vector_stores.list(limit=page)]
    files = [f.id for f in client.files.list()]
    check(len(stores) == len(set(stores)), "a vector store listed twice")
    return {"vector_stores": stores, "files": files}


def main():
    endpoint = os.environ["GATEWAY_ENDPOINT"].rstrip("/")
    client = OpenAI(base_url=f"{endpoint}/openai/v1/", api_key=os.environ["GATEWAY_KEY"], max_retries=0, timeout=30)
    mode = sys.argv[1] if len(sys.argv) > 1 else "flows"
    seen = listing(client) if mode == "list" else flows(client)
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
