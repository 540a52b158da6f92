#!/usr/bin/env python3
"""Summarize a schemathesis NDJSON event log from the Bindery contract run.

Reads the events file schemathesis wrote (--report ndjson), and writes:
  failures.md   every distinct failure, grouped by check, with a minimal
                reproducing request (the shortest one seen), what the server
                answered and what the check expected;
  failures.json the same as data;
  statuses.txt  per operation and phase, how often each status code came back
                (shows whether VMs and bindings were reached with real ids).
Prints one line: "<cases> cases, <with failures> with failures, <distinct> distinct failures".

A failure is "distinct" per (check, operation, status code, normalized problem
detail): ids, numbers and quoted values in the detail are masked, so the same
bug hit with different data counts once.
"""

from __future__ import annotations

import base64
import collections
import json
import re
import sys
from pathlib import Path

ID_PATTERNS = [
    (re.compile(r"vm-[0-9a-f]{32}"), "vm-<id>"),
    (re.compile(r"bnd-[0-9a-f]{32}"), "bnd-<id>"),
    (re.compile(r"req-[0-9a-f]+"), "req-<id>"),
    (re.compile(r"0x[0-9a-fA-F]+"), "0x<hex>"),
    (re.compile(r"\b\d+\b"), "<n>"),
    (re.compile(r'"[^"]*"'), '"…"'),
]


def decode(payload):
    if payload is None:
        return None
    if isinstance(payload, dict) and "$base64" in payload:
        raw = base64.b64decode(payload["$base64"])
        return raw.decode("utf-8", "replace")
    if isinstance(payload, dict) and "string" in payload:
        return payload["string"]
    return payload if isinstance(payload, str) else json.dumps(payload)


def problem_detail(body: str | None) -> str:
    if not body:
        return ""
    try:
        doc = json.loads(body)
    except ValueError:
        return body[:200]
    if isinstance(doc, dict):
        pointers = [e.get("pointer", "") for e in doc.get("errors", []) if isinstance(e, dict)]
        detail = str(doc.get("detail", doc.get("title", "")))
        if pointers:
            # Keep the pointers and what is said about the first one.
            return " ".join(pointers) + " | " + detail.split(":", 1)[-1]
        return detail
    return ""


def normalize(text: str) -> str:
    for pattern, replacement in ID_PATTERNS:
        text = pattern.sub(replacement, text)
    return text[:240]


def header(headers: dict, name: str):
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list) else value
    return None


def curl(request: dict) -> str:
    parts = ["curl", "-X", request["method"]]
    for key, values in (request.get("headers") or {}).items():
        if key.lower() in ("user-agent", "accept-encoding", "accept", "connection", "content-length",
                           "x-schemathesis-testcaseid"):
            continue
        for value in values if isinstance(values, list) else [values]:
            parts += ["-H", shell_quote(f"{key}: {value}")]
    body = decode(request.get("body"))
    if body is not None:
        parts += ["--data-binary", shell_quote(body)]
    parts.append(shell_quote(request["uri"]))
    return " ".join(parts)


def shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def main() -> int:
    events_path = Path(sys.argv[1])
    out_dir = Path(sys.argv[2]) if len(sys.argv) > 2 else events_path.parent
    distinct: dict[tuple, dict] = {}
    statuses: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
    cases_seen = set()
    cases_failed = set()
    network_errors = []
    for line in events_path.read_text().splitlines():
        event = json.loads(line)
        if "NonFatalError" in event:
            error = event["NonFatalError"]
            network_errors.append({"label": error.get("label"), "phase": error.get("phase"),
                                   "error": error.get("value", {})})
            continue
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished["recorder"]
        phase = finished["phase"]
        cases = recorder.get("cases", {})
        interactions = recorder.get("interactions", {})
        for case_id, interaction in interactions.items():
            case = cases.get(case_id, {}).get("value", {})
            label = f"{case.get('method', interaction['request']['method'])} {case.get('path', '?')}"
            response = interaction.get("response") or {}
            statuses[(label, phase)][response.get("status_code", "no response")] += 1
        for case_id, checks in recorder.get("checks", {}).items():
            cases_seen.add((finished["suite_id"], case_id))
            for check in checks:
                if check["status"] == "success":
                    continue
                cases_failed.add((finished["suite_id"], case_id))
                failure = (check.get("failure_info") or {}).get("failure", {})
                interaction = interactions.get(case_id, {})
                request = interaction.get("request", {})
                response = interaction.get("response") or {}
                body = decode(response.get("content"))
                case_entry = cases.get(case_id, {})
                case = case_entry.get("value", {})
                # Name what was sent: an undeclared-method probe (TRACE, QUERY)
                # reports the declared operation it was derived from.
                operation = f"{request.get('method') or case.get('method')} {case.get('path')}"
                mode = ((case.get("meta") or {}).get("generation") or {}).get("mode")
                description = (((case.get("meta") or {}).get("phase") or {}).get("data") or {}).get("description")
                message = failure.get("message", "")
                invalid = ""
                if "Invalid component:" in message:
                    invalid = message.split("Invalid component:", 1)[1].strip()
                status = response.get("status_code")
                key = (check["name"], operation, status,
                       normalize(problem_detail(body)) if check["name"] not in ("negative_data_rejection",)
                       else normalize(re.sub(r"\d+", "<n>", invalid.split(" - ")[0])))
                # The chain of requests that led here (stateful scenarios).
                chain = []
                parent = case_entry.get("parent_id")
                while parent and parent in cases:
                    chain.insert(0, parent)
                    parent = cases[parent].get("parent_id")
                steps = [curl(interactions[p]["request"]) + f"   # -> {(interactions[p].get('response') or {}).get('status_code')}"
                         for p in chain if p in interactions]
                entry = {
                    "check": check["name"],
                    "code": failure.get("code"),
                    "title": failure.get("title"),
                    "operation": operation,
                    "phase": phase,
                    "mode": mode,
                    "description": description,
                    "status": status,
                    "expected": message,
                    "request": curl(request) if request else None,
                    "previous_requests": steps,
                    "response_body": (body or "")[:1500],
                    "response_headers": {k: v for k, v in (response.get("headers") or {}).items()
                                         if k.lower() in ("allow", "content-type", "etag", "location")},
                    "occurrences": 1,
                }
                known = distinct.get(key)
                if known is None:
                    distinct[key] = entry
                else:
                    known["occurrences"] += 1
                    # Keep the shortest reproduction.
                    if entry["request"] and (known["request"] is None or
                                             len(entry["request"]) + sum(map(len, steps)) <
                                             len(known["request"]) + sum(map(len, known["previous_requests"]))):
                        entry["occurrences"] = known["occurrences"]
                        distinct[key] = entry

    by_check: dict[str, list] = collections.defaultdict(list)
    for entry in distinct.values():
        by_check[entry["check"]].append(entry)

    lines = ["# Schemathesis failures", ""]
    lines.append(f"{len(cases_seen)} test cases, {len(cases_failed)} with failures, "
                 f"{len(distinct)} distinct failures, {len(network_errors)} network errors.")
    lines.append("")
    for check in sorted(by_check):
        entries = sorted(by_check[check], key=lambda e: (e["operation"], str(e["status"])))
        lines.append(f"## {check} ({len(entries)} distinct)")
        lines.append("")
        for entry in entries:
            lines.append(f"### {entry['operation']} -> {entry['status']}  ({entry['code']} {entry['title']}; "
                         f"{entry['occurrences']}x; phase {entry['phase']}, {entry['mode']} data)")
            if entry["description"]:
                lines.append(f"- case: {entry['description']}")
            lines.append("- expected: " + entry["expected"].replace("\n", " / "))
            for step in entry["previous_requests"]:
                lines.append(f"- before: `{step}`")
            lines.append(f"- request: `{entry['request']}`")
            if entry["response_headers"]:
                lines.append(f"- response headers: {json.dumps(entry['response_headers'])}")
            lines.append(f"- response: `{entry['response_body'][:600]}`")
            lines.append("")
    if network_errors:
        lines.append("## network errors")
        lines.append("")
        for error in network_errors:
            lines.append(f"- {error['label']} ({error['phase']}): {json.dumps(error['error'])[:500]}")
        lines.append("")
    (out_dir / "failures.md").write_text("\n".join(lines))
    (out_dir / "failures.json").write_text(json.dumps(
        {"cases": len(cases_seen), "cases_with_failures": len(cases_failed),
         "distinct": list(distinct.values()), "network_errors": network_errors}, indent=2))

    status_lines = []
    for (label, phase), counter in sorted(statuses.items()):
        counts = ", ".join(f"{status}: {count}" for status, count in sorted(counter.items(), key=lambda x: str(x[0])))
        status_lines.append(f"{phase:9} {label:40} {counts}")
    (out_dir / "statuses.txt").write_text("\n".join(status_lines) + "\n")

    print(f"{len(cases_seen)} cases, {len(cases_failed)} with failures, {len(distinct)} distinct failures, "
          f"{len(network_errors)} network errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
