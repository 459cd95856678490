"""`GET /docs`: one HTML page rendered on the server from the OpenAPI and AsyncAPI documents: no
script, nothing from another host (its Content Security Policy allows only inline styles)."""

from __future__ import annotations

import json
from html import escape
from typing import Any

CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h2{border-bottom:1px solid #ccc;margin-top:2em} details{margin:.3em 0;border:1px solid #ddd;border-radius:4px}
summary{padding:.4em .6em;cursor:pointer} .m{display:inline-block;width:4.5em;font-weight:600}
.GET{color:#06c}.POST{color:#080}.PUT{color:#a60}.DELETE{color:#c00}.PATCH{color:#808}
pre{background:#f6f6f6;padding:.5em;overflow:auto;font-size:13px} table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top} .in{padding:0 1em 1em}
"""


def _json(value: Any) -> str:
    return f"<pre>{escape(json.dumps(value, indent=2, ensure_ascii=False))}</pre>"


def _resolve(schema: Any, components: dict[str, Any], depth: int = 0) -> Any:
    """The schema with its $refs inlined (bounded), for reading."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/") and depth < 6:
            _, _, kind, name = ref.split("/", 3)
            return _resolve(components.get(kind, {}).get(name, {}), components, depth + 1)
        return {k: _resolve(v, components, depth) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_resolve(v, components, depth) for v in schema]
    return schema


def _operation(path: str, method: str, op: dict[str, Any], components: dict[str, Any]) -> str:
    m = method.upper()
    parts = [
        f'<details id="{escape(op["operationId"])}"><summary><span class="m {m}">{m}</span> <code>{escape(path)}</code>'
        f' — {escape(op["summary"])}</summary><div class="in"><p>{escape(op["description"])}</p>'
    ]
    if op.get("parameters"):
        rows = "".join(
            f"<tr><td><code>{escape(p['name'])}</code></td><td>{p['in']}</td><td>{'yes' if p.get('required') else ''}</td>"
            f"<td><code>{escape(json.dumps(p['schema']))}</code></td><td>{escape(p.get('description', ''))}</td></tr>"
            for p in op["parameters"]
        )
        parts.append(
            f"<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>required</th><th>schema</th><th></th></tr>{rows}</table>"
        )
    if "requestBody" in op:
        body = op["requestBody"]["content"]["application/json"]
        optional = "" if op["requestBody"]["required"] else " (optional)"
        parts.append(
            f"<h4>Body{optional}</h4>{_json(_resolve(body['schema'], components))}<p>Example:</p>{_json(body['example'])}"
        )
    parts.append("<h4>Answers</h4><table><tr><th>status</th><th>meaning</th><th>example</th></tr>")
    for status, answer in op["responses"].items():
        content: dict[str, Any] = answer.get("content") or {"": {}}
        media, spec = next(iter(content.items()))
        example = _json(spec["example"]) if "example" in spec else escape(media)
        parts.append(f"<tr><td>{status}</td><td>{escape(answer['description'])}</td><td>{example}</td></tr>")
    parts.append("</table></div></details>")
    return "".join(parts)


def render(openapi: dict[str, Any], asyncapi: dict[str, Any]) -> str:
    components = {"schemas": openapi["components"]["schemas"]}
    by_tag: dict[str, list[str]] = {}
    for path, methods in openapi["paths"].items():
        for method, op in methods.items():
            by_tag.setdefault(op["tags"][0], []).append(_operation(path, method, op, components))
    rest = "".join(f"<h3>{escape(tag)}</h3>{''.join(ops)}" for tag, ops in by_tag.items())
    ws_components = {"schemas": asyncapi["components"]["schemas"]}
    messages = asyncapi["components"]["messages"]
    ws = []
    for op in asyncapi["operations"].values():
        ws.append(f"<h3>{escape(op['summary'].capitalize())}</h3>")
        for ref in op["messages"]:
            msg = messages[ref["$ref"].rsplit("/", 1)[1]]
            payload = _resolve(msg["payload"], ws_components)
            summary = f" — {escape(msg['summary'])}" if msg.get("summary") else ""
            ws.append(
                f"<details><summary><code>{escape(msg['title'])}</code>{summary}</summary>{_json(payload)}</details>"
            )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Inkwell API</title>'
        f"<style>{STYLE}</style></head><body><h1>{escape(openapi['info']['title'])}</h1>"
        f"<p>{escape(openapi['info']['description'])} The machine-readable documents: "
        '<a href="/api/openapi.json">OpenAPI 3.1</a>, <a href="/api/asyncapi.json">AsyncAPI 3.0</a>.</p>'
        "<p>Authenticated calls send <code>Authorization: Bearer &lt;token&gt;</code> (<code>POST /api/auth/login</code>). "
        'Errors are <code>{"Code", "Message", "Errors"?}</code>.</p>'
        f"<h2>REST</h2>{rest}<h2>WebSocket</h2><p>{escape(asyncapi['info']['description'])}</p>{''.join(ws)}"
        "</body></html>"
    )
