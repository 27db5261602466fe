"""SettlementAnchor: the settler writes each period's anchor once; brands acknowledge it.

Proves that an anchor is written once and never changed (a second write reverts with the
stored values, so a re-run can compare), that closing blocks are past blocks that only move
forward, that an empty anchor is refused, and that each brand's administrator, and nobody
else, acknowledges a period once for that brand. Runs on the session's deployed alliance in
an Anvil snapshot.

Note: Anvil's eth_estimateGas runs with `block.number` equal to the latest mined block, so
the newest closing block a transaction can name is the one before it.
"""

from __future__ import annotations

from web3.types import TxReceipt

from tests.support.alliance import DeployedAlliance, reverts

PERIOD_ID = 20261122
NEXT_PERIOD_ID = 20261123
ROOT = b"\x0a" * 32
STATEMENTS = b"\x5a" * 32
ZERO_HASH = b"\x00" * 32


def latest_block(alliance: DeployedAlliance) -> int:
    return int(alliance.client.w3.eth.block_number)


def anchor(
    alliance: DeployedAlliance,
    period_id: int = PERIOD_ID,
    closing_block: int | None = None,
    root: bytes = ROOT,
    statements: bytes = STATEMENTS,
) -> TxReceipt:
    """Anchor a period as the settler; the closing block defaults to the newest allowed."""
    closing_block = latest_block(alliance) - 1 if closing_block is None else closing_block
    function = alliance.anchor.functions.anchor(period_id, closing_block, root, statements)
    return alliance.transact(alliance.settler, function)


def acknowledge(alliance: DeployedAlliance, code: str, period_id: int = PERIOD_ID, by: str = ""):
    """Acknowledge `period_id` for brand `code`, as that brand's admin unless `by` names
    another brand whose admin should try."""
    admin = alliance.brand_party(by or code, "admin")
    function = alliance.anchor.functions.acknowledge(period_id, alliance.tokens[code].address)
    return alliance.transact(admin, function)


# ---------------------------------------------------------------- anchoring


def test_settler_anchors_a_period(alliance):
    closing_block = latest_block(alliance) - 1
    receipt = anchor(alliance, closing_block=closing_block)
    assert alliance.events(receipt, alliance.anchor, "PeriodAnchored") == [
        {
            "periodId": PERIOD_ID,
            "closingBlock": closing_block,
            "balancesRoot": ROOT,
            "statementsHash": STATEMENTS,
            "settler": alliance.settler.address,
        }
    ]
    anchored_at = alliance.client.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    stored = alliance.call(alliance.anchor.functions.anchorOf(PERIOD_ID))
    assert tuple(stored) == (closing_block, anchored_at, ROOT, STATEMENTS)
    assert alliance.call(alliance.anchor.functions.lastClosingBlock()) == closing_block


def test_unanchored_period_reads_as_all_zero(alliance):
    stored = alliance.call(alliance.anchor.functions.anchorOf(PERIOD_ID))
    assert tuple(stored) == (0, 0, ZERO_HASH, ZERO_HASH)


def test_period_is_anchored_once_and_the_error_carries_the_stored_anchor(alliance):
    anchor(alliance)
    stored = tuple(alliance.call(alliance.anchor.functions.anchorOf(PERIOD_ID)))
    with reverts("SettlementAnchorAlreadyAnchored", PERIOD_ID, ROOT, STATEMENTS):
        anchor(alliance)
    with reverts("SettlementAnchorAlreadyAnchored", PERIOD_ID, ROOT, STATEMENTS):
        anchor(alliance, root=b"\x0b" * 32, statements=b"\x5b" * 32)
    assert tuple(alliance.call(alliance.anchor.functions.anchorOf(PERIOD_ID))) == stored


def test_closing_block_must_be_a_past_block(alliance):
    current = latest_block(alliance)
    for closing_block in (current, current + 1, 2**40):
        with reverts("SettlementAnchorInvalidClosingBlock", closing_block, 0, current):
            anchor(alliance, closing_block=closing_block)


