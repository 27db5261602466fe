"""Who may call what: every route of the live gateway against every kind of credential.

`ROWS` has one row per route of the OpenAPI document: how to build a valid request for a
caller, and the status each authenticated caller must get (docs/api.md, "Authentication":
a brand reaches only its own members and operations, another brand's answer 404 so their
existence is not disclosed, a scope the client lacks answers 403). Every route is called
with each credential: the bean brand (which owns the resources the rows point at), the
sky brand, the operator, the auditor, and five kinds of bad credentials (none, not a
bearer scheme, garbage, an expired token with a valid signature, a valid-looking operator
token signed with another key), which must all get 401 problems with
`WWW-Authenticate: Bearer` — except on the public routes, which answer alike for all.
Refusals are problem+json with the matching code, and an answer to a caller that does not
own the resource never contains that resource's data.

`test_every_route_has_a_row` fails when the OpenAPI document gains a route the table does
not classify (or a row names a route that is gone): new endpoints slot in as new rows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest

from tests.gateway.api_client import Api, assert_problem, conversion_body, deposit_body
from tests.gateway.stack import Stack
from tests.gateway.wallets import new_wallet, register_wallet_member, signed_custody

BRAND_CALLERS = ("bean", "sky")
CALLERS = ("bean", "sky", "operator", "auditor")
BAD_CREDENTIALS = ("none", "not_bearer", "garbage", "expired", "wrong_key")
CLIENT_OF = {"bean": "brand-bean", "sky": "brand-sky", "operator": "operator", "auditor": "auditor"}
CODE_OF_STATUS = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "operation_not_cancellable",
}
UNCHANGED_POLICY = {
    "enabled": True,
    "fee_bps": 100,
    "min_amount_out": 1,
    "max_amount_out": 1_000_000,
    "daily_cap": 100_000_000,
}
"""config/alliance.yaml's default pair policy: what the PUT row sets (so nothing changes)."""


@dataclass
class World:
    """Resources owned by the bean brand that the rows point at."""

    api: Api
    member: dict[str, Any]
    recipient: dict[str, Any]
    operation_id: int
    webhook_ids: list[str] = field(default_factory=list)

    @property
    def secrets(self) -> list[str]:
        """What no caller but bean, the operator and the auditor may ever be shown."""
        return [self.member["address"], self.member["brand_member_id"]]

    def link_code(self) -> str:
        """A fresh consent from cart to link a fresh cart member elsewhere."""
        cart_member = self.api.register_member("cart")
        response = self.api.post(f"/v1/members/{cart_member['id']}/link-codes", {}, "brand-cart")
        assert response.status_code == 201, response.text
        return str(response.json()["link_code"])

    def webhook(self) -> str:
        response = self.api.post("/v1/webhooks", {"url": "http://127.0.0.1:9/hook"}, "brand-bean")
        assert response.status_code == 201, response.text
        self.webhook_ids.append(response.json()["id"])
        return str(response.json()["id"])


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[World]:
    stack.ensure_gateway()
    api = stack.api
    member = api.register_member("bean")
    operation = api.wait_final(api.deposit(member["id"], 100_000)["id"])
    assert operation["status"] == "confirmed", operation
    code = api.post(f"/v1/members/{member['id']}/link-codes", {}, "brand-bean").json()
    linked = api.post(
        "/v1/members/link",
        {"brand_member_id": uuid.uuid4().hex, "link_code": code["link_code"]},
        "brand-cart",
    )
    assert linked.status_code == 200, linked.text
    built = World(api, member, api.register_member("bean"), operation["id"])
    built.webhook_ids.append(built.webhook())
    yield built
    for brand in ("brand-bean", "brand-sky"):
        for webhook in api.get("/v1/webhooks", brand).json():
            api.http.delete(f"/v1/webhooks/{webhook['id']}", headers=api.auth(brand))


@dataclass(frozen=True)
class Call:
    path: str
    json: Any = None
    form: dict[str, str] | None = None


Build = Callable[[World, str], Call]


@dataclass(frozen=True)
class Row:
    """A route, how to call it validly as a caller, and what each caller must get."""

    method: str
    path: str
    build: Build
    expect: dict[str, int | frozenset[int]]
    public: bool = False
    codes: dict[int, str] = field(default_factory=dict)
    """Problem codes that differ from `CODE_OF_STATUS` (e.g. 404 `period_not_settled`)."""


