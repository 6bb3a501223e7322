"""RFC 9457 problem details: every error under /api/ is ``application/problem+json`` with
``type``, ``title``, ``status`` and ``detail`` (and ``errors``, each field that failed, on a
422), never an HTML page."""
import json

from flask import Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

PROBLEM_JSON = "application/problem+json"
# Where each kind of problem is explained: the API reference's section on errors.
TYPE_BASE = "/api/docs#problem-"


# What a program's author reads for the errors routing and the request's size give.
API_ADVICE = {
    404: "There is nothing at this address. The operations are listed at /api/v1/openapi.json.",
    405: "This address does not accept that method; the Allow header lists those it does.",
    413: "The body is too large: at most 64 KiB.",
}


class Problem(HTTPException):
    """Raised anywhere under /api/ to answer with a problem document."""

    def __init__(self, status, detail, *, errors=None, headers=None, title=None, **extra):
        super().__init__(detail)
        self.code = status
        self.detail = detail
        self.errors = errors
        self.extra_headers = dict(headers or {})
        self.title = title or HTTP_STATUS_CODES.get(status, "Error")
        self.extra = extra

    def get_response(self, environ=None, scope=None):
        return problem_response(self.code, self.detail, title=self.title, errors=self.errors,
                                headers=self.extra_headers, **self.extra)


def is_api_request():
    return request.path == "/api" or request.path.startswith("/api/")


def problem_response(status, detail, *, title=None, errors=None, headers=None, **extra):
    title = title or HTTP_STATUS_CODES.get(status, "Error")
    body = {"type": TYPE_BASE + str(status), "title": title, "status": status,
            "detail": detail, "instance": request.path, **extra}
    if errors is not None:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def from_http_error(exc, advice):
    """A problem document for a Werkzeug HTTP error raised under /api/ (routing's 404 and 405,
    a body too large, a NUL in the address, ...): its status, with the dashboard's advice."""
    headers = {}
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(exc.valid_methods)
    return problem_response(exc.code, advice, title=exc.name, headers=headers)
