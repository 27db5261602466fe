"""End to end: the settlement service closes a day, the audit verifies its outputs.

Proves, on a private Anvil with the embedded default alliance (config/alliance.yaml,
deployed by `ensure_deployed` as `alliance up` does): after a day of deposits and
conversions, `run_settlement` (the code behind `alliance settle`) anchors the period and
publishes `<data_dir>/settlement/<period_id>/statements.json`; `alliance audit verify`,
reading only the chain, the manifest and that folder, finds nothing; and after one figure
of the published file is edited it reports the hash and the figure that no longer match.
The audit code itself never imports the settlement package (tests/test_architecture.py);
only this test drives both.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from eth_account import Account

from alliance.audit.reading import AuditChain
from alliance.audit.verify import verify
from alliance.deploy import Parties, ensure_deployed
from alliance.deploy_config import load_alliance_config
from alliance.events import alliance_catalogue
from alliance.keys import DevKeyStore
from alliance.rpc import JsonRpc
from alliance.settings import ChainSettings, DataSettings, Settings
from settlement.service import run_settlement
from settlement.settings import SettlementSettings

DEADLINE_FAR = 2**40


def test_a_period_closed_by_the_settlement_service_verifies(chain_factory, repo_root, tmp_path):
    chain = chain_factory()
    core = Settings(
        chain=ChainSettings(port=chain.chain_settings.port),
        data=DataSettings(
            data_dir=tmp_path / "data",
            build_dir=repo_root / "build",
            contracts_dir=repo_root / "contracts",
            deploy_config_file=repo_root / "config" / "alliance.yaml",
        ),
    )
    deployment, _ = ensure_deployed(core)
    client, manifest = deployment.client, deployment.manifest
    parties = Parties.from_keys(
        DevKeyStore(core.data.data_dir), load_alliance_config(core.data.deploy_config_file)
    )
    token = deployment.compiled.load_artifact("PointToken")
    tokens = {b.code: client.contract(token, b.token.address) for b in manifest.brands}
    exchange = client.contract(
        deployment.compiled.load_artifact("AllianceExchange"), manifest.exchange.address
    )
    for index in range(3):
        member = Account.create().address
        client.transact(
            parties.brands["bean"]["issuer"],
            tokens["bean"].functions.mint(member, 50_000, 10 + index, 1, b"\x01" * 32),
        )
        request = (
            900 + index,
            member,
            tokens["bean"].address,
            tokens["sky"].address,
            1_000 + index,
            0,
            DEADLINE_FAR,
        )
        client.transact(parties.alliance["operator"], exchange.functions.convert(request))
    day = datetime.fromtimestamp(client.w3.eth.get_block("latest")["timestamp"], UTC).date()
    midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)
    provider = client.w3.provider
    provider.make_request("evm_setNextBlockTimestamp", [int(midnight.timestamp()) + 60])  # type: ignore[arg-type]
    provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    result = run_settlement(core, SettlementSettings(), day)

    statements_dir = core.data.data_dir / "settlement"
    assert (statements_dir / str(result.period_id) / "statements.json").is_file()
    with JsonRpc(chain.rpc_url) as rpc:
        audit = AuditChain(
            rpc=rpc,
            manifest=manifest,
            catalogue=alliance_catalogue(deployment.compiled.load_artifact),
            lens_code=deployment.compiled.load_artifact("BalanceLens").bytecode,
        )
        clean = verify(audit, statements_dir=statements_dir)
        assert clean.findings == [] and clean.anchors_checked == 1
        _edit_a_figure(statements_dir / str(result.period_id) / "statements.json")
        tampered = verify(audit, statements_dir=statements_dir)
    assert {f.kind for f in tampered.findings} == {
        "statements_hash_mismatch",
        "statements_figures_mismatch",
    }


def _edit_a_figure(path: Path) -> None:
    document = json.loads(path.read_text())
    flow = document["flows"][0]
    flow["value_units"] = str(int(flow["value_units"]) - 1)
    path.write_text(json.dumps(document, sort_keys=True, separators=(",", ":")))
