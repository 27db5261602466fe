"""The gateway's log filter masks identifiers in every record, whoever logs it.

Pure: builds log records and loggers in memory (no chain, no database, no app), and checks
what a handler behind `MaskingFilter` finally writes. Brand member ids have no pattern to
mask, so the last test parses the gateway's source (`ast`, nothing imported) and refuses
any logging call that is handed one, or a whole request body.
"""

from __future__ import annotations

import ast
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.logging import MaskingFilter, configure_logging, mask_identifiers

MEMBER = "mbr_1a2b3c4d5e6f708192a3b4c5"
ADDRESS = "0x52908400098527886E0F7030069857D2E4169EE7"
TX_HASH = "0x" + "ab" * 32


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        (f"member {MEMBER} deposited", "member mbr_1a2b… deposited"),
        (f"GET /v1/members/{MEMBER}/balances", "GET /v1/members/mbr_1a2b…/balances"),
        (f"to {ADDRESS}.", "to 0x5290…9EE7."),
        ("contact jane.doe+alliance@example.co.uk now", "contact j…@example.co.uk now"),
        (f"{MEMBER},{ADDRESS}", "mbr_1a2b…,0x5290…9EE7"),
    ],
)
def test_mask_identifiers_shortens_members_addresses_and_emails(raw: str, masked: str) -> None:
    assert mask_identifiers(raw) == masked


@pytest.mark.parametrize(
    "text",
    [
        f"tx {TX_HASH} mined",  # a transaction hash is public chain data, not an address
        "mbr_1a2b",  # too short to be a member id
        "operation 42 confirmed in block 17",
        "brand bean, amount 5000",
    ],
)
def test_mask_identifiers_leaves_other_text_alone(text: str) -> None:
    assert mask_identifiers(text) == text


def test_mask_identifiers_masks_every_occurrence() -> None:
    other = "mbr_ffff00000000000000000000"
    assert mask_identifiers(f"{MEMBER} gifts {other}") == "mbr_1a2b… gifts mbr_ffff…"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose only handler writes, through the masking filter, to a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("gateway.test_logging")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, buffer
    logger.removeHandler(handler)


def test_masking_filter_masks_interpolated_arguments(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = captured
    logger.info("member %s at %s wrote to %s", MEMBER, ADDRESS, "a.b@example.com")
    assert buffer.getvalue() == "member mbr_1a2b… at 0x5290…9EE7 wrote to a…@example.com\n"


def test_masking_filter_masks_exception_text(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, buffer = captured
    try:
        raise KeyError(f"no member {MEMBER}")
    except KeyError:
        logger.exception("lookup failed")
    written = buffer.getvalue()
    assert "Traceback" in written
    assert "mbr_1a2b…" in written
    assert MEMBER not in written


def test_masking_filter_masks_records_propagated_from_child_loggers() -> None:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(MaskingFilter())
    parent = logging.getLogger("gateway.test_parent")
    parent.addHandler(handler)
    parent.propagate = False
    child = logging.getLogger("gateway.test_parent.child")
    child.setLevel(logging.INFO)
    try:
        child.info("address %s", ADDRESS)
    finally:
        parent.removeHandler(handler)
    assert buffer.getvalue() == "address 0x5290…9EE7\n"


def test_configure_logging_installs_one_handler_with_the_filter() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        configure_logging()
        configure_logging()
        added = [handler for handler in root.handlers if handler not in before]
        assert len(added) == 1
        assert all(
            any(isinstance(f, MaskingFilter) for f in handler.filters) for handler in root.handlers
        )
    finally:
        logging.getLogger("gateway").setLevel(logging.NOTSET)
        for handler in list(root.handlers):
            if handler not in before:
                root.removeHandler(handler)
            for existing in list(handler.filters):
                if isinstance(existing, MaskingFilter):
                    handler.removeFilter(existing)


LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical", "log"}
SENSITIVE_NAMES = ("brand_member_id", "body", "ref_ciphertext")


def logging_calls(tree: ast.AST) -> Iterator[ast.Call]:
    """Calls like `logger.info(...)` or `logging.warning(...)` in `tree`."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LOG_METHODS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in ("logger", "logging", "log")
        ):
            yield node


def names_in(node: ast.AST) -> Iterator[str]:
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            yield child.id
        elif isinstance(child, ast.Attribute):
            yield child.attr


def test_no_gateway_logging_call_is_handed_a_brand_member_id_or_a_body() -> None:
    root = Path(__file__).resolve().parents[2] / "gateway"
    offenders = [
        f"{path.relative_to(root.parent)}:{call.lineno} logs {name}"
        for path in sorted(root.rglob("*.py"))
        for call in logging_calls(ast.parse(path.read_text(encoding="utf-8")))
        for argument in [*call.args, *(keyword.value for keyword in call.keywords)]
        for name in names_in(argument)
        if any(sensitive in name for sensitive in SENSITIVE_NAMES)
    ]
    assert offenders == []


def test_the_log_call_scanner_sees_a_leak() -> None:
    tree = ast.parse("logger.info('member %s', body.brand_member_id)")
    (call,) = logging_calls(tree)
    assert "brand_member_id" in set(names_in(call.args[1]))
