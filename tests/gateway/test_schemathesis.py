"""Property-based fuzzing of the live gateway from its own OpenAPI document: no request,
however odd, gets a server error.

Schemathesis (the `st` CLI of the venv) generates requests for every operation of
`/openapi.json` — its coverage, fuzzing and stateful phases, with a fixed seed and a bounded
number of examples — and checks `not_a_server_error` on each answer. It generates the
`Idempotency-Key` header itself (the document declares it). To get past the 404s of
random ids, a config file offers real member ids, operation ids and brand codes as
dictionary values half of the time, so conversions, deposits and quotes reach the chain.

Two runs: as the bean brand over every operation, and as the operator over the routes
only an operator gets past authorisation on (admin) plus the reads it shares.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway.stack import Stack

SCHEMATHESIS = Path(sys.executable).parent / "st"
SEED = 20_261_123
EXAMPLES_MAX = 20
RUN_TIMEOUT_S = 600
OPERATOR_ROUTES = r"^/v1/(admin/|operations/|members/\{member_id\}$)"


def _config(stack: Stack, directory: Path) -> Path:
    api = stack.api
    member = api.funded_member("bean", 1_000_000)
    operations = [operation.id for operation in stack.books.operations_of(member["id"])]
    brands = '"bean", "sky", "cart"'
    path = directory / "schemathesis.toml"
    path.write_text(
        f"""
[dictionaries.members]
values = ["{member["id"]}"]
[dictionaries.operations]
values = {operations}
[dictionaries.brands]
values = [{brands}]

[parameters]
"path.member_id" = {{ dictionary = "members", probability = 0.5 }}
"body.member_id" = {{ dictionary = "members", probability = 0.5 }}
"body.from_member_id" = {{ dictionary = "members", probability = 0.5 }}
"body.to_member_id" = {{ dictionary = "members", probability = 0.5 }}
"path.operation_id" = {{ dictionary = "operations", probability = 0.5 }}
"body.from_brand" = {{ dictionary = "brands", probability = 0.7 }}
"body.to_brand" = {{ dictionary = "brands", probability = 0.7 }}
"body.brand" = {{ dictionary = "brands", probability = 0.7 }}
"path.brand" = {{ dictionary = "brands", probability = 0.7 }}
"path.from_brand" = {{ dictionary = "brands", probability = 0.7 }}
"""
    )
    return path


def _run(stack: Stack, client_id: str, directory: Path, *extra: str) -> None:
    config = _config(stack, directory)
    command = [
        str(SCHEMATHESIS), "--config-file", str(config), "run",
        stack.gateway.base_url + "/openapi.json",
        "--checks", "not_a_server_error",
        "-H", f"Authorization: Bearer {stack.api.token(client_id)}",
        "--phases", "coverage,fuzzing,stateful",
        "--max-examples", str(EXAMPLES_MAX),
        "--seed", str(SEED),
        # One worker: hypothesis parses lambda sources with `ast`, and CPython 3.11's AST
        # recursion counter is not thread-safe (concurrent parses fail spuriously).
        "--workers", "1",
        "--request-timeout", "30",
        *extra,
    ]  # fmt: skip

    finished = subprocess.run(
        command, cwd=directory, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )

    report = finished.stdout[-6_000:] + finished.stderr[-2_000:]
    assert finished.returncode == 0, report
    assert " passed" in report and "failures" not in report, report


@pytest.mark.slow
def test_no_generated_request_gets_a_server_error_as_a_brand(stack: Stack, tmp_path: Path) -> None:
    stack.ensure_gateway()
    _run(stack, "brand-bean", tmp_path)


@pytest.mark.slow
def test_no_generated_request_gets_a_server_error_as_the_operator(
    stack: Stack, tmp_path: Path
) -> None:
    stack.ensure_gateway()
    _run(stack, "operator", tmp_path, "--include-path-regex", OPERATOR_ROUTES)
