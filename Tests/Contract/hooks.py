"""Schemathesis hooks for the Bindery contract run (schemathesis.toml loads them).

- before_load_schema: adds the links of links.yaml that openapi.yaml lacks.
- before_call: two request rewrites for what OpenAPI cannot say (Idempotency-Key
  reuse, the long poll); both touch only values that are already schema-valid,
  so negative cases reach the server exactly as generated.
- semantic_refusals_only: a check that keeps the 422s schemathesis.toml
  accepts for schema-valid bodies down to the semantic reasons API.md gives.
"""

from __future__ import annotations

import json
import pathlib
import re
import uuid

import yaml

import schemathesis

IDEMPOTENT_OPERATIONS = {"POST /v1/vms", "POST /v1/bindings"}


@schemathesis.hook
def before_call(context, case, kwargs):
    label = f"{case.method.upper()} {case.operation.path}"

    # Idempotency-Key: the same key with a different body is a 422 by design
    # (API.md, "Concurrency and retries"), and schemathesis reuses the same
    # few keys ("0", "a") for unrelated bodies. Give every schema-valid key a
    # fresh value so a replayed key never meets a different body; invalid keys
    # (empty, over 128 characters) are left alone and must still be refused.
    if label in IDEMPOTENT_OPERATIONS and case.headers:
        for name in list(case.headers):
            if name.lower() != "idempotency-key":
                continue
            value = case.headers[name]
            if isinstance(value, str) and 1 <= len(value) <= 128:
                case.headers[name] = f"contract-{uuid.uuid4().hex}"

    # GET /v1/events is a long poll: with `after` past the head it waits
    # `timeoutSeconds` (default 30, up to 300) before answering an empty page,
    # which would eat the whole time budget and trip the client timeout.
    # A schema-valid or absent timeout becomes 0 (answer at once); invalid
    # ones (-1, 301, "abc", null) are sent as generated.
    if label == "GET /v1/events":
        query = case.query if case.query is not None else {}
        value = query.get("timeoutSeconds", 0)
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)  # the coverage phase hands some values over as text
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 300:
            query["timeoutSeconds"] = 0
            case.query = query


LINKS_FILE = pathlib.Path(__file__).with_name("links.yaml")


@schemathesis.hook
def before_load_schema(context, raw_schema):
    """Add the links of links.yaml that openapi.yaml does not have yet."""
    wanted = yaml.safe_load(LINKS_FILE.read_text()) or {}
    operations = {}
    for path_item in raw_schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if isinstance(operation, dict) and "operationId" in operation:
                operations[operation["operationId"]] = operation
    for operation_id, by_status in wanted.items():
        operation = operations.get(operation_id)
        if operation is None:
            raise RuntimeError(f"links.yaml names {operation_id}, which openapi.yaml does not have")
        for status, links in by_status.items():
            response = operation.get("responses", {}).get(str(status))
            if response is None:
                raise RuntimeError(f"links.yaml: {operation_id} has no {status} response")
            if "$ref" in response:
                raise RuntimeError(f"links.yaml: {operation_id} {status} is a $ref; put the links in openapi.yaml")
            present = response.setdefault("links", {})
            for name, link in links.items():
                present.setdefault(name, link)


# Operation -> (JSON pointer, detail) patterns of 422s that no schema can rule
# out: they depend on other resources or on the host (API.md, "Validation").
SEMANTIC_422 = {
    "POST /v1/vms": [
        (r"/memory/\d+", r"overlaps another region"),
        (r"/memory/\d+", r"must lie below 2\^\d+"),  # the host's address width
        (r"/memory/\d+/backing/offset", r"offset plus size must fit in 63 bits"),  # two fields together
        # The operator's memory directories and what is on the host's disk (THREAT_MODEL.md).
        (r"/memory/\d+/backing/path", r"\[rule: (memory-directory|normalized-path|no-symlinks|regular-file|file-size|backing-file)\]$"),
    ],
    "PUT /v1/vms/{id}/devices/{address}": [
        # The device policy and what the host uses now.
        (r"/path/address", r"^(in-use|host-class|not-allowed|no-iommu-group): "),
    ],
    "POST /v1/bindings": [
        (r"/vm", r"^no VM "),
        (r"/device", r"^no device "),
        (r"/(guestPasid|hostPasid)", r"Pasid -?\d+ is outside 1\.\.\.\d+"),  # the device's and host's PASID width
        (r"/(format|version)", r"this host (binds|supports)"),  # what the host's kernel advertises
        (r"/pageTable/addressWidth", r"wider than this host supports"),
        (r"/device", r" is not assigned to "),
        (r"/device", r" has no PASID capability"),
        (r"/pageTable/address", r" is outside .* guest memory"),
    ],
    "PUT /v1/bindings/{id}": [
        (r"/address", r" is outside .* guest memory"),
    ],
}


@schemathesis.check
def semantic_refusals_only(ctx, response, case):
    """A schema-valid request may get 422 only for a reason no schema can state."""
    if response.status_code != 422:
        return None
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    allowed = SEMANTIC_422.get(f"{case.method.upper()} {case.operation.path}")
    if allowed is None:
        return None  # positive_data_acceptance judges 422 for every other operation
    try:
        problem = json.loads(response.content)
    except ValueError:
        problem = {}
    errors = problem.get("errors") if isinstance(problem, dict) else None
    if not errors:
        raise AssertionError(f"Schema-valid request refused with 422 and no `errors` list: {response.text[:500]}")
    others = [
        error for error in errors
        if not any(re.fullmatch(pointer, str(error.get("pointer", ""))) and re.search(detail, str(error.get("detail", "")))
                   for pointer, detail in allowed)
    ]
    if others:
        raise AssertionError(
            "Schema-valid request refused with 422 for a reason the schema could state: "
            + "; ".join(f"{error.get('pointer')}: {error.get('detail')}" for error in others)
        )
    return None
