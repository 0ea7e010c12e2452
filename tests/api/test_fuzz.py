"""Schemathesis generates requests from our own OpenAPI schema: whatever it sends, never a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from core.api import create_app

schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


@schema.parametrize()
@settings(max_examples=12, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_request_makes_a_server_error(case, clinician) -> None:
    response = case.call(headers=clinician)
    case.validate_response(response, checks=[not_a_server_error])
