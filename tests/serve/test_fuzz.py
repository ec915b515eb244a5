"""Schemathesis fuzz of the OpenAPI schema against a real server: valid and invalid requests
for every operation; no 5xx, and every status code, content type and body is the documented
one. Bounded: a fixed number of examples per operation and mode."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.serve.conftest import thread_server

MAX_EXAMPLES = 25


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(artifact: Path, tmp_path: Path, mode: GenerationMode) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    with thread_server(
        artifacts=artifact, store=store, admin_token="fuzz-admin-token-0123"
    ) as live:
        schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert {op.label for op in operations} >= {"GET /recommend", "POST /events", "PUT /items"}
        for operation in operations:
            try:
                _fuzz(operation.as_strategy(generation_mode=mode))
            except Unsatisfiable:  # nothing to make invalid (e.g. GET /health has no input)
                assert mode is GenerationMode.NEGATIVE


def _fuzz(strategy: st.SearchStrategy[schemathesis.Case]) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(
            checks=[
                not_a_server_error,
                response_schema_conformance,
                status_code_conformance,
                content_type_conformance,
            ]
        )

    run()
