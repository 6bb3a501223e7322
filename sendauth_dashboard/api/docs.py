"""The OpenAPI document (``GET /api/v1/openapi.json``) and the readable reference drawn from it
on the server (``GET /api/docs``): no script, so the pages' CSP holds as it is."""
import json

from flask import jsonify, render_template

from . import bp, spec

# What each status of a problem means here: the reference's list, each problem's ``type``.
PROBLEMS = {
    400: "The body is not JSON, or a header (Idempotency-Key) is malformed, or a value holds a "
         "NUL character.",
    401: "No API key, or one that is unknown, revoked or expired, or whose owner is "
         "deactivated.",
    403: "The key lacks the scope, or its owner's role (now) does not allow the operation.",
    404: "Nothing at this address, or nothing this key may see there.",
    405: "The address does not take this method (see Allow).",
    409: "A conflict: the request is already final, the last active admin, the same "
         "Idempotency-Key still running.",
    413: "The body is over 64 KiB.",
    415: "The body is not sent as application/json.",
    422: "Fields that failed (errors), a rule that refused (no channel reaches the user: "
         "channels), or an Idempotency-Key used before with another body.",
    429: "Too many requests: for this key (API_RATE_LIMIT), or sent to this user or by you "
         "(the send limits). Retry-After says when.",
    500: "Our bug: it is logged.",
    503: "The database is busy or down: nothing was saved; try again.",
}


@bp.get("/v1/openapi.json")
def openapi_document():
    response = jsonify(spec.document())
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/docs")
def reference():
    document = spec.document()
    schemas = document["components"]["schemas"]
    return render_template("api/docs.html", document=document, schemas=schemas,
                           operations=spec.OPERATIONS, as_json=_as_json,
                           problems=PROBLEMS.items())


def _as_json(value, compact=False):
    return json.dumps(value, indent=None if compact else 2, ensure_ascii=False)