def brand_write(success: int | frozenset[int]) -> dict[str, int | frozenset[int]]:
    """A brand acting on the bean brand's resource: sky must not see it exists."""
    return {"bean": success, "sky": 404, "operator": 403, "auditor": 403}


def any_brand_write(success: int | frozenset[int]) -> dict[str, int | frozenset[int]]:
    """A brand acting on its own behalf (no other brand's resource involved)."""
    return {"bean": success, "sky": success, "operator": 403, "auditor": 403}


OWN_READ = {"bean": 200, "sky": 404, "operator": 200, "auditor": 200}
SHARED_READ = dict.fromkeys(CALLERS, 200)
OPERATOR_ONLY = {"bean": 403, "sky": 403, "operator": 200, "auditor": 403}
ALL_404 = dict.fromkeys(CALLERS, 404)
NO_ALERT = "alr_000000000000000000000000"
OPEN_PERIOD = "29991231"
"""A settlement period never closed."""
NOT_SETTLED = {404: "period_not_settled"}
SETTLED_SYNC = frozenset({201, 202})
"""A synchronous write: 201 when final within `sync_wait_s`, else 202."""


def _token_form(world: World, caller: str) -> Call:
    credentials = world.api.credentials("brand-bean")
    return Call(
        "/v1/oauth/token",
        form={
            "grant_type": "client_credentials",
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
        },
    )


def _member_path(suffix: str = "") -> Build:
    return lambda w, c: Call(f"/v1/members/{w.member['id']}{suffix}")


def _gift(world: World, caller: str) -> Call:
    return Call(
        "/v1/gifts",
        {
            "brand": caller if caller in BRAND_CALLERS else "bean",
            "from_member_id": world.member["id"],
            "to_member_id": world.recipient["id"],
            "amount": 1,
        },
    )


def _custody_change(world: World, caller: str) -> Call:
    """Bean hands a fresh wallet member of its own back to the operator, signed by the
    member; the others try the same on a bean wallet member (its existence not disclosed)."""
    member, wallet = register_wallet_member(world.api)
    body = {"enabled": False, **signed_custody(world.api, wallet, False)}
    return Call(f"/v1/members/{member['id']}/custody", body)


def _pair_policy(world: World, caller: str) -> Call:
    sending = "bean" if caller == "sky" else "sky"
    return Call(f"/v1/pair-policies/{sending}", UNCHANGED_POLICY)


