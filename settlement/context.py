"""Everything a settlement run talks to, built once from settings and passed down."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from web3.contract import Contract

from alliance.artifacts import Artifact
from alliance.chain import ChainClient
from alliance.db.migrate import upgrade_to_head
from alliance.db.session import database_url, make_engine, make_session_factory
from alliance.deploy import load_deployment
from alliance.errors import ArtifactNotFound
from alliance.events import LogReader, alliance_addresses, alliance_catalogue
from alliance.keys import DevKeyStore
from alliance.manifest import DeploymentManifest
from alliance.rpc import JsonRpc
from alliance.settings import Settings
from settlement.indexer import EventIndexer, IndexLimits
from settlement.records import Addresses
from settlement.settings import SettlementSettings

LENS_CONTRACT = "BalanceLens"
"""The deployless balance reader (contracts/audit/BalanceLens.sol)."""


@dataclass
class SettlementContext:
    """The connections and facts of one settlement service process."""

    settings: SettlementSettings
    data_dir: Path
    manifest: DeploymentManifest
    rpc: JsonRpc
    engine: Engine
    factory: sessionmaker[Session]
    indexer: EventIndexer
    addresses: Addresses
    lens: Artifact | None
    chain: ChainClient
    anchor_contract: Contract
    settler: LocalAccount

    def close(self) -> None:
        self.rpc.close()
        self.engine.dispose()


def open_context(
    core: Settings,
    settings: SettlementSettings,
    *,
    gateway_database_url: str = "",
    migrate: bool = True,
) -> SettlementContext:
    """Connect to the chain and the database (migrated to the newest schema unless
    `migrate` is off: beside the gateway, the gateway migrates, and Alembic's runner is
    not safe to run from two threads of one process)."""
    deployment = load_deployment(core)
    manifest = deployment.manifest
    engine = make_engine(
        database_url(settings.database_url or gateway_database_url, core.data.data_dir)
    )
    if migrate:
        upgrade_to_head(engine)
    factory = make_session_factory(engine)
    rpc = JsonRpc(core.chain.rpc_url)
    reader = LogReader(
        rpc,
        alliance_catalogue(deployment.compiled.load_artifact),
        alliance_addresses(manifest),
        block_range_max=settings.block_range_max,
    )
    limits = IndexLimits(
        confirmations=settings.confirmations,
        block_range_max=settings.block_range_max,
        logs_per_window_target=settings.logs_per_window_target,
        rescan_samples=settings.rescan_samples,
        rescan_blocks=settings.rescan_blocks,
    )
    tokens = {brand.token.address.lower(): brand.code for brand in manifest.brands}
    addresses = Addresses(
        exchange=manifest.exchange.address.lower(),
        anchor=manifest.settlement_anchor.address.lower(),
        token_brand=tokens,
        brand_token={code: token for token, code in tokens.items()},
    )
    try:
        lens: Artifact | None = deployment.compiled.load_artifact(LENS_CONTRACT)
    except ArtifactNotFound:
        lens = None
    return SettlementContext(
        settings=settings,
        data_dir=core.data.data_dir,
        manifest=manifest,
        rpc=rpc,
        engine=engine,
        factory=factory,
        indexer=EventIndexer(factory, rpc, reader, from_block=manifest.deploy_block, limits=limits),
        addresses=addresses,
        lens=lens,
        chain=deployment.client,
        anchor_contract=deployment.contract("SettlementAnchor", manifest.settlement_anchor.address),
        settler=DevKeyStore(core.data.data_dir).account("settler"),
    )
