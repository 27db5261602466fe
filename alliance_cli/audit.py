"""`alliance audit ...`: verify the alliance from the chain alone (see docs/audit.md).

Thin commands over `alliance.audit`: each opens the read-only view of the chain
(`AuditChain`) from `--rpc-url`, `--manifest` and the compiled ABIs, runs one audit
function with a progress bar on stderr, and prints or writes its result. Exit status:
0 when everything checked out, 3 when the audit found something (`verify`, `check-proof`),
1 for an error that stopped it (unreachable node, unknown period, ...).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from alliance.artifacts import load_artifact
from alliance.audit.evidence import evidence
from alliance.audit.history import history_csv
from alliance.audit.proofs import check_proof, prove
from alliance.audit.reading import AuditChain
from alliance.audit.verify import VerifyReport, verify
from alliance.cli import reports_errors
from alliance.errors import ArtifactNotFound, AuditProofUnreadable, ManifestMissing
from alliance.events import alliance_catalogue
from alliance.manifest import load_manifest
from alliance.rpc import JsonRpc
from alliance.settings import load_settings

EXIT_FINDINGS = 3
"""Exit status when the audit found a problem (1 stays for errors that stopped it)."""

audit_app = typer.Typer(help="Verify the alliance from the chain alone.", no_args_is_help=True)

RpcUrl = Annotated[
    str | None, typer.Option("--rpc-url", help="JSON-RPC endpoint (default: ALLIANCE_CHAIN_*).")
]
ManifestPath = Annotated[
    Path | None, typer.Option("--manifest", help="Deployment manifest (default: data dir).")
]
CacheDir = Annotated[
    Path | None, typer.Option("--cache", help="Replay cache directory (resumable runs).")
]
JsonOut = Annotated[Path | None, typer.Option("--json-out", help="Write the JSON here.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]
BatchReads = Annotated[
    bool,
    typer.Option("--batch-reads", help="Read balances with batched calls, not the lens."),
]


@contextmanager
def open_chain(
    rpc_url: str | None, manifest_path: Path | None, *, batch_reads: bool = False
) -> Iterator[AuditChain]:
    """The audit's view of the chain, from options and settings."""
    settings = load_settings()
    manifest_path = manifest_path or settings.data.manifest_file
    manifest = load_manifest(manifest_path)
    build_dir = settings.data.build_dir
    catalogue = alliance_catalogue(lambda name: load_artifact(build_dir, name))
    lens_code = None
    if not batch_reads:
        try:
            lens_code = load_artifact(build_dir, "BalanceLens").bytecode
        except ArtifactNotFound:
            typer.secho("no BalanceLens artifact: batched reads", err=True)
    with JsonRpc(rpc_url or settings.chain.rpc_url) as rpc:
        chain = AuditChain(rpc=rpc, manifest=manifest, catalogue=catalogue, lens_code=lens_code)
        if chain.chain_id() != manifest.chain_id:
            reason = f"the node's chain id {chain.chain_id()} is not the manifest's"
            raise ManifestMissing(manifest_path, reason)
        yield chain


