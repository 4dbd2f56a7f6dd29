"""Fuzzes one api-version of a running gateway with schemathesis and fails on any finding that
tests/fuzz/accepted.toml does not explain.

Arguments: GATEWAY (e.g. http://127.0.0.1:8080), API_VERSION, KEY (a subscription key),
REPORT_DIR. Environment: FUZZ_SEED (default 1), FUZZ_EXAMPLES per operation (default 25),
FUZZ_SECONDS as a time budget (default 60), SCHEMATHESIS (the CLI, default next to python).

The spec fuzzed is the one the gateway serves for the version, with the gateway's two
documented rules stated in it (open `modelAsString` enums, 64-bit integers; see
accepted.toml). Checks: not_a_server_error, negative_data_rejection,
positive_data_acceptance. Prints one JSON line: cases, findings, accepted findings by reason.
"""

import base64
import glob
import json
import os
import re
import subprocess
import sys
import tomllib
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKS = "not_a_server_error,negative_data_rejection,positive_data_acceptance"
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


def contract(node):
    """The served spec with the gateway's own rules stated, in place."""
    if isinstance(node, list):
        for item in node:
            contract(item)
        return
    if not isinstance(node, dict):
        return
    x_ms_enum = node.get("x-ms-enum")
    if isinstance(x_ms_enum, dict) and x_ms_enum.get("modelAsString") is True:
        node.pop("enum", None)
    if node.get("type") == "integer":
        low, high = INT32 if node.get("format") == "int32" else INT64
        node["minimum"] = max(node.get("minimum", low), low)
        node["maximum"] = min(node.get("maximum", high), high)
    for value in node.values():
        contract(value)


def findings(report_dir):
    """(check name, finding message, gateway's answer) for every failed check."""
    out = []
    for path in glob.glob(os.path.join(report_dir, "*.ndjson")):
        for line in open(path, encoding="utf-8"):
            event = json.loads(line)
            scenario = event.get("ScenarioFinished")
            if not scenario:
                continue
            recorder = scenario.get("recorder") or {}
            for case_id, checks in (recorder.get("checks") or {}).items():
                for check in checks:
                    info = check.get("failure_info")
                    if not info:
                        continue
                    failure = info["failure"]
                    interaction = (recorder.get("interactions") or {}).get(case_id) or {}
                    response = interaction.get("response") or {}
                    content = response.get("content") or {}
                    answer = base64.b64decode(content.get("$base64", "")).decode("utf-8", "replace")
                    request = interaction.get("request") or {}
                    headers = request.get("headers") or {}
                    content_type = next(
                        (v[0] for k, v in headers.items() if k.lower() == "content-type" and v), ""
                    )
                    out.append(
                        {
                            "check": check["name"],
                            "code": failure.get("code"),
                            "operation": failure.get("operation"),
                            "message": failure.get("message", ""),
                            "answer": answer,
                            "status": response.get("status_code"),
                            "request": f"{request.get('method')} {request.get('uri')}",
                            "content_type": content_type,
                        }
                    )
    return out


def unlisted(answer):
    """Whether a `must be one of "a", "b", got "x"` answer refused a value it does not list."""
    try:
        message = json.loads(answer)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return False
    found = re.search(r'must be one of (.+), got "(.*)"$', message)
    return bool(found) and found.group(2) not in re.findall(r'"((?:[^"\\]|\\.)*)"', found.group(1))


def resolve(spec, schema):
    """`schema` with its `$ref` (to a component) followed."""
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 32:
        name = schema["$ref"].split("/")[-1].replace("~1", "/").replace("~0", "~")
        schema = spec.get("components", {}).get("schemas", {}).get(name, {})
        seen += 1
    return schema if isinstance(schema, dict) else {}


def step(spec, schema, key, depth=0):
    """The schemas member `key` (a property name, or None for an item or a map value) may have,
    through every branch of a union."""
    schema = resolve(spec, schema)
    found = []
    if key is None:
        found += [c for c in (schema.get("items"), schema.get("additionalProperties")) if isinstance(c, dict)]
    elif key in schema.get("properties", {}):
        found.append(schema["properties"][key])
    if depth < 8:
        for keyword in ("allOf", "anyOf", "oneOf"):
            for part in schema.get(keyword, []):
                found += step(spec, part, key, depth + 1)
    return found


