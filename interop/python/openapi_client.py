"""The gateway's OpenAPI document, checked by a validator nobody here wrote, then used.

    python openapi_client.py ADMIN_HOST:PORT GATEWAY_HOST:PORT [--path /openapi.json]

1. fetches the document from the gateway's admin listener and validates it as OpenAPI 3.1
   with openapi-spec-validator;
2. calls every operation it describes on the gateway's REST side, with arguments made from
   the document's own schemas (path and query parameters, JSON bodies), and checks each
   answer is a success in the content type the document promises (JSON, or NDJSON for
   server streaming), each line of it valid against the response schema's type.

Prints one line per check and exits non-zero on the first failure.
"""

import argparse
import json
import sys
import urllib.parse
import urllib.request

from openapi_spec_validator import validate

TIMEOUT = 10


def check(label, condition, detail=""):
    if not condition:
        print(f"FAIL {label} {detail}")
        sys.exit(1)
    print(f"ok   {label}")


def resolve(document, schema):
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema


def sample(document, schema, name=""):
    """A value that fits `schema` (small positive numbers, short strings)."""
    schema = resolve(document, schema)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if "enum" in schema:
        return schema["enum"][-1]
    if kind == "integer":
        return 3
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2024-05-01T10:00:00Z"
        return "Ada" if "name" in name.lower() else "x"
    if kind == "array":
        return [sample(document, schema["items"], name)]
    if kind == "object":
        return {
            key: sample(document, value, key)
            for key, value in schema.get("properties", {}).items()
        }
    return None


def matches(document, schema, value):
    schema = resolve(document, schema)
    kind = schema.get("type")
    if kind is None:
        return True
    kinds = kind if isinstance(kind, list) else [kind]
    checks = {
        "null": value is None,
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "string": isinstance(value, str),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }
    return any(checks.get(k, False) for k in kinds)


def call(gateway, verb, path, operation, document):
    params = {}
    for parameter in operation.get("parameters", []):
        value = sample(document, parameter["schema"], parameter["name"])
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", urllib.parse.quote(str(value)))
        else:
            params[parameter["name"]] = value
    url = f"http://{gateway}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    body = None
    headers = {}
    request_body = operation.get("requestBody")
    if request_body:
        schema = request_body["content"]["application/json"]["schema"]
        body = json.dumps(sample(document, schema)).encode()
        headers["content-type"] = "application/json"
    request = urllib.request.Request(url, data=body, method=verb.upper(), headers=headers)
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return response.status, response.headers.get("content-type", ""), response.read()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("admin")
    parser.add_argument("gateway")
    parser.add_argument("--path", default="/openapi.json")
    args = parser.parse_args()
    with urllib.request.urlopen(f"http://{args.admin}{args.path}", timeout=TIMEOUT) as response:
        document = json.load(response)
    validate(document)
    check("openapi-spec-validator: a valid OpenAPI 3.1 document", document["openapi"] == "3.1.0")
    operations = [
        (verb, path, operation)
        for path, item in document["paths"].items()
        for verb, operation in item.items()
    ]
    check("the document has every example REST route", len(operations) >= 5, repr(len(operations)))
    for verb, path, operation in operations:
        label = f"{verb.upper()} {path} ({operation['operationId']})"
        status, content_type, payload = call(args.gateway, verb, path, operation, document)
        content = operation["responses"]["200"]["content"]
        (promised, media), = content.items()
        check(f"{label} -> {status}", 200 <= status < 300, payload[:200])
        check(f"{label}: {promised}", content_type.startswith(promised), content_type)
        lines = payload.decode().splitlines() if promised == "application/x-ndjson" else [payload.decode()]
        values = [json.loads(line) for line in lines if line.strip()]
        check(
            f"{label}: the reply fits its schema",
            values and all(matches(document, media["schema"], value) for value in values),
            repr(values)[:200],
        )
    print("openapi client: all checks passed")


if __name__ == "__main__":
    main()
