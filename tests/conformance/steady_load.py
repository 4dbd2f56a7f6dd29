"""Steady load through the gateway with the official openai SDK's AzureOpenAI client: THREADS
threads, each with its own client, send chat completions one after another until the file
named STOP_FILE exists, for at most SECONDS seconds. The SDK's own retries are off, so every
error the gateway answers is seen.

Environment: GATEWAY_ENDPOINT (the gateway's origin), GATEWAY_KEY (a subscription key),
THREADS, SECONDS, STOP_FILE.

Prints one JSON line: calls made, calls per second, and every failure (status and message).
`tests/reload.rs` runs it while it reloads the gateway's configuration.
"""

import json
import os
import threading
import time

from openai import AzureOpenAI, APIError

endpoint = os.environ["GATEWAY_ENDPOINT"]
key = os.environ["GATEWAY_KEY"]
threads = int(os.environ.get("THREADS", "8"))
seconds = float(os.environ.get("SECONDS", "60"))
stop_file = os.environ["STOP_FILE"]

lock = threading.Lock()
calls = 0
failures = []
regions = {}


def worker():
    global calls
    client = AzureOpenAI(
        azure_endpoint=endpoint, api_key=key, api_version="2024-10-21", max_retries=0
    )
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not os.path.exists(stop_file):
        try:
            raw = client.chat.completions.with_raw_response.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": "Hello"}],
                max_tokens=5,
            )
            completion = raw.parse()
            region = raw.headers.get("x-ms-region", "?")
            ok = bool(completion.choices)
            with lock:
                calls += 1
                regions[region] = regions.get(region, 0) + 1
                if not ok:
                    failures.append("an answer without choices")
        except APIError as e:
            with lock:
                calls += 1
                failures.append(
                    f"{time.time():.3f} {getattr(e, 'status_code', None)}: {e}"[:120]
                )
        except Exception as e:  # a connection the gateway dropped is a failure too
            with lock:
                calls += 1
                failures.append(f"{time.time():.3f} {type(e).__name__}: {e}"[:120])


started = time.monotonic()
pool = [threading.Thread(target=worker) for _ in range(threads)]
for t in pool:
    t.start()
for t in pool:
    t.join()
took = time.monotonic() - started
print(
    json.dumps(
        {
            "calls": calls,
            "per_second": round(calls / took, 1),
            "regions": regions,
            "failures": failures[:20],
            "failed": len(failures),
        }
    )
)
