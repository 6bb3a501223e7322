"""The OpenAPI document (``GET /api/v1/openapi.json``) and the readable reference drawn from it
on the server (``GET /api/docs``): no script, so the pages' CSP holds as it is."""
import json

from flask import jsonify, render_template

from . import bp, spec


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
                           operations=spec.OPERATIONS, as_json=_as_json)


def _as_json(value):
    return json.dumps(value, indent=2, ensure_ascii=False)
