"""Sends N chat calls one after another on one connection, for the callgrind benches
(bench/traces.sh, bench/cache.sh). Standard library only.

  calls.py N PORT [BODY_FILE]
      Waits for the gateway's /healthz, then posts the body (BODY_FILE's, else a short chat) to
      $PATH_Q with $BENCH_CLIENT_KEY, N times; fails on any answer but 200.
"""

import http.client
import os
import sys
import time

n, port = int(sys.argv[1]), int(sys.argv[2])
body = '{"messages":[{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":50}'
if len(sys.argv) > 3:
    with open(sys.argv[3]) as f:
        body = f.read()
for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.request("GET", "/healthz")
        c.getresponse().read()
        break
    except OSError:
        time.sleep(0.1)
headers = {"api-key": os.environ["BENCH_CLIENT_KEY"], "content-type": "application/json"}
for _ in range(n):
    c.request("POST", os.environ["PATH_Q"], body, headers)
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"answered {r.status}")
