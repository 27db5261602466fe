"""Deploy a whole alliance from its configuration and write the deployment manifest.

Order matters because roles only go to allow-listed accounts: governance first (it
allow-lists itself, the governors and the guardian), then the exchange and the settlement
anchor, a proposal that allow-lists every other party and grants alliance roles, the brand
tokens, a proposal that registers the brands and grants their roles, and finally each
receiving brand's own pair policies and gifting switch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract

from alliance import compiler
from alliance.artifacts import Artifact
from alliance.chain import ChainClient
from alliance.deploy_config import AllianceConfig, BrandConfig, load_alliance_config
from alliance.governance import GovernedCall, run_proposal
from alliance.keys import DevKeyStore
from alliance.manifest import BrandRecord, ContractRecord, DeploymentManifest, load_manifest
from alliance.settings import Settings
from alliance.toolchain import solc_version

BRAND_ROLES = ("admin", "issuer", "approver", "freezer_a", "freezer_b", "governor")
ALLIANCE_ROLES = ("deployer", "guardian", "operator", "settler")
DAY_S = 86_400


def role_id(name: str) -> bytes:
    """The bytes32 id of an AccessControl role, e.g. `ISSUER_ROLE`."""
    return keccak(text=name)


@dataclass(frozen=True)
class Parties:
    """Every signing account of a deployment, resolved from the key store."""

    alliance: dict[str, LocalAccount]
    brands: dict[str, dict[str, LocalAccount]]

    @classmethod
    def from_keys(cls, keys: DevKeyStore, config: AllianceConfig) -> Parties:
        """Resolve (creating on first use) the key of every party in `config`."""
        alliance = {role: keys.account(role) for role in ALLIANCE_ROLES}
        brands = {
            brand.code: {role: keys.account(f"{brand.code}.{role}") for role in BRAND_ROLES}
            for brand in config.brands
        }
        return cls(alliance=alliance, brands=brands)

    def governors(self, config: AllianceConfig) -> list[LocalAccount]:
        """The governor accounts, in configuration order."""
        return [self.brands[b.code]["governor"] for b in config.brands if b.governor]


ArtifactLoader = Callable[[str], Artifact]


def deploy_alliance(
    client: ChainClient, load: ArtifactLoader, config: AllianceConfig, parties: Parties
) -> DeploymentManifest:
    """Deploy every alliance contract for `config` and return the manifest."""
    deployer = parties.alliance["deployer"]
    governors = parties.governors(config)
    governance, receipt = client.deploy(
        deployer,
        load("AllianceGovernance"),
        [g.address for g in governors],
        config.governance.threshold,
        parties.alliance["guardian"].address,
    )
    exchange, _ = client.deploy(deployer, load("AllianceExchange"), governance.address)
    anchor, _ = client.deploy(deployer, load("SettlementAnchor"), governance.address)
    run_proposal(
        client,
        governance,
        governors,
        _alliance_setup_calls(config, parties, governance, exchange, anchor),
        "Alliance setup: contracts, allow-list, operator and settler roles",
    )
    tokens = {
        brand.code: client.deploy(
            deployer,
            load("PointToken"),
            brand.name,
            brand.symbol,
            governance.address,
            exchange.address,
            parties.brands[brand.code]["admin"].address,
        )[0]
        for brand in config.brands
    }
    run_proposal(
        client,
        governance,
        governors,
        _brand_calls(config, parties, governance, tokens),
        "Admit brands: register tokens at their opening rates and grant brand roles",
    )
    _configure_brands(client, config, parties, exchange, tokens)
    return _manifest(
        client, load, config, parties, receipt["blockNumber"], governance, exchange, anchor, tokens
    )


def _alliance_setup_calls(
    config: AllianceConfig,
    parties: Parties,
    governance: Contract,
    exchange: Contract,
    anchor: Contract,
) -> list[GovernedCall]:
    already_allowed = {g.address for g in parties.governors(config)} | {
        parties.alliance["guardian"].address
    }
    to_allow = [parties.alliance["operator"], parties.alliance["settler"]] + [
        account for brand in parties.brands.values() for account in brand.values()
    ]
    calls = [GovernedCall(governance, "setAllianceContracts", (exchange.address, anchor.address))]
    calls += [
        GovernedCall(governance, "allowAccount", (account.address,))
        for account in dict.fromkeys(to_allow)
        if account.address not in already_allowed
    ]
    calls.append(
        GovernedCall(
            exchange, "grantRole", (role_id("OPERATOR_ROLE"), parties.alliance["operator"].address)
        )
    )
    calls.append(
        GovernedCall(
            anchor, "grantRole", (role_id("SETTLER_ROLE"), parties.alliance["settler"].address)
        )
    )
    notice_period_s = config.governance.notice_period_days * DAY_S
    calls.append(GovernedCall(exchange, "setNoticePeriod", (notice_period_s,)))
    return calls


def _brand_calls(
    config: AllianceConfig, parties: Parties, governance: Contract, tokens: dict[str, Contract]
) -> list[GovernedCall]:
    calls = []
    for brand in config.brands:
        token = tokens[brand.code]
        accounts = parties.brands[brand.code]
        calls.append(
            GovernedCall(governance, "registerBrand", (token.address, brand.rate_value_units))
        )
        for role, holder in (
            ("ISSUER_ROLE", "issuer"),
            ("APPROVER_ROLE", "approver"),
            ("FREEZER_ROLE", "freezer_a"),
            ("FREEZER_ROLE", "freezer_b"),
        ):
            calls.append(
                GovernedCall(token, "grantRole", (role_id(role), accounts[holder].address))
            )
    return calls


def _configure_brands(
    client: ChainClient,
    config: AllianceConfig,
    parties: Parties,
    exchange: Contract,
    tokens: dict[str, Contract],
) -> None:
    for receiving in config.brands:
        admin = parties.brands[receiving.code]["admin"]
        if receiving.gifting:
            client.transact(admin, tokens[receiving.code].functions.setGiftingEnabled(True))
        for sending in config.brands:
            policy = config.policy_for(sending.code, receiving.code)
            if sending.code == receiving.code or policy is None:
                continue
            client.transact(
                admin,
                exchange.functions.setPairPolicy(
                    tokens[sending.code].address,
                    tokens[receiving.code].address,
                    policy.enabled,
                    policy.fee_bps,
                    policy.min_amount_out,
                    policy.max_amount_out,
                    policy.daily_cap,
                ),
            )


def _record(load: ArtifactLoader, name: str, address: str) -> ContractRecord:
    artifact = load(name)
    return ContractRecord(
        name, Web3.to_checksum_address(address), artifact.abi_hash, artifact.metadata_hash
    )


def _brand_record(
    load: ArtifactLoader, brand: BrandConfig, token: Contract, parties: Parties
) -> BrandRecord:
    return BrandRecord(
        code=brand.code,
        name=brand.name,
        symbol=brand.symbol,
        token=_record(load, "PointToken", token.address),
        rate_value_units=brand.rate_value_units,
        gifting=brand.gifting,
        parties={role: account.address for role, account in parties.brands[brand.code].items()},
    )


def _manifest(
    client: ChainClient,
    load: ArtifactLoader,
    config: AllianceConfig,
    parties: Parties,
    deploy_block: int,
    governance: Contract,
    exchange: Contract,
    anchor: Contract,
    tokens: dict[str, Contract],
) -> DeploymentManifest:
    return DeploymentManifest(
        chain_id=client.w3.eth.chain_id,
        deploy_block=deploy_block,
        governance=_record(load, "AllianceGovernance", governance.address),
        exchange=_record(load, "AllianceExchange", exchange.address),
        settlement_anchor=_record(load, "SettlementAnchor", anchor.address),
        brands=tuple(_brand_record(load, b, tokens[b.code], parties) for b in config.brands),
        parties={role: account.address for role, account in parties.alliance.items()},
        compiler={
            "solc": solc_version(),
            "evm_version": compiler.EVM_VERSION,
            "optimizer_runs": compiler.OPTIMIZER_RUNS,
            "via_ir": compiler.VIA_IR,
        },
    )


def is_deployed(client: ChainClient, manifest: DeploymentManifest) -> bool:
    """Whether the chain has code at every address the manifest names (it may have been reset)."""
    addresses = [
        manifest.governance.address,
        manifest.exchange.address,
        manifest.settlement_anchor.address,
    ]
    addresses += [brand.token.address for brand in manifest.brands]
    return manifest.chain_id == client.w3.eth.chain_id and all(
        len(client.w3.eth.get_code(Web3.to_checksum_address(address))) > 0 for address in addresses
    )


@dataclass(frozen=True)
class Deployment:
    """A connection to a deployed alliance: client, manifest and compiled artifacts."""

    client: ChainClient
    manifest: DeploymentManifest
    compiled: compiler.CompileResult

    def contract(self, name: str, address: str) -> Contract:
        """A handle on the contract `name` (artifact name) at `address`."""
        return self.client.contract(self.compiled.load_artifact(name), address)


def connect(settings: Settings) -> tuple[ChainClient, compiler.CompileResult]:
    """Compile (if sources changed) and connect to the configured chain."""
    compiled = compiler.compile_contracts(settings.data.contracts_dir, settings.data.build_dir)
    artifacts = [compiled.load_artifact(name) for name in compiled.contract_names]
    return ChainClient.connect(settings.chain.rpc_url, artifacts), compiled


def load_deployment(settings: Settings) -> Deployment:
    """The alliance recorded in the manifest, connected."""
    client, compiled = connect(settings)
    return Deployment(client, load_manifest(settings.data.manifest_file), compiled)


def ensure_deployed(settings: Settings, *, redeploy: bool = False) -> tuple[Deployment, bool]:
    """Deploy the configured alliance unless the manifest's contracts are already on chain.

    Returns the deployment and whether it was deployed now. A chain that was reset (no
    code at the manifest's addresses) is deployed afresh and the manifest rewritten.
    """
    client, compiled = connect(settings)
    manifest_file = settings.data.manifest_file
    if not redeploy and manifest_file.exists():
        manifest = load_manifest(manifest_file)
        if is_deployed(client, manifest):
            return Deployment(client, manifest, compiled), False
    config = load_alliance_config(settings.data.deploy_config_file)
    parties = Parties.from_keys(DevKeyStore(settings.data.data_dir), config)
    manifest = deploy_alliance(client, compiled.load_artifact, config, parties)
    manifest.save(manifest_file)
    return Deployment(client, manifest, compiled), True