ROWS = [
    Row("POST", "/v1/oauth/token", _token_form, dict.fromkeys(CALLERS, 200), public=True),
    Row("GET", "/health", lambda w, c: Call("/health"), SHARED_READ, public=True),
    Row("GET", "/ready", lambda w, c: Call("/ready"), SHARED_READ, public=True),
    Row("GET", "/metrics", lambda w, c: Call("/metrics"), SHARED_READ, public=True),
    # Members.
    Row(
        "POST",
        "/v1/members",
        lambda w, c: Call("/v1/members", {"brand_member_id": uuid.uuid4().hex}),
        any_brand_write(201),
    ),
    Row(
        "POST",
        "/v1/members/link",
        lambda w, c: Call(
            "/v1/members/link", {"brand_member_id": uuid.uuid4().hex, "link_code": w.link_code()}
        ),
        any_brand_write(200),
    ),
    Row(
        "POST",
        "/v1/members/{member_id}/link-codes",
        lambda w, c: Call(f"/v1/members/{w.member['id']}/link-codes", {}),
        brand_write(201),
    ),
    Row(
        "POST",
        "/v1/members/{member_id}/custody",
        _custody_change,
        brand_write(SETTLED_SYNC),
    ),
    Row(
        "GET",
        "/v1/members/custody-message",
        lambda w, c: Call(f"/v1/members/custody-message?address={new_wallet().address}"),
        SHARED_READ,
    ),
    Row("GET", "/v1/members/{member_id}", _member_path(), OWN_READ),
    Row("GET", "/v1/members/{member_id}/balances", _member_path("/balances"), OWN_READ),
    Row("GET", "/v1/members/{member_id}/history", _member_path("/history"), OWN_READ),
    Row(
        "GET",
        "/v1/operations/{operation_id}",
        lambda w, c: Call(f"/v1/operations/{w.operation_id}"),
        OWN_READ,
    ),
    # Movements.
    Row(
        "POST",
        "/v1/deposits",
        lambda w, c: Call("/v1/deposits", deposit_body(w.member["id"], 1)),
        brand_write(202),
    ),
    Row(
        "POST",
        "/v1/withdrawals",
        lambda w, c: Call(
            "/v1/withdrawals",
            {"member_id": w.member["id"], "amount": 1, "brand_transaction_id": uuid.uuid4().hex},
        ),
        brand_write(202),
    ),
    Row(
        "POST",
        "/v1/quotes",
        lambda w, c: Call("/v1/quotes", conversion_body(w.member["id"], "bean", "sky", 100)),
        brand_write(201),
    ),
    Row(
        "POST",
        "/v1/conversions",
        lambda w, c: Call("/v1/conversions", conversion_body(w.member["id"], "bean", "sky", 100)),
        brand_write(SETTLED_SYNC),
    ),
    Row("POST", "/v1/gifts", _gift, brand_write(202)),
    Row(
        "POST",
        "/v1/moves",
        lambda w, c: Call(
            "/v1/moves",
            {
                "member_id": w.member["id"],
                "to_brand": "cart",
                "amount": 100,
                "brand_transaction_id": uuid.uuid4().hex,
            },
        ),
        brand_write(202),
    ),
    # Rates and pair policies.
    Row("GET", "/v1/rates", lambda w, c: Call("/v1/rates"), SHARED_READ),
    Row("GET", "/v1/rates/{brand}", lambda w, c: Call("/v1/rates/bean"), SHARED_READ),
    Row("GET", "/v1/pair-policies", lambda w, c: Call("/v1/pair-policies"), SHARED_READ),
    Row("PUT", "/v1/pair-policies/{from_brand}", _pair_policy, any_brand_write(SETTLED_SYNC)),
    # Webhooks.
    Row(
        "POST",
        "/v1/webhooks",
        lambda w, c: Call("/v1/webhooks", {"url": "http://127.0.0.1:9/matrix"}),
        any_brand_write(201),
    ),
    Row("GET", "/v1/webhooks", lambda w, c: Call("/v1/webhooks"), any_brand_write(200)),
    Row(
        "DELETE",
        "/v1/webhooks/{webhook_id}",
        lambda w, c: Call(f"/v1/webhooks/{w.webhook() if c == 'bean' else w.webhook_ids[0]}"),
        brand_write(204),
    ),
    # Operator.
    Row(
        "GET",
        "/v1/admin/operations/stuck",
        lambda w, c: Call("/v1/admin/operations/stuck"),
        OPERATOR_ONLY,
    ),
    Row(
        "POST",
        "/v1/admin/operations/{operation_id}/cancel",
        lambda w, c: Call(
            f"/v1/admin/operations/{w.operation_id}/cancel", {"reason": "permission matrix"}
        ),
        OPERATOR_ONLY | {"operator": 409},
    ),
    Row(
        "POST",
        "/v1/admin/operations/{operation_id}/resubmit",
        lambda w, c: Call(
            f"/v1/admin/operations/{w.operation_id}/resubmit", {"reason": "permission matrix"}
        ),
        OPERATOR_ONLY | {"operator": 409},
    ),
    Row(
        "GET",
        "/v1/admin/actions/{action_id}",
        lambda w, c: Call("/v1/admin/actions/2000000"),
        OPERATOR_ONLY | {"operator": 404},
    ),
    # Fraud alerts and freezes (tests/settlement/test_fraud_chain.py acts on real ones; here
    # unknown ids: the scope check comes first, then the lookup).
    Row("GET", "/v1/alerts", lambda w, c: Call("/v1/alerts"), SHARED_READ),
    Row("GET", "/v1/alerts/{alert_id}", lambda w, c: Call(f"/v1/alerts/{NO_ALERT}"), ALL_404),
    Row(
        "POST",
        "/v1/alerts/{alert_id}/acknowledge",
        lambda w, c: Call(f"/v1/alerts/{NO_ALERT}/acknowledge", {}),
        ALL_404 | {"auditor": 403},
    ),
    Row(
        "POST",
        "/v1/alerts/{alert_id}/freezes",
        lambda w, c: Call(
            f"/v1/alerts/{NO_ALERT}/freezes", {"brand": c if c in BRAND_CALLERS else "bean"}
        ),
        ALL_404 | {"auditor": 403},
    ),
    Row("GET", "/v1/freezes/{freeze_id}", lambda w, c: Call("/v1/freezes/frz_00"), ALL_404),
    Row(
        "POST",
        "/v1/freezes/{freeze_id}/approve",
        lambda w, c: Call("/v1/freezes/frz_00/approve", {}),
        ALL_404 | {"auditor": 403},
    ),
    # Settlement (tests/settlement/test_settlement_api.py acts on a closed period; here one
    # never closed: brands may report for it, and nobody finds statements of it).
    Row(
        "POST",
        "/v1/settlement/periods/{period_id}/liability-report",
        lambda w, c: Call(
            f"/v1/settlement/periods/{OPEN_PERIOD}/liability-report", {"liability_points": 0}
        ),
        any_brand_write(200),
    ),
    Row(
        "GET",
        "/v1/settlement/periods/{period_id}/statements/{brand}",
        lambda w, c: Call(f"/v1/settlement/periods/{OPEN_PERIOD}/statements/bean"),
        ALL_404,
        codes=NOT_SETTLED,
    ),
    Row(
        "GET",
        "/v1/settlement/periods/{period_id}/statements.json",
        lambda w, c: Call(f"/v1/settlement/periods/{OPEN_PERIOD}/statements.json"),
        ALL_404,
        codes=NOT_SETTLED,
    ),
    Row(
        "GET",
        "/v1/settlement/periods/{period_id}/report.html",
        lambda w, c: Call(f"/v1/settlement/periods/{OPEN_PERIOD}/report.html"),
        ALL_404,
        codes=NOT_SETTLED,
    ),
    Row(
        "POST",
        "/v1/settlement/periods/{period_id}/acknowledgement",
        lambda w, c: Call(f"/v1/settlement/periods/{OPEN_PERIOD}/acknowledgement", {}),
        any_brand_write(404),
        codes=NOT_SETTLED,
    ),
]


