"""Open SSE streams through a proxy, for bench/streams.sh. Standard library only.

  streams.py upstream PORT INTERVAL_MS EVENTS
      A slow Azure-like backend: every POST gets a chat completion stream of EVENTS chunks,
      one each INTERVAL_MS, each chunk's id carrying the monotonic time it was written (ns).
  streams.py hold PORT PATH KEY N SECONDS
      Opens N streams at once, waits until each has its first event, holds them SECONDS, then
      prints how many opened. The caller reads the proxy's memory meanwhile.
  streams.py latency PORT PATH KEY N SECONDS
      N streams; for every chunk, the time from the backend writing it to its reaching here.
      Prints "samples p50_us p99_us".
"""

import asyncio
import json
import re
import sys
import time

BODY = json.dumps(
    {"messages": [{"role": "user", "content": "Stream to the benchmark."}], "stream": True}
).encode()
STAMP = re.compile(rb'chatcmpl-(\d+)"')


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def serve_stream(reader, writer, interval, events):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"x-ms-region: East US\r\napim-request-id: 00000000-0000-0000-0000-000000000000\r\n"
                b"transfer-encoding: chunked\r\n\r\n"
            )
            for _ in range(events):
                event = {
                    "id": f"chatcmpl-{time.monotonic_ns()}",
                    "object": "chat.completion.chunk",
                    "created": 1733000000,
                    "model": "gpt-4o-2024-08-06",
                    "choices": [{"index": 0, "delta": {"content": "word "}, "finish_reason": None}],
                }
                writer.write(chunk(b"data: " + json.dumps(event).encode() + b"\n\n"))
                await writer.drain()
                await asyncio.sleep(interval)
            writer.write(chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def upstream(port, interval_ms, events):
    interval = interval_ms / 1000
    server = await asyncio.start_server(
        lambda r, w: serve_stream(r, w, interval, events), "127.0.0.1", port, backlog=4096
    )
    async with server:
        await server.serve_forever()


async def open_stream(port, path, key):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\napi-key: %s\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (path.encode(), key.encode(), len(BODY), BODY)
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
    return reader, writer


async def hold(port, path, key, n, seconds):
    async def one():
        reader, writer = await open_stream(port, path, key)
        seen = b""
        while b"chatcmpl-" not in seen:
            seen += await reader.read(4096)
        return reader, writer

    streams = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    opened = [s for s in streams if not isinstance(s, BaseException)]
    failed = [s for s in streams if isinstance(s, BaseException)]
    print(f"opened {len(opened)} of {n}" + (f" (first failure: {failed[0]!r})" if failed else ""), flush=True)

    async def drain(reader):
        try:
            while await reader.read(65536):
                pass
        except ConnectionError:
            pass

    drains = [asyncio.create_task(drain(r)) for r, _ in opened]
    await asyncio.sleep(seconds)
    for _, writer in opened:
        writer.close()
    for d in drains:
        d.cancel()


async def latency(port, path, key, n, seconds):
    delays = []

    async def one():
        reader, writer = await open_stream(port, path, key)
        end = time.monotonic() + seconds
        tail = b""
        while time.monotonic() < end:
            data = await reader.read(65536)
            now = time.monotonic_ns()
            if not data:
                break
            text = tail + data
            last = 0
            for match in STAMP.finditer(text):
                delays.append((now - int(match.group(1))) / 1000)
                last = match.end()
            # A stamp cut by the read is read whole with the next one.
            tail = text[last:][-64:]
        writer.close()

    await asyncio.gather(*(one() for _ in range(n)))
    delays.sort()
    pick = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))]
    print(f"{len(delays)} {pick(0.5):.1f} {pick(0.99):.1f}")


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "upstream":
        asyncio.run(upstream(port, int(sys.argv[3]), int(sys.argv[4])))
    elif mode == "hold":
        path, key, n, seconds = sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
        asyncio.run(hold(port, path, key, n, seconds))
    elif mode == "latency":
        path, key, n, seconds = sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
        asyncio.run(latency(port, path, key, n, seconds))


if __name__ == "__main__":
    main()