def discriminated(spec, schema, depth=0):
    """Whether `schema`, or a schema it is a union of, has a discriminator."""
    schema = resolve(spec, schema)
    if "discriminator" in schema:
        return True
    return depth < 4 and any(
        discriminated(spec, part, depth + 1) for k in ("anyOf", "oneOf") for part in schema.get(k, [])
    )


def below_discriminator(spec, finding):
    """Whether the field the gateway refused (its answer's `param`) is a discriminated base
    schema or lies inside one, in the spec the fuzzer read: there the fuzzer knows only the
    base, while the gateway checks the subtype the tag names."""
    try:
        param = json.loads(finding["answer"])["error"]["param"] or ""
        method, path = finding["operation"].split(" ", 1)
        content = spec["paths"][path][method.lower()]["requestBody"]["content"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return False
    media = finding["content_type"].split(";")[0].strip() or "application/json"
    schema = (content.get(media) or next(iter(content.values()), {})).get("schema")
    keys = [None if t.startswith("[") else t for t in re.findall(r'\[[^\]]*\]|[^.\[\]]+', param)]
    schemas = [schema] if schema else []
    for key in [*keys, "end"]:
        if any(discriminated(spec, s) for s in schemas):
            return True
        if key != "end":
            schemas = [child for s in schemas for child in step(spec, s, key)][:64]
    return False


def matches(entry, finding, spec):
    """The text of `entry` the finding contains, if the entry explains the finding."""
    text = finding["message"] if finding["check"] == "negative_data_rejection" else finding["answer"]
    if (
        entry["check"] != finding["check"]
        or not finding["content_type"].startswith(entry.get("content_type", ""))
        or (entry.get("unlisted_value") and not unlisted(finding["answer"]))
    ):
        return None
    if entry.get("below_discriminator"):
        return "below a discriminator" if below_discriminator(spec, finding) else None
    return entry["contains"] if entry["contains"] in text else None


def main():
    gateway, version, key, report_dir = sys.argv[1:5]
    accepted = tomllib.load(open(os.path.join(HERE, "accepted.toml"), "rb"))["accepted"]
    with urllib.request.urlopen(f"{gateway}/openapi/{version}.json") as r:
        spec = json.load(r)
    contract(spec)
    report_dir = os.path.abspath(report_dir)
    os.makedirs(report_dir, exist_ok=True)
    spec_path = os.path.join(report_dir, f"{version}.contract.json")
    json.dump(spec, open(spec_path, "w"))
    cli = os.environ.get("SCHEMATHESIS") or os.path.join(os.path.dirname(sys.executable), "schemathesis")
    run = subprocess.run(
        [
            cli, "run", spec_path,
            # The served spec's `servers` says where its routes live: /openai, or /openai/v1.
            "--url", gateway + spec["servers"][0]["url"],
            "-H", f"api-key: {key}",
            "--checks", CHECKS,
            "--seed", os.environ.get("FUZZ_SEED", "1"),
            "--max-examples", os.environ.get("FUZZ_EXAMPLES", "25"),
            "--max-time", os.environ.get("FUZZ_SECONDS", "60"),
            "--workers", "2",
            "--no-color",
            "--report", "ndjson",
            "--report-dir", report_dir,
        ],
        capture_output=True,
        text=True,
        # schemathesis keeps a cache of past findings where it runs: not in the source tree.
        cwd=report_dir,
    )
    found = findings(report_dir)
    unexplained, explained, seen = [], {}, set()
    for f in found:
        key = (f["check"], f["operation"], f["message"], f["answer"])
        if key in seen:
            continue
        seen.add(key)
        why = next((t for t in (matches(a, f, spec) for a in accepted) if t), None)
        if why is None:
            unexplained.append(f)
        else:
            explained[why] = explained.get(why, 0) + 1
    generated = sum(1 for _ in open(glob.glob(os.path.join(report_dir, "*.ndjson"))[0]))
    print(json.dumps({
        "api_version": version,
        "schemathesis_exit": run.returncode,
        "events": generated,
        "findings": len(seen),
        "accepted": explained,
        "unexplained": len(unexplained),
    }))
    for f in unexplained[:30]:
        print(
            f"\n{f['check']} ({f['code']}) on {f['operation']}\n  {f['request']}\n"
            f"  finding: {f['message']}\n  answer ({f['status']}): {f['answer'][:400]}",
            file=sys.stderr,
        )
    if run.returncode not in (0, 1):
        print(run.stdout[-4000:], run.stderr[-4000:], file=sys.stderr)
        sys.exit(2)
    sys.exit(1 if unexplained else 0)


if __name__ == "__main__":
    main()