def _headers(api: Api, credential: str) -> dict[str, str]:
    if credential in CLIENT_OF:
        return api.auth(CLIENT_OF[credential])
    token = {
        "none": None,
        "not_bearer": "Basic YnJhbmQtYmVhbjpzZWNyZXQ=",
        "garbage": "Bearer not.a.token",
        "expired": "Bearer " + api.forged_token("brand-bean", expires_in_s=-60),
        "wrong_key": "Bearer "
        + api.forged_token("operator", expires_in_s=600, key=b"another key of thirty-two bytes!"),
    }[credential]
    return {"Authorization": token} if token else {}


def _send(api: Api, row: Row, call: Call, credential: str) -> httpx.Response:
    headers = _headers(api, credential)
    if row.method in ("POST", "PUT"):
        headers["Idempotency-Key"] = uuid.uuid4().hex
    if call.form is not None:
        return api.http.request(row.method, call.path, data=call.form, headers=headers)
    return api.http.request(row.method, call.path, json=call.json, headers=headers)


def _expected(row: Row, credential: str) -> frozenset[int]:
    if credential in BAD_CREDENTIALS:
        expected = row.expect["bean"] if row.public else 401
    else:
        expected = row.expect[credential]
    return expected if isinstance(expected, frozenset) else frozenset({expected})


@pytest.mark.parametrize("credential", CALLERS + BAD_CREDENTIALS)
@pytest.mark.parametrize("row", ROWS, ids=[f"{row.method} {row.path}" for row in ROWS])
def test_each_credential_gets_exactly_its_documented_status(
    stack: Stack, world: World, row: Row, credential: str
) -> None:
    stack.ensure_gateway()
    call = row.build(world, credential)

    response = _send(world.api, row, call, credential)

    expected = _expected(row, credential)
    assert response.status_code in expected, (sorted(expected), response.text)
    code = row.codes.get(response.status_code) or CODE_OF_STATUS.get(response.status_code)
    if code is not None:
        assert_problem(response, response.status_code, code)
    if response.status_code == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"
    if credential not in ("bean", "operator", "auditor"):
        assert not any(secret in response.text for secret in world.secrets), response.text


