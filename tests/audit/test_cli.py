"""`alliance audit ...` commands end to end through the CLI, on a real Anvil.

Proves: `verify` exits 0 with a readable summary and a JSON report on a clean alliance and
exits 3 naming the finding on a forged anchor; `prove` writes a proof file that
`check-proof` accepts against the chain and, offline, against the right root only;
`history` writes CSV; `evidence` writes the bundle; a manifest of another chain is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alliance.cli import app
from alliance_cli.audit import EXIT_FINDINGS
from tests.audit.support import Settlement

PERIOD = 20261122


@pytest.fixture
def cli(alliance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Runs `alliance audit <args>` against the test alliance's chain and manifest."""
    import alliance_cli.main  # noqa: F401  Registers the audit commands on the app.

    manifest = tmp_path / "deployment.json"
    alliance.manifest.save(manifest)
    monkeypatch.setenv("ALLIANCE_BUILD_DIR", str(alliance.compiled.build_dir))
    rpc_url = alliance.client.w3.provider.endpoint_uri
    runner = CliRunner()

    def run(*args: str, manifest_path: Path = manifest):
        options = ["--rpc-url", rpc_url]
        if args[0] != "check-proof":  # check-proof needs no manifest: the proof names all.
            options += ["--manifest", str(manifest_path), "--quiet"]
        return runner.invoke(app, ["audit", *args, *options])

    return run


def test_verify_passes_a_clean_alliance_and_writes_the_report(cli, settlement, tmp_path):
    settlement.busy_day()
    settlement.settle(PERIOD)
    report_path = tmp_path / "report.json"

    result = cli(
        "verify",
        "--statements",
        str(settlement.statements_dir),
        "--cache",
        str(tmp_path / "cache"),
        "--json-out",
        str(report_path),
    )

    assert result.exit_code == 0, result.output
    assert "OK: no findings" in result.output
    report = json.loads(report_path.read_text())
    assert report["ok"] is True and report["statements_checked"] == 1


def test_verify_exits_non_zero_and_names_the_finding_on_a_forged_anchor(
    cli, settlement: Settlement
):
    settlement.busy_day()
    settlement.publish_and_anchor(settlement.close(PERIOD), root=b"\x42" * 32)

    result = cli("verify")

    assert result.exit_code == EXIT_FINDINGS
    assert "anchor_root_mismatch: 1" in result.output


def test_prove_then_check_proof_on_chain_and_offline(cli, settlement, tmp_path):
    member, *_ = settlement.busy_day()
    document = settlement.settle(PERIOD)
    proof_path = tmp_path / "proof.json"

    proved = cli(
        "prove",
        "--period",
        str(PERIOD),
        "--account",
        member,
        "--brand",
        "bean",
        "--json-out",
        str(proof_path),
    )
    assert proved.exit_code == 0, proved.output

    assert cli("check-proof", str(proof_path)).exit_code == 0
    offline = ["check-proof", str(proof_path), "--offline", "--root"]
    assert cli(*offline, document["balances_root"]).exit_code == 0
    assert cli(*offline, "0x" + "11" * 32).exit_code == EXIT_FINDINGS


def test_history_and_evidence_write_their_files(cli, settlement, alliance, tmp_path):
    member = settlement.member()
    receipt = settlement.deposit("bean", member, 1_234)
    (minted,) = alliance.events(receipt, alliance.tokens["bean"], "PointsMinted")
    csv_path, bundle_path = tmp_path / "history.csv", tmp_path / "evidence.json"

    assert cli("history", "--account", member, "--out", str(csv_path)).exit_code == 0
    assert (
        cli(
            "evidence", "--request-id", str(minted["requestId"]), "--json-out", str(bundle_path)
        ).exit_code
        == 0
    )

    assert "PointsMinted" in csv_path.read_text() and "1234" in csv_path.read_text()
    bundle = json.loads(bundle_path.read_text())
    assert bundle["events"][0]["args"]["amount"] == 1_234 and bundle["period"] is None


def test_a_manifest_of_another_chain_is_refused(cli, alliance, tmp_path):
    data = alliance.manifest.to_json()
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**data, "chain_id": data["chain_id"] + 1}))

    result = cli("verify", manifest_path=other)

    assert result.exit_code == 1 and "manifest_missing" in result.output