def test_closing_block_zero_is_rejected(alliance):
    with reverts("SettlementAnchorInvalidClosingBlock", 0, 0, latest_block(alliance)):
        anchor(alliance, closing_block=0)


def test_closing_blocks_only_move_forward(alliance):
    first_closing = latest_block(alliance) - 1
    anchor(alliance, closing_block=first_closing)
    current = latest_block(alliance)
    for closing_block in (first_closing, first_closing - 1):
        with reverts("SettlementAnchorInvalidClosingBlock", closing_block, first_closing, current):
            anchor(alliance, NEXT_PERIOD_ID, closing_block=closing_block)

    receipt = anchor(alliance, NEXT_PERIOD_ID, closing_block=first_closing + 1)
    [anchored] = alliance.events(receipt, alliance.anchor, "PeriodAnchored")
    assert (anchored["periodId"], anchored["closingBlock"]) == (NEXT_PERIOD_ID, first_closing + 1)


def test_anchor_with_an_empty_root_or_statements_hash_is_rejected(alliance):
    for root, statements in ((ZERO_HASH, STATEMENTS), (ROOT, ZERO_HASH)):
        with reverts("SettlementAnchorEmptyAnchor"):
            anchor(alliance, root=root, statements=statements)
    assert alliance.call(alliance.anchor.functions.lastClosingBlock()) == 0


# ---------------------------------------------------------------- acknowledgements


def test_brand_admin_acknowledges_an_anchored_period(alliance):
    anchor(alliance)
    receipt = acknowledge(alliance, "bean")
    bean = alliance.tokens["bean"].address
    assert alliance.events(receipt, alliance.anchor, "PeriodAcknowledged") == [
        {
            "periodId": PERIOD_ID,
            "token": bean,
            "acknowledgedBy": alliance.brand_party("bean", "admin").address,
        }
    ]
    assert alliance.call(alliance.anchor.functions.isAcknowledged(PERIOD_ID, bean))
    sky = alliance.tokens["sky"].address
    assert not alliance.call(alliance.anchor.functions.isAcknowledged(PERIOD_ID, sky))


def test_brand_acknowledges_a_period_once(alliance):
    anchor(alliance)
    acknowledge(alliance, "bean")
    bean = alliance.tokens["bean"].address
    with reverts("SettlementAnchorAlreadyAcknowledged", PERIOD_ID, bean.lower()):
        acknowledge(alliance, "bean")
    receipt = acknowledge(alliance, "sky")
    [acknowledged] = alliance.events(receipt, alliance.anchor, "PeriodAcknowledged")
    assert acknowledged["token"] == alliance.tokens["sky"].address


def test_another_brands_admin_cannot_acknowledge_for_this_brand(alliance):
    anchor(alliance)
    bean = alliance.tokens["bean"].address
    sky_admin = alliance.brand_party("sky", "admin").address
    with reverts("SettlementAnchorNotBrandAdmin", bean.lower(), sky_admin.lower()):
        acknowledge(alliance, "bean", by="sky")


def test_token_outside_the_alliance_cannot_acknowledge(alliance):
    """An allow-listed brand admin who deploys a token of its own does not get a voice."""
    sky_admin = alliance.brand_party("sky", "admin")
    rogue, _ = alliance.client.deploy(
        alliance.parties.alliance["deployer"],
        alliance.compiled.load_artifact("PointToken"),
        "Rogue Points",
        "ROGUE",
        alliance.governance.address,
        alliance.exchange.address,
        sky_admin.address,
    )
    anchor(alliance)
    with reverts("SettlementAnchorNotBrandAdmin", rogue.address.lower(), sky_admin.address.lower()):
        acknowledge_rogue = alliance.anchor.functions.acknowledge(PERIOD_ID, rogue.address)
        alliance.transact(sky_admin, acknowledge_rogue)


def test_acknowledging_an_unknown_period_is_rejected(alliance):
    with reverts("SettlementAnchorUnknownPeriod", PERIOD_ID):
        acknowledge(alliance, "bean")
