"""`alliance demo`: a guided tour of a running gateway, over HTTP only.

It does what brands would do: register members at their home brands, link one member at
a second brand with a link code, deposit, convert (one from a quote), gift and withdraw,
then prints what happened and where to look. Every run uses fresh brand member ids and
Idempotency-Keys, so it can run any number of times against the same gateway.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx

from alliance.errors import AllianceError

PREFERRED_BRANDS = ("bean", "sky", "cart")
"""The default alliance's brands, in the order the story uses them (bean and cart gift)."""
REQUEST_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 60.0
POLL_S = 0.2

Echo = Callable[[str], None]


@dataclass(eq=False)
class DemoFailed(AllianceError):
    """The demo could not go on (gateway unreachable, a refused request)."""

    code: ClassVar[str] = "demo_failed"
    reason: str

    def describe(self) -> str:
        return self.reason


@dataclass
class Member:
    """A demo member: who they are at their home brand, and their alliance id."""

    name: str
    home: str
    brand_member_id: str
    id: str = ""


@dataclass
class Gateway:
    """A thin HTTP client holding one bearer token per brand."""

    base_url: str
    http: httpx.Client
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    settled_operations: list[dict[str, Any]] = field(default_factory=list)

    def login(self, brand: str, client_id: str, client_secret: str) -> None:
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        token = self._check(self.http.post("/v1/oauth/token", data=form))["access_token"]
        self.headers[brand] = {"Authorization": f"Bearer {token}"}

    def post(self, brand: str, path: str, body: dict[str, Any], idempotent: bool = True) -> Any:
        headers = dict(self.headers[brand])
        if idempotent:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        return self._check(self.http.post(path, json=body, headers=headers))

    def get(self, brand: str, path: str) -> Any:
        return self._check(self.http.get(path, headers=self.headers[brand]))

    def settled(self, brand: str, operation: dict[str, Any]) -> dict[str, Any]:
        """The operation once final (polling its status URL)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while operation["status"] not in ("confirmed", "failed"):
            if time.monotonic() > deadline:
                raise DemoFailed(f"operation {operation['id']} is still {operation['status']}")
            time.sleep(POLL_S)
            operation = self.get(brand, f"/v1/operations/{operation['id']}")
        if operation["status"] == "failed":
            error = operation.get("error") or {}
            raise DemoFailed(f"operation {operation['id']} failed: {error.get('code')}")
        self.settled_operations.append(operation)
        return operation

    def has_path(self, path: str) -> bool:
        return path in self._check(self.http.get("/openapi.json")).get("paths", {})

    @staticmethod
    def _check(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                problem = response.json()
                detail = f"{problem.get('code')}: {problem.get('detail')}"
            except ValueError:
                detail = response.text[:200]
            request = response.request
            raise DemoFailed(
                f"{request.method} {request.url.path} → {response.status_code} {detail}"
            )
        return response.json()


def run_demo(base_url: str, clients_file: Path, manifest_file: Path, echo: Echo) -> None:
    """Run the story against the gateway at `base_url` and print it."""
    credentials = _brand_credentials(clients_file)
    brands = _story_brands(list(credentials))
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as http:
        gateway = Gateway(base_url, http)
        try:
            http.get("/health").raise_for_status()
        except httpx.HTTPError as error:
            raise DemoFailed(
                f"the gateway is not reachable at {base_url} ({type(error).__name__}); "
                "start it with `alliance up`"
            ) from None
        for brand in brands:
            gateway.login(brand, *credentials[brand])
        echo(f"Gateway {base_url}; brands {', '.join(brands)}\n")
        members = _story(gateway, brands, echo)
    _where_to_look(base_url, manifest_file, members, gateway.settled_operations, echo)


def _story(gateway: Gateway, brands: list[str], echo: Echo) -> list[Member]:
    a, b, c = brands[0], brands[1], brands[2 % len(brands)]
    run = uuid.uuid4().hex[:6]
    members = [
        Member("alice", a, f"demo-{run}-alice"),
        Member("bob", a, f"demo-{run}-bob"),
        Member("carol", b, f"demo-{run}-carol"),
        Member("dave", c, f"demo-{run}-dave"),
    ]
    alice, bob, carol, dave = members
    echo("1. Register members at their home brands")
    for member in members:
        created = gateway.post(
            member.home, "/v1/members", {"brand_member_id": member.brand_member_id}
        )
        member.id = created["id"]
        echo(f"   {member.name:<6} at {member.home:<5} → {member.id}")

    echo(f"2. Link alice at {b} with a one-time code from {a}")
    code = gateway.post(a, f"/v1/members/{alice.id}/link-codes", {})["link_code"]
    linked = gateway.post(
        b,
        "/v1/members/link",
        {"brand_member_id": f"{alice.brand_member_id}-{b}", "link_code": code},
    )
    echo(f"   alice is now known at {', '.join(linked['brands'])}")

    echo("3. Deposit points from the brands' own programmes (mint)")
    for member, amount in ((alice, 5000), (bob, 1500), (carol, 3000), (dave, 4000)):
        _deposit(gateway, member, amount, echo)
    balances_path = "/v1/members/{member_id}/balances"
    show_balances = gateway.has_path(balances_path)
    if show_balances:
        _print_balances(gateway, members, "Balances before conversions", echo)

    echo(f"4. Convert alice's {a} points to {b}, from a quote")
    quote = gateway.post(
        a,
        "/v1/quotes",
        {
            "member_id": alice.id,
            "from_brand": a,
            "to_brand": b,
            "amount_in": 1000,
            "slippage_bps": 50,
        },
        idempotent=False,
    )
    echo(
        f"   quote: 1000 {a} → {quote['amount_out']} {b} (fee {quote['fee_points']}, "
        f"at least {quote['min_amount_out']}, until {quote['expires_at']})"
    )
    converted = gateway.settled(
        a,
        gateway.post(a, "/v1/conversions", {"member_id": alice.id, "quote_id": quote["quote_id"]}),
    )
    _print_conversion(converted, a, b, echo)

    target = a if c != a else b
    echo(f"5. Convert dave's {c} points to {target}, with an explicit minimum")
    body = {
        "member_id": dave.id,
        "from_brand": c,
        "to_brand": target,
        "amount_in": 2000,
        "min_amount_out": 1,
    }
    converted = gateway.settled(c, gateway.post(c, "/v1/conversions", body))
    _print_conversion(converted, c, target, echo)

    echo(f"6. Gift: alice gives bob 250 {a} points")
    gift = {"brand": a, "from_member_id": alice.id, "to_member_id": bob.id, "amount": 250}
    try:
        done = gateway.settled(a, gateway.post(a, "/v1/gifts", gift))
        echo(f"   operation {done['id']} confirmed (tx {done['result']['tx_hash'][:12]}…)")
    except DemoFailed as refused:
        echo(f"   skipped: {refused}")

    echo("7. Withdraw points back to the brands' programmes (burn)")
    for brand, member, amount in ((b, alice, 200), (b, carol, 500)):
        body = {
            "member_id": member.id,
            "amount": amount,
            "brand_transaction_id": f"demo-{run}-w-{member.name}",
        }
        done = gateway.settled(brand, gateway.post(brand, "/v1/withdrawals", body))
        echo(f"   {member.name:<6} {amount:>6} {brand:<5} → operation {done['id']} confirmed")
    if show_balances:
        _print_balances(gateway, members, "Balances after", echo)
    else:
        echo("\n(the balances endpoint is not available on this gateway; see the operations)")
    return members


def _deposit(gateway: Gateway, member: Member, amount: int, echo: Echo) -> None:
    body = {
        "member_id": member.id,
        "amount": amount,
        "source": "spend",
        "brand_transaction_id": f"{member.brand_member_id}-d-{uuid.uuid4().hex[:8]}",
    }
    done = gateway.settled(member.home, gateway.post(member.home, "/v1/deposits", body))
    echo(f"   {member.name:<6} {amount:>6} {member.home:<5} → operation {done['id']} confirmed")


def _print_conversion(operation: dict[str, Any], source: str, target: str, echo: Echo) -> None:
    result = operation["result"]
    echo(
        f"   operation {operation['id']} confirmed: {result['amount_in']} {source} → "
        f"{result['amount_out']} {target} (fee {result['fee_points']} {target})"
    )


def _print_balances(gateway: Gateway, members: list[Member], title: str, echo: Echo) -> None:
    echo(f"\n   {title}:")
    for member in members:
        found = gateway.get(member.home, f"/v1/members/{member.id}/balances")["balances"]
        shown = "  ".join(f"{row['brand']} {row['balance']:>6}" for row in found)
        echo(f"   {member.name:<6} {shown}")
    echo("")


def _where_to_look(
    base_url: str,
    manifest_file: Path,
    members: list[Member],
    operations: list[dict[str, Any]],
    echo: Echo,
) -> None:
    echo("Where to look")
    echo(f"   API docs          {base_url}/docs  (OpenAPI at {base_url}/openapi.json)")
    echo(f"   manifest          {manifest_file}")
    echo(
        f"   a member's ops    {base_url}/v1/members/{members[0].id}/history  (with a brand token)"
    )
    echo(f"   an operation      {base_url}/v1/operations/<id>  (with its brand's token)")
    listed = ", ".join(f"{op['id']} {op['kind']} ({op['brand']})" for op in operations)
    echo(f"   this run's ops    {listed}")
    echo(f"   metrics, health   {base_url}/metrics, {base_url}/ready")


def _brand_credentials(clients_file: Path) -> dict[str, tuple[str, str]]:
    """(client id, secret) by brand code, from the development credentials file."""
    if not clients_file.exists():
        raise DemoFailed(
            f"no gateway credentials at {clients_file}; start the gateway with `alliance up`"
        )
    stored = json.loads(clients_file.read_text())
    return {
        entry["brand"]: (entry["client_id"], entry["client_secret"])
        for entry in stored.values()
        if entry.get("kind") == "brand" and entry.get("brand")
    }


def _story_brands(available: list[str]) -> list[str]:
    """The brands in story order: the default alliance's first, then any others."""
    ordered = [code for code in PREFERRED_BRANDS if code in available]
    ordered += sorted(code for code in available if code not in ordered)
    if len(ordered) < 2:
        raise DemoFailed(f"the demo needs at least two brands, found {ordered}")
    return ordered
