"""The Besu permissions export follows the on-chain allow-list that governance decides.

Reads the allow-list from the deployed governance contract, writes Besu's
`permissions_config.toml`, and checks that a governance proposal adding or removing an
account changes the exported file, that contract accounts are left out, and that an
operator's other keys (nodes-allowlist) survive an update.
"""

import tomllib

from web3 import Web3

from alliance.governance import GovernedCall
from alliance.permissioning import export_permissions_config
from tests.support.alliance import new_member


def _exported(alliance, path) -> list[str]:
    export_permissions_config(alliance.client, alliance.governance, path)
    return tomllib.loads(path.read_text())["accounts-allowlist"]


def test_export_lists_every_allow_listed_key_holder_and_no_contract(alliance, tmp_path):
    accounts = _exported(alliance, tmp_path / "permissions_config.toml")
    on_chain = {a.lower() for a in alliance.call(alliance.governance.functions.allowedAccounts())}
    contracts = {alliance.governance.address, alliance.exchange.address, alliance.anchor.address}
    contracts |= {token.address for token in alliance.tokens.values()}
    assert set(accounts) == on_chain - {c.lower() for c in contracts}
    assert alliance.operator.address.lower() in accounts
    assert alliance.brand_party("sky", "issuer").address.lower() in accounts
    assert accounts == sorted(accounts)


def test_governance_decisions_reach_the_exported_file(alliance, tmp_path):
    path = tmp_path / "permissions_config.toml"
    newcomer = new_member().address
    alliance.govern([GovernedCall(alliance.governance, "allowAccount", (newcomer,))])
    assert newcomer.lower() in _exported(alliance, path)

    issuer = alliance.brand_party("bean", "issuer").address
    alliance.govern([GovernedCall(alliance.governance, "disallowAccount", (issuer,))])
    accounts = _exported(alliance, path)
    assert issuer.lower() not in accounts
    assert newcomer.lower() in accounts


def test_export_keeps_the_node_operators_other_settings(alliance, tmp_path):
    path = tmp_path / "permissions_config.toml"
    enode = "enode://" + "ab" * 64 + "@10.0.0.1:30303"
    path.write_text(f'nodes-allowlist=["{enode}"]\naccounts-allowlist=["0x00"]\n')
    document = tomllib.loads(path.read_text()) | {"accounts-allowlist": _exported(alliance, path)}
    assert tomllib.loads(path.read_text()) == document
    assert document["nodes-allowlist"] == [enode]
    assert all(Web3.is_address(account) for account in document["accounts-allowlist"])