def test_every_route_has_a_row(api: Api) -> None:
    in_document = api.routes()
    in_table = {(row.method, row.path) for row in ROWS}

    assert in_document - in_table == set(), "routes without a permission row"
    assert in_table - in_document == set(), "rows for routes that no longer exist"


@pytest.mark.parametrize(
    ("form_change", "status", "code"),
    [
        ({"client_secret": "not-the-secret"}, 401, "unauthorized"),
        ({"client_id": "brand-nobody"}, 401, "unauthorized"),
        ({"grant_type": "password"}, 401, "unauthorized"),
        # An empty form field counts as missing: the form does not parse.
        ({"client_secret": ""}, 422, "validation_failed"),
    ],
    ids=["wrong-secret", "unknown-client", "wrong-grant-type", "empty-secret"],
)
def test_bad_client_credentials_get_a_problem_and_no_token(
    api: Api, form_change: dict[str, str], status: int, code: str
) -> None:
    credentials = api.credentials("brand-bean")
    form = {
        "grant_type": "client_credentials",
        "client_id": credentials["client_id"],
        "client_secret": credentials["client_secret"],
    } | form_change

    response = api.http.post("/v1/oauth/token", data=form)

    body = assert_problem(response, status, code)
    assert "access_token" not in body
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_token_carries_the_clients_scope(api: Api) -> None:
    for client_id, scope in [
        ("brand-bean", "brand"),
        ("operator", "operator"),
        ("auditor", "auditor"),
    ]:
        response = api.token_response(client_id)
        assert response.status_code == 200, response.text
        assert response.json()["scope"] == scope
        assert response.json()["token_type"] == "Bearer"


def test_a_token_accepted_once_is_refused_once_it_expires(api: Api) -> None:
    # The gateway remembers verified tokens (no re-verification per request); what it
    # remembers must end at the token's own expiry.
    token = api.forged_token("brand-bean", expires_in_s=2)
    headers = {"Authorization": f"Bearer {token}"}
    assert api.http.get("/v1/rates", headers=headers).status_code == 200
    assert api.http.get("/v1/rates", headers=headers).status_code == 200
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires_at - time.time()))

    response = api.http.get("/v1/rates", headers=headers)

    assert_problem(response, 401, "unauthorized")


def test_each_brand_sees_only_its_own_id_for_a_member_of_two_brands(api: Api, world: World) -> None:
    bean_view = api.get(f"/v1/members/{world.member['id']}", "brand-bean").json()
    cart_view = api.get(f"/v1/members/{world.member['id']}", "brand-cart").json()
    operator_view = api.get(f"/v1/members/{world.member['id']}", "operator").json()

    assert bean_view["brand_member_id"] == world.member["brand_member_id"]
    assert cart_view["brand_member_id"] not in (None, world.member["brand_member_id"])
    assert world.member["brand_member_id"] not in str(cart_view)
    assert operator_view["brand_member_id"] is None
    assert bean_view["brands"] == cart_view["brands"] == ["bean", "cart"]


@pytest.fixture
def strict_rate_limit(stack: Stack) -> Iterator[Stack]:
    """The session gateway restarted with a burst of 5 requests per client, refilled so
    slowly (one per 100 s) that a slow machine cannot refill it during the test."""
    limits = {
        "ALLIANCE_GATEWAY_RATE_LIMIT_BURST": "5",
        "ALLIANCE_GATEWAY_RATE_LIMIT_PER_S": "0.01",
    }
    stack.gateway.restart(stack.gateway_env | limits)
    try:
        yield stack
    finally:
        stack.gateway.restart(stack.gateway_env)


def test_a_client_over_its_rate_limit_gets_429_and_others_are_not_slowed(
    strict_rate_limit: Stack,
) -> None:
    api = strict_rate_limit.api
    headers = api.auth("brand-bean")

    answers = [api.http.get("/v1/rates", headers=headers) for _ in range(7)]
    other = api.get("/v1/rates", "brand-sky")

    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2, answers[-1].text
    assert_problem(answers[-1], 429, "rate_limited")
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert other.status_code == 200, other.text
