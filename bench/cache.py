"""Applications with long system prompts calling through a gateway, for bench/cache.sh.
Standard library only.

  cache.py PORT PATH KEY APPS CALLS CONNECTIONS PID RATE
      CALLS chat calls over CONNECTIONS keep-alive connections, paced at RATE calls a second
      (call k is sent no sooner than k / RATE s after the first), so that the simulated caches'
      life means the same whatever the machine's speed. Each call is from one of APPS
      applications, drawn Zipf-like (application i with weight 1/(i+1), the same sequence every
      run); each application has its own system prompt of about 1,500 tokens, then a question.
      Prints "cached_share busiest_over_mean cpu_us_per_call calls_per_s": the share of prompt tokens
      the backends served from their cache, the busiest backend's calls against the mean (by
      x-aoai-gateway-backend), and the CPU of process PID per call.
"""

import asyncio
import collections
import json
import os
import random
import sys
import time


def system_prompt(app: int) -> str:
    rng = random.Random(app)
    words = ["app%d" % app] + [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(1500)
    ]
    return " ".join(words)


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of process PID, in ns (schedstat: finer than clock ticks)."""
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass
    return total


async def worker(port, path, key, bodies, queue, seen, start, rate):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    while True:
        try:
            app, question = queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        due = start + question / rate - time.monotonic()
        if due > 0:
            await asyncio.sleep(due)
        body = json.dumps(
            {
                "messages": [
                    {"role": "system", "content": bodies[app]},
                    {"role": "user", "content": "question %d" % question},
                ],
                "max_tokens": 16,
            }
        ).encode()
        writer.write(
            b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\napi-key: %s\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (path.encode(), key.encode(), len(body), body)
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            if b":" in line:
                name, value = line.split(b":", 1)
                headers[name.strip().lower()] = value.strip()
        if b"content-length" in headers:
            answer = await reader.readexactly(int(headers[b"content-length"]))
        else:
            answer = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                answer += (await reader.readexactly(size + 2))[:size]
                if size == 0:
                    break
        if status != 200:
            raise SystemExit("status %d: %s" % (status, answer[:300]))
        usage = json.loads(answer)["usage"]
        seen.append(
            (
                headers[b"x-aoai-gateway-backend"].decode(),
                usage["prompt_tokens"],
                usage["prompt_tokens_details"]["cached_tokens"],
            )
        )
    writer.close()


async def main():
    port, path, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    apps, calls, connections, pid, rate = (int(a) for a in sys.argv[4:9])
    bodies = [system_prompt(a) for a in range(apps)]
    rng = random.Random(42)
    weights = [1 / (a + 1) for a in range(apps)]
    queue = asyncio.Queue()
    for i, app in enumerate(rng.choices(range(apps), weights, k=calls)):
        queue.put_nowait((app, i))
    seen = []
    before, started = cpu_ns(pid), time.monotonic()
    await asyncio.gather(
        *(
            worker(port, path, key, bodies, queue, seen, started, rate)
            for _ in range(connections)
        )
    )
    used, took = cpu_ns(pid) - before, time.monotonic() - started
    prompt = sum(p for _, p, _ in seen)
    cached = sum(c for _, _, c in seen)
    per_backend = collections.Counter(b for b, _, _ in seen)
    backends = int(os.environ.get("BACKENDS", len(per_backend)))
    mean = len(seen) / backends
    print(
        "%.4f %.3f %.1f %.0f"
        % (cached / prompt, max(per_backend.values()) / mean, used / 1e3 / len(seen), len(seen) / took)
    )


asyncio.run(main())
