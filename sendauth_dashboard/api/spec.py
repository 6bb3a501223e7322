"""Each API operation declared once: its method, address, scope and the Pydantic models of its
query, body and answers. The same declaration checks each request (422 with the fields that
failed), checks each answer against its model, and writes the OpenAPI 3.1 document, whose
schemas are the models' own JSON Schema (2020-12, OpenAPI 3.1's dialect): nothing to drift.
"""
import json
import re
from dataclasses import dataclass, field
from functools import wraps

from flask import Response, current_app, request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from . import auth, idempotency
from .problems import PROBLEM_JSON, Problem

OPERATIONS = []
ID_KEY = re.compile(r"<(?:(\w+):)?(\w+)>")


@dataclass
class Operation:
    method: str
    rule: str  # the Flask rule, under /api
    name: str
    summary: str
    scope: str | None
    responses: dict  # status: (model or None, description)
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    description: str = ""
    tag: str = ""
    path_types: dict = field(default_factory=dict)

    @property
    def path(self):
        return "/api" + ID_KEY.sub(lambda m: "{" + m.group(2) + "}", self.rule)


def operation(bp, method, rule, *, summary, scope, responses, query=None, body=None, tag="",
              description=""):
    """Register the decorated function as the view of one API operation. It is called with
    the API key, the path's values and ``query=``/``body=`` (the parsed models), and returns
    ``(status, model instance, headers)``."""

    def decorator(fn):
        types = {m.group(2): "integer" if m.group(1) == "int" else "string"
                 for m in ID_KEY.finditer(rule)}
        op = Operation(method, rule, fn.__name__, summary, scope, responses, query, body,
                       description or (fn.__doc__ or "").strip(), tag, types)
        OPERATIONS.append(op)

        @wraps(fn)
        def view(**values):
            key = auth.authorize(scope)
            extra = {}
            if query is not None:
                extra["query"] = _parse(query, request.args.to_dict())
            if method == "POST":
                return idempotency.once(key, lambda: _call(op, fn, key, values, extra))
            return _call(op, fn, key, values, extra)

        bp.add_url_rule(rule, fn.__name__, view, methods=[method])
        return view

    return decorator


def _call(op, fn, key, values, extra):
    if op.body is not None:
        extra["body"] = _parse(op.body, _json_body())
    status, answer, headers = fn(key, **values, **extra)
    model = op.responses[status][0]
    # The answer is checked against the model its status documents: a mismatch is our bug,
    # and a 500 problem rather than an answer that breaks the document.
    body = model.model_validate(answer).model_dump_json() if model else ""
    return Response(body, status=status, mimetype="application/json" if model else None,
                    headers={"Cache-Control": "no-store", **(headers or {})})


def _json_body():
    if request.mimetype != "application/json":
        raise Problem(415, "Send the body as JSON, with Content-Type: application/json.")
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, f"The body is not valid JSON: {exc}.") from None


def _parse(model, data):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Problem(422, "Some fields are not right: see errors.", errors=[
            {"field": ".".join(str(part) for part in error["loc"]) or None,
             "detail": error["msg"]} for error in exc.errors(include_input=False)]) from None


def field_problem(detail, field_name, status=422, **extra):
    """A rule's refusal about one field (a service's words), as the problem document says it."""
    return Problem(status, detail, errors=[{"field": field_name, "detail": detail}], **extra)


PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "properties": {"field": {"type": ["string", "null"]},
                                             "detail": {"type": "string"}}}},
    },
}


def document():
    """The OpenAPI 3.1 document of every registered operation."""
    models = {m for op in OPERATIONS for m in (op.body, *(r[0] for r in op.responses.values()))
              if m is not None}
    refs, defs = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}")
    paths = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation_object(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": "SendAuth dashboard API", "version": "1",
                 "description": "Send authentication requests, wait for and read their outcome, "
                                "cancel them; users and the audit log. Authenticate with "
                                "`Authorization: Bearer sa_…` (Profile → API keys)."},
        "servers": [{"url": current_app.config["BASE_URL"]}],
        "paths": paths,
        "components": {
            "schemas": {**defs.get("$defs", {}), "Problem": PROBLEM_SCHEMA},
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "An API key, sa_…"}},
        },
    }


def _operation_object(op, refs):
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": kind}}
                  for name, kind in op.path_types.items()]
    if op.query is not None:
        schema = op.query.model_json_schema()
        for name, prop in schema["properties"].items():
            prop = _one_query_value(prop)
            parameters.append({"name": name, "in": "query", "required": False,
                               "description": prop.pop("description", ""), "schema": prop})
    if op.method == "POST":
        parameters.append(idempotency.PARAMETER)
    responses = {str(status): _response(model, words, refs)
                 for status, (model, words) in op.responses.items()}
    responses["default"] = {"description": "A problem (RFC 9457): 400, 401, 403, 404, 409, "
                                           "413, 415, 422, 429, 503",
                            "content": {PROBLEM_JSON: {"schema": {
                                "$ref": "#/components/schemas/Problem"}}}}
    result = {"operationId": op.name, "summary": op.summary, "description": op.description,
              "tags": [op.tag] if op.tag else [], "parameters": parameters,
              "responses": responses, "security": [{"apiKey": []}],
              "x-scope": op.scope}
    if op.body is not None:
        result["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": refs[(op.body, "validation")]}}}
    return result


def _one_query_value(prop):
    """A query parameter's schema: without its title, and an optional one (``X | None``) as
    just X, since a query string cannot carry a null."""
    prop = {k: v for k, v in prop.items() if k != "title" and not (k == "default" and v is None)}
    options = prop.pop("anyOf", None)
    if options:
        kept = [option for option in options if option != {"type": "null"}]
        prop.update(kept[0] if len(kept) == 1 else {"anyOf": kept})
    return prop


def _response(model, words, refs):
    if model is None:
        return {"description": words}
    return {"description": words,
            "content": {"application/json": {"schema": refs[(model, "validation")]}}}
