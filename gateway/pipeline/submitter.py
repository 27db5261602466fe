"""One submitter per signing key: owns its nonces, sends, tracks receipts, recovers.

The loop is: hold the key's lease → settle or re-send unfinished transactions → take the
next accepted operations, sign, commit the signed bytes, send. Committing before sending
is what makes a crash harmless (docs/gateway.md, "Pipeline").
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from sqlalchemy import Engine, Row, Table, bindparam, or_, select, update
from sqlalchemy.orm import Session, lazyload, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value
from web3.contract.contract import ContractFunction
from web3.exceptions import Web3RPCError
from web3.types import RPCEndpoint, TxParams, TxReceipt, Wei

from alliance.db.base import utc_now
from alliance.db.models import (
    ChainTransaction,
    Operation,
    OperationStatus,
    Signer,
    TransactionStatus,
)
from alliance.db.session import unit_of_work
from alliance.errors import ContractReverted
from gateway.ledger import CHAIN_DOWN, Ledger, error_code_for
from gateway.pipeline import interventions
from gateway.pipeline.calls import (
    BATCHED_KINDS,
    Outcome,
    batch_gas_limit,
    build_call,
    conversion_batch_calldata,
    outcomes,
    receipt_from_rpc,
)
from gateway.pipeline.failpoints import (
    AFTER_RECORD_BEFORE_SEND,
    AFTER_SEND_BEFORE_SETTLE,
    BEFORE_SIGNING,
    failpoint,
)
from gateway.pipeline.recovery import outcome_on_chain
from gateway.settings import GatewaySettings

logger = logging.getLogger("gateway.pipeline")

RECOVER_INTERVAL_S = 1.0
"""How often unfinished transactions and operators' actions are looked for (each submission
settles its own transaction at once; an action taken in this process wakes its submitter)."""

RECEIPT_POLL_S = 0.01
"""How soon a submitter looks again for the receipt of a transaction it sent that was not
mined at once (Anvil and QBFT mine within milliseconds to a block time); re-broadcasts of
such a transaction stay once per RECOVER_INTERVAL_S."""

RECEIPT_WAIT_S = 0.05
RECEIPT_WAIT_POLL_S = 0.002
"""A submitter waits up to RECEIPT_WAIT_S for the receipt of what it just sent, polling;
cheaper than a recovery pass per poll (which also reads the database and the nonce)."""

METHOD_NOT_FOUND = -32601
"""JSON-RPC error code of a method the node does not offer."""

LEASE_RETRY_S = 1.0
"""How often a submitter whose key another replica leases tries to take the lease."""

IDLE_WAIT_MAX_S = 0.5
"""Longest a submitter sleeps between looks for work while nothing wakes it (the sleep
doubles from `submit_idle_s` while idle; requests in this process wake it at once)."""

SettledHook = Callable[[Session, Operation], None]
"""Called inside the settling transaction for every operation that became final."""

_OPERATIONS = cast(Table, Operation.__table__)
_TRANSACTIONS = cast(Table, ChainTransaction.__table__)
# The looks every submitter takes while idle (a few per second each, for ~20 keys): Core
# statements built once, run on a bare connection, cost a fraction of an ORM query.
_HAS_ACCEPTED = (
    select(_OPERATIONS.c.id)
    .where(_OPERATIONS.c.signer == bindparam("signer"))
    .where(_OPERATIONS.c.status == OperationStatus.ACCEPTED.value)
    .limit(1)
)
_SUBMIT_OPERATIONS = (
    update(_OPERATIONS)
    .where(_OPERATIONS.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        status=OperationStatus.SUBMITTED.value,
        transaction_id=bindparam("tx"),
        updated_at=bindparam("now"),
    )
)
_UNFINISHED_TRANSACTIONS = (
    select(
        _TRANSACTIONS.c.id, _TRANSACTIONS.c.nonce, _TRANSACTIONS.c.tx_hash, _TRANSACTIONS.c.raw_tx
    )
    .where(_TRANSACTIONS.c.signer == bindparam("signer"))
    .where(_TRANSACTIONS.c.status == TransactionStatus.SENT.value)
    .order_by(_TRANSACTIONS.c.nonce)
)


class Submitter(threading.Thread):
    """Submits the operations of one signing key."""

    def __init__(
        self,
        name: str,
        account: LocalAccount,
        ledger: Ledger,
        sessions: sessionmaker[Session],
        settings: GatewaySettings,
        on_final: SettledHook,
        on_committed: Callable[[list[int]], None],
    ) -> None:
        super().__init__(name=f"submitter-{name}", daemon=True)
        self.signer_name = name
        self.account = account
        self.ledger = ledger
        self.sessions = sessions
        self.engine: Engine = sessions.kw["bind"]
        self.settings = settings
        self.on_final = on_final
        self.on_committed = on_committed
        self.wakeup = threading.Event()
        self.actions_waiting = threading.Event()
        """Set with `wakeup` when an operator's action on this key was recorded."""
        self.stopping = threading.Event()
        self.owner = f"{uuid.uuid4().hex[:12]}"
        self._lease_renew_at = 0.0
        self._recover_at = 0.0
        self._batch_started_at = 0.0
        self._send_sync: bool | None = None
        """Whether the node answers `eth_sendRawTransactionSync` (None: not tried yet)."""
        self._unsettled = False
        """Whether a transaction this submitter knows of still waits for its receipt."""
        self._broadcast_at: dict[int, float] = {}
        """When each unsettled transaction (by row id) was last broadcast (monotonic)."""

    @property
    def address(self) -> ChecksumAddress:
        return self.account.address

    def stop(self) -> None:
        self.stopping.set()
        self.wakeup.set()

    def run(self) -> None:
        idle_s = self.settings.submit_idle_s
        while not self.stopping.is_set():
            try:
                progressed = self.step()
            except CHAIN_DOWN:
                logger.warning("%s: chain unreachable, retrying", self.signer_name)
                self._recover_at = 0.0
                self.stopping.wait(self.settings.chain_retry_s)
                continue
            except Exception:
                logger.exception("%s: submitter step failed", self.signer_name)
                self._recover_at = 0.0
                self._lease_renew_at = 0.0
                self.stopping.wait(self.settings.chain_retry_s)
                continue
            if progressed:
                idle_s = self.settings.submit_idle_s
                continue
            until_recovery_s = max(0.0, self._recover_at - time.monotonic())
            woken = self.wakeup.wait(min(idle_s, until_recovery_s))
            self.wakeup.clear()
            # Idle looks at the database back off; a wake-up (new work) resets them.
            idle_s = self.settings.submit_idle_s if woken else min(2 * idle_s, IDLE_WAIT_MAX_S)
        self._release_lease()

    def _release_lease(self) -> None:
        """Hand the key back at a clean stop, so a restart need not wait for the lease."""
        try:
            with unit_of_work(self.sessions) as session:
                session.execute(
                    update(Signer)
                    .where(Signer.address == self.address)
                    .where(Signer.lease_owner == self.owner)
                    .values(lease_owner=None, lease_expires_at=None)
                )
        except Exception:
            logger.exception("%s: could not release the lease", self.signer_name)

    def step(self) -> bool:
        """One pass: lease, operators' actions, recover, submit. Returns whether anything
        moved. Operators' actions go first so a cancel's replacement is offered before
        recovery would re-broadcast the transaction it replaces."""
        now = time.monotonic()
        if now >= self._lease_renew_at:
            if not self._hold_lease():
                self._lease_renew_at = now + LEASE_RETRY_S
                return False
            # Renew well before expiry; between renewals the lease is ours.
            self._lease_renew_at = now + self.settings.lease_ttl_s / 3
        intervened = recovered = False
        if self.actions_waiting.is_set() or now >= self._recover_at:
            self.actions_waiting.clear()
            intervened = self._intervene()
            recovered = self._recover()
            self._recover_at = now + (RECEIPT_POLL_S if self._unsettled else RECOVER_INTERVAL_S)
            if intervened:
                self.actions_waiting.set()  # an action moved: look again on the next pass
        submitted = self._submit_next()
        return intervened or recovered or submitted

    # ------------------------------------------------------------------ lease and nonce

    def _hold_lease(self) -> bool:
        now = utc_now()
        expires = now + timedelta(seconds=self.settings.lease_ttl_s)
        with unit_of_work(self.sessions) as session:
            if session.get(Signer, self.address) is None:
                chain_nonce = self.ledger.w3.eth.get_transaction_count(self.address, "pending")
                session.add(Signer(address=self.address, next_nonce=chain_nonce))
                session.flush()
            taken = session.execute(
                update(Signer)
                .where(Signer.address == self.address)
                .where(
                    or_(
                        Signer.lease_owner.is_(None),
                        Signer.lease_owner == self.owner,
                        Signer.lease_expires_at < now,
                    )
                )
                .values(lease_owner=self.owner, lease_expires_at=expires)
            )
            return bool(taken.rowcount)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ recovery

    def _recover(self) -> bool:
        with self.engine.connect() as connection:
            pending = connection.execute(_UNFINISHED_TRANSACTIONS, {"signer": self.address}).all()
        progressed = False
        self._unsettled = False
        for transaction in pending:
            resolved = self._resolve(transaction)
            self._unsettled |= not resolved
            progressed |= resolved
        return progressed

    def _resolve(self, transaction: Row[Any]) -> bool:
        """Settle, re-broadcast or reconcile one unfinished transaction (id, nonce, hash and
        raw bytes); whether it was settled."""
        receipt = self._receipt(transaction.tx_hash)
        if receipt is not None:
            self._broadcast_at.pop(transaction.id, None)
            return self._settle(transaction.id, receipt)
        now = time.monotonic()
        if now - self._broadcast_at.get(transaction.id, 0.0) < RECOVER_INTERVAL_S:
            return False  # sent moments ago: look for its receipt again soon, nothing else
        used = self.ledger.w3.eth.get_transaction_count(self.address, "latest")
        if transaction.nonce < used:
            self._broadcast_at.pop(transaction.id, None)
            return self._reconcile_replaced(transaction.id)
        with self.sessions() as session:
            # An operator's cancel offers its replacement in place of the original.
            raw_tx = interventions.replacement_raw(session, transaction.id) or transaction.raw_tx
        self._broadcast(raw_tx)
        self._broadcast_at[transaction.id] = now
        return False

    def _send(self, raw_tx: bytes) -> TxReceipt | None:
        """Send a transaction for the first time. A node that offers
        `eth_sendRawTransactionSync` (EIP-7966; Anvil does) answers with its receipt, which
        saves polling for it; otherwise (or with confirmations to wait for) it is an
        ordinary broadcast and the receipt is looked for after."""
        if self._send_sync is False or self.settings.confirmations_min:
            self._broadcast(raw_tx)
            return None
        response = self.ledger.w3.provider.make_request(
            RPCEndpoint("eth_sendRawTransactionSync"), ["0x" + raw_tx.hex()]
        )
        error = response.get("error")
        if error is None and response.get("result"):
            self._send_sync = True
            return receipt_from_rpc(response["result"])
        if isinstance(error, dict) and error.get("code") == METHOD_NOT_FOUND:
            self._send_sync = False
            self._broadcast(raw_tx)
        elif error is not None:
            # Refused, or not mined within the node's wait: as for a broadcast, the receipt
            # or recovery (nonce check, re-broadcast) settles it.
            logger.info("%s: synchronous send answered %s", self.signer_name, error)
        return None

    def _fresh_receipt(self, tx_hash: str) -> TxReceipt | None:
        """The receipt of a transaction just sent, looked for every RECEIPT_WAIT_POLL_S for
        up to RECEIPT_WAIT_S (Anvil and QBFT mine it within milliseconds); None after that,
        and recovery settles it."""
        deadline = time.monotonic() + RECEIPT_WAIT_S
        receipt = self._receipt(tx_hash)
        while receipt is None and time.monotonic() < deadline:
            time.sleep(RECEIPT_WAIT_POLL_S)
            receipt = self._receipt(tx_hash)
        return receipt

    def _receipt(self, tx_hash: str) -> TxReceipt | None:
        # A raw request: web3's receipt formatters cost milliseconds per batch receipt (every
        # log of every item), and settling reads only a few fields (`receipt_from_rpc`).
        response = self.ledger.w3.provider.make_request(
            RPCEndpoint("eth_getTransactionReceipt"), [tx_hash]
        )
        if "error" in response:
            raise Web3RPCError(repr(response["error"]))
        if response.get("result") is None:
            return None
        receipt = receipt_from_rpc(response["result"])
        if self.settings.confirmations_min:
            depth = self.ledger.w3.eth.block_number - receipt["blockNumber"]
            if depth < self.settings.confirmations_min:
                return None
        return receipt

    def _broadcast(self, raw_tx: bytes) -> None:
        # A raw request, like `_receipt` (web3's request formatting and middleware cost
        # more than the call); an error answer means the same as web3's exception.
        response = self.ledger.w3.provider.make_request(
            RPCEndpoint("eth_sendRawTransaction"), ["0x" + raw_tx.hex()]
        )
        try:
            if "error" in response:
                raise Web3RPCError(repr(response["error"]))
        except Web3RPCError as error:
            # "already known" and "nonce too low" both mean the node has (or had) it:
            # the receipt or the nonce check settles it on the next pass.
            logger.info("%s: re-broadcast refused: %s", self.signer_name, error)

    def _reconcile_replaced(self, transaction_id: int) -> bool:
        """The transaction's nonce went to another transaction: match each operation to
        chain state by request id; what the chain has not seen goes back to `accepted`,
        or fails `cancelled` when an operator's cancel replaced it."""
        settled: list[int] = []
        with unit_of_work(self.sessions) as session:
            transaction = session.get_one(ChainTransaction, transaction_id)
            transaction.status = TransactionStatus.REPLACED
            for operation in self._operations_of(session, transaction_id):
                outcome = outcome_on_chain(self.ledger, operation)
                outcome = outcome or interventions.cancelled_outcome(session, operation)
                if outcome is None:
                    operation.status = OperationStatus.ACCEPTED
                    operation.transaction_id = None
                else:
                    self._finish(session, operation, outcome)
                    settled.append(operation.id)
        self.on_committed(settled)
        return True

    # ------------------------------------------------------------------ operators' actions

    def _intervene(self) -> bool:
        """Carry out operators' cancels and re-submits of this key's operations, each in its
        own transaction, broadcasting only after the commit."""
        with self.sessions() as session:
            action_ids = interventions.open_action_ids(session, self.signer_name)
        progressed = False
        chain_id = self.ledger.deployment.manifest.chain_id
        for action_id in action_ids:
            with unit_of_work(self.sessions) as session:
                moved, raw_tx = interventions.carry_out(
                    session, action_id, self.account, chain_id, self._finish
                )
            if raw_tx is not None:
                self._broadcast(raw_tx)
            progressed |= moved
        return progressed

    # ------------------------------------------------------------------ submission

    def _submit_next(self) -> bool:
        if not self._has_accepted():
            return False
        # Batches start at least batch_linger_s apart: under light load each would otherwise
        # carry one operation, and a batch's fixed cost would be paid per operation.
        spacing_s = self._batch_started_at + self.settings.batch_linger_s - time.monotonic()
        if spacing_s > 0:
            self.stopping.wait(spacing_s)
        self._batch_started_at = time.monotonic()
        failed_ids: list[int] = []
        with unit_of_work(self.sessions) as session:
            operations = self._next_batch(session)
            if not operations:
                return False
            failpoint(BEFORE_SIGNING)
            batched = operations[0].kind in BATCHED_KINDS
            call = None if batched else build_call(self.ledger, operations)
            try:
                gas = self._gas_limit(operations, call)
            except ContractReverted as reverted:
                # Refused before anything was signed: no nonce used, the failure is final.
                self._fail_before_sending(session, operations, reverted)
                failed_ids = [operation.id for operation in operations]
            else:
                raw_tx, tx_hash, row_id = self._sign_and_record(session, operations, call, gas)
        if failed_ids:
            self.on_committed(failed_ids)
            return True
        # Committed: from here a crash is recovered by `_recover` (re-send or settle).
        failpoint(AFTER_RECORD_BEFORE_SEND)
        receipt = self._send(raw_tx)
        failpoint(AFTER_SEND_BEFORE_SETTLE)
        receipt = receipt or self._fresh_receipt(tx_hash)
        if receipt is not None:
            self._settle(row_id, receipt, operations)
        else:
            # Not mined yet: recovery looks for the receipt shortly, not a second later.
            self._broadcast_at[row_id] = time.monotonic()
            self._unsettled = True
            self._recover_at = min(self._recover_at, time.monotonic() + RECEIPT_POLL_S)
        return True

    def _gas_limit(self, operations: list[Operation], call: ContractFunction | None) -> int:
        """Batches get a fixed budget (items fail inside the batch, never the batch itself);
        single calls are estimated, which also refuses a doomed call before signing."""
        if call is None:
            return batch_gas_limit(len(operations))
        return self.ledger.client.estimate(call, sender=self.address)

    def _sign_and_record(
        self,
        session: Session,
        operations: list[Operation],
        call: ContractFunction | None,
        gas: int,
    ) -> tuple[bytes, str, int]:
        """Sign with the key's next nonce and record the signed bytes (not yet sent). A
        conversion batch (`call` None) is encoded directly (see `conversion_batch_calldata`)."""
        signer = session.get_one(Signer, self.address, with_for_update=True)
        fields: dict[str, Any] = {
            "nonce": signer.next_nonce,
            "gas": gas,
            "gasPrice": Wei(0),
            "chainId": self.ledger.deployment.manifest.chain_id,
        }
        if call is None:
            transaction = {
                **fields,
                "to": self.ledger.exchange.address,
                "data": conversion_batch_calldata(operations),
                "value": 0,
            }
        else:
            built = call.build_transaction(cast(TxParams, {"from": self.address, **fields}))
            transaction = dict(built)
        signed = self.account.sign_transaction(transaction)
        row = ChainTransaction(
            signer=self.address,
            nonce=signer.next_nonce,
            tx_hash=signed.hash.to_0x_hex(),
            raw_tx=bytes(signed.raw_transaction),
            status=TransactionStatus.SENT,
        )
        session.add(row)
        session.flush()
        signer.next_nonce += 1
        # One statement for the batch (the ORM would flush an UPDATE per operation); the
        # objects are told their new committed values, as they go on to `_settle`.
        now = utc_now()
        session.execute(
            _SUBMIT_OPERATIONS,
            {"ids": [operation.id for operation in operations], "tx": row.id, "now": now},
        )
        for operation in operations:
            set_committed_value(operation, "status", OperationStatus.SUBMITTED)
            set_committed_value(operation, "transaction_id", row.id)
            set_committed_value(operation, "updated_at", now)
        return row.raw_tx, row.tx_hash, row.id

    def _has_accepted(self) -> bool:
        """A lock-free look for work, so an idle submitter never takes the write lock."""
        with self.engine.connect() as connection:
            found = connection.execute(_HAS_ACCEPTED, {"signer": self.signer_name}).first()
        return found is not None

    def _next_batch(self, session: Session) -> list[Operation]:
        # Row locks (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers) so an
        # operator's cancel of an accepted operation and its signing never interleave.
        first = session.scalars(
            select(Operation)
            .where(Operation.signer == self.signer_name)
            .where(Operation.status == OperationStatus.ACCEPTED)
            .order_by(Operation.id)
            .limit(1)
            .with_for_update(of=Operation)
            .options(lazyload(Operation.transaction))
        ).first()
        if first is None:
            return []
        if first.kind not in BATCHED_KINDS:
            return [first]
        return list(
            session.scalars(
                select(Operation)
                .where(Operation.signer == self.signer_name)
                .where(Operation.status == OperationStatus.ACCEPTED)
                .where(Operation.kind == first.kind)
                .order_by(Operation.id)
                .limit(self.settings.batch_size_max)
                .with_for_update(of=Operation)
                .options(lazyload(Operation.transaction))
                .options(lazyload(Operation.transaction))
            )
        )

    def _fail_before_sending(
        self, session: Session, operations: list[Operation], reverted: ContractReverted
    ) -> None:
        outcome = Outcome(
            False,
            error_code=error_code_for(reverted.error_name),
            error_detail=f"{reverted.error_name}{tuple(reverted.arguments)!r}",
        )
        for operation in operations:
            self._finish(session, operation, outcome)

    # ------------------------------------------------------------------ settlement

    def _settle(
        self,
        transaction_id: int,
        receipt: TxReceipt,
        sent: list[Operation] | None = None,
    ) -> bool:
        """Record the outcome of each operation of a mined transaction. `sent`: the
        operations as this submitter just signed and committed them, else they are read
        again (recovery)."""
        just_signed = sent is not None
        # Decode before taking the write lock: only the bookkeeping happens inside it.
        if sent is None:
            with self.sessions() as session:
                sent = self._operations_of(session, transaction_id)
        results = outcomes(self.ledger, sent, receipt)
        with unit_of_work(self.sessions) as session:
            transaction = session.get_one(ChainTransaction, transaction_id)
            if transaction.status != TransactionStatus.SENT:
                return False
            transaction.status = (
                TransactionStatus.MINED if receipt["status"] == 1 else TransactionStatus.REVERTED
            )
            transaction.block_number = receipt["blockNumber"]
            if just_signed:
                # Nobody else changes them meanwhile (this submitter holds the key's lease
                # and carries out operators' actions itself): attached again as committed,
                # rather than read again (a hundred rows with their JSON per batch).
                session.add_all(sent)
                operations = sent
            else:
                operations = self._operations_of(session, transaction_id)
            for operation in operations:
                outcome = results[operation.id]
                if outcome.confirmed and outcome.result is not None:
                    outcome.result.setdefault("tx_hash", transaction.tx_hash)
                    outcome.result.setdefault("block_number", receipt["blockNumber"])
                self._finish(session, operation, outcome)
            ids = [operation.id for operation in operations]
        self.on_committed(ids)
        return True

    def _operations_of(self, session: Session, transaction_id: int) -> list[Operation]:
        return list(
            session.scalars(
                select(Operation)
                .where(Operation.transaction_id == transaction_id)
                .order_by(Operation.id)
                .options(lazyload(Operation.transaction))  # not read here: no join per row
            )
        )

    def _finish(self, session: Session, operation: Operation, outcome: Outcome) -> None:
        if outcome.confirmed:
            operation.status = OperationStatus.CONFIRMED
            operation.result = outcome.result
        else:
            operation.status = OperationStatus.FAILED
            operation.error_code = outcome.error_code
            operation.error_detail = outcome.error_detail
        self.on_final(session, operation)