@contextmanager
def progress_bar(chain: AuditChain, quiet: bool) -> Iterator[Any]:
    """A progress callback drawing blocks replayed and events on stderr."""
    first, last = chain.deploy_block, chain.rpc.block_number()
    columns = (
        TextColumn("replay"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("blocks, {task.fields[events]:,} events"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), disable=quiet) as display:
        task = display.add_task("replay", total=last - first + 1, events=0)

        def update(block: int, events: int) -> None:
            display.update(task, completed=min(block, last) - first + 1, events=events)

        yield update


def _write_json(data: Any, path: Path | None) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if path is None:
        typer.echo(text, nl=False)
    else:
        path.write_text(text)


@audit_app.command("verify")
@reports_errors
def verify_command(
    rpc_url: RpcUrl = None,
    manifest: ManifestPath = None,
    statements: Annotated[
        Path | None, typer.Option("--statements", help="Published statements folder.")
    ] = None,
    cache: CacheDir = None,
    json_out: JsonOut = None,
    quiet: Quiet = False,
    batch_reads: BatchReads = False,
) -> None:
    """Replay every event and check balances, conversions, rates, anchors and statements."""
    with (
        open_chain(rpc_url, manifest, batch_reads=batch_reads) as chain,
        progress_bar(chain, quiet) as progress,
    ):
        report = verify(chain, statements_dir=statements, cache_dir=cache, progress=progress)
    if json_out is not None:
        _write_json(report.to_json(), json_out)
    typer.echo(summary(report))
    if not report.ok:
        raise typer.Exit(code=EXIT_FINDINGS)


def summary(report: VerifyReport) -> str:
    """The readable summary of a verify report."""
    lines = [
        f"replayed {report.events:,} events up to block {report.head_block:,} "
        f"in {report.timings_s.get('total', 0):.1f} s",
        f"checked {report.holdings_checked:,} balances, {report.anchors_checked} anchors, "
        f"{report.statements_checked} statements",
    ]
    if report.ok:
        return "\n".join([*lines, "OK: no findings"])
    lines.append(f"FINDINGS: {len(report.findings)}")
    lines += [f"  {kind}: {count}" for kind, count in report.counts.items()]
    lines += [f"  - [{f.kind}] {f.message}" for f in report.findings[:20]]
    return "\n".join(lines)


@audit_app.command("prove")
@reports_errors
def prove_command(
    period: Annotated[int, typer.Option("--period", help="Anchored period id (yyyymmdd).")],
    account: Annotated[str, typer.Option("--account", help="The member's address.")],
    brand: Annotated[str, typer.Option("--brand", help="Brand code or token address.")],
    rpc_url: RpcUrl = None,
    manifest: ManifestPath = None,
    cache: CacheDir = None,
    json_out: JsonOut = None,
    quiet: Quiet = False,
) -> None:
    """Write a Merkle inclusion proof of a member's balance in an anchored period."""
    with open_chain(rpc_url, manifest) as chain, progress_bar(chain, quiet) as progress:
        document = prove(chain, period, account, brand, cache_dir=cache, progress=progress)
    _write_json(document, json_out)


@audit_app.command("check-proof")
@reports_errors
def check_proof_command(
    proof_file: Annotated[Path, typer.Argument(help="A proof written by `audit prove`.")],
    root: Annotated[
        str | None, typer.Option("--root", help="A balances root you trust (0x-hex).")
    ] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Do not ask the chain.")] = False,
    rpc_url: RpcUrl = None,
) -> None:
    """Check a balance proof against the on-chain anchor and/or a trusted root."""
    try:
        document = json.loads(proof_file.read_text())
    except (OSError, ValueError) as error:
        raise AuditProofUnreadable(proof_file, str(error)) from None
    if offline:
        result = check_proof(document, trusted_root=root)
    else:
        with JsonRpc(rpc_url or load_settings().chain.rpc_url) as rpc:
            result = check_proof(document, rpc=rpc, trusted_root=root)
    typer.echo(json.dumps(result.to_json(), indent=2, sort_keys=True))
    if not result.ok:
        raise typer.Exit(code=EXIT_FINDINGS)


@audit_app.command("history")
@reports_errors
def history_command(
    account: Annotated[str | None, typer.Option("--account", help="A member's address.")] = None,
    brand: Annotated[str | None, typer.Option("--brand", help="A brand code or token.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the CSV here.")] = None,
    rpc_url: RpcUrl = None,
    manifest: ManifestPath = None,
    cache: CacheDir = None,
    quiet: Quiet = False,
) -> None:
    """Export an account's or a brand's full on-chain history as CSV."""
    if (account is None) == (brand is None):
        raise typer.BadParameter("give exactly one of --account and --brand")
    with open_chain(rpc_url, manifest) as chain, progress_bar(chain, quiet) as progress:
        text = history_csv(chain, account=account, brand=brand, cache_dir=cache, progress=progress)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)


@audit_app.command("evidence")
@reports_errors
def evidence_command(
    request_id: Annotated[int, typer.Option("--request-id", help="The request id.")],
    rpc_url: RpcUrl = None,
    manifest: ManifestPath = None,
    cache: CacheDir = None,
    json_out: JsonOut = None,
    quiet: Quiet = False,
) -> None:
    """Bundle everything the chain says about one request id, with inclusion proofs."""
    with open_chain(rpc_url, manifest) as chain, progress_bar(chain, quiet) as progress:
        bundle = evidence(chain, request_id, cache_dir=cache, progress=progress)
    _write_json(bundle, json_out)
