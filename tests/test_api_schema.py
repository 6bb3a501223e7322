"""schemathesis against the served OpenAPI document, in process: for every operation, inputs
made from the document (a fixed seed, a few examples each) never give a server error, a
status the document does not list, or an answer that breaks the document."""
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from sendauth_dashboard.api import spec
from tests.support.api import make_key
from tests.support.helpers import configure_pagerduty, send_request

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = 8


@pytest.fixture
def app_config(app_config):
    # ?wait= may be up to 60 s by the document; here a pending request answers after 0.05 s.
    return {**app_config, "API_MAX_WAIT_SECONDS": 0.05}


@pytest.fixture
def admin_key(app, make_user):
    configure_pagerduty(app)
    admin = make_user("admin", email="ada@example.com")
    make_user("admin", email="spare@example.com")
    target = make_user("member", email="uma@example.com", notify_pagerduty=True)
    send_request(app, admin, target)
    return make_key(app, admin)


@pytest.mark.both_databases
def test_no_input_breaks_the_api_or_its_document(app, admin_key):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    assert schema.raw_schema["openapi"] == "3.1.0"
    headers = {"Authorization": f"Bearer {admin_key}"}
    tried = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def conforms(case):
            case.call_and_validate(headers=headers, checks=CHECKS)
            label = f"{case.method} {case.path}"
            tried[label] = tried.get(label, 0) + 1

        conforms()
    assert len(tried) == len(spec.OPERATIONS), tried
    print(f"schemathesis: {sum(tried.values())} requests over {len(tried)} operations")


def test_the_document_is_valid_openapi_3_1(client):
    from schemathesis.specs.openapi.definitions import OPENAPI_31

    document = client.get("/api/v1/openapi.json").json
    validator = jsonschema.validators.validator_for(OPENAPI_31)(OPENAPI_31)
    assert [error.message for error in validator.iter_errors(document)] == []
    assert document["openapi"] == "3.1.0" and document["components"]["securitySchemes"]
