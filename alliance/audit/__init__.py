"""The audit tool: verify the alliance from the chain alone.

Given a JSON-RPC endpoint, the deployment manifest and (optionally) a folder of published
settlement statements, the audit re-derives every balance, supply, conversion, rate
version and anchored root from the contracts' events and compares them with chain state
and with what was published. It reads the chain only through `alliance.rpc` and
`alliance.events`, and never imports the gateway, the settlement service or the database
(tests/test_architecture.py enforces it): an auditor needs nothing the operator controls.

Layers, bottom up: `findings` (what a problem looks like); `rates`, `ledger`, `checks` and
`replay` (pure state machines and checks over decoded events); `chainstate`, `source` and
`cache` (reads: chain state, log segments, the local cache); `reading` (the replay
driver); `verify`, `statements_check`, `proofs`, `history`, `evidence` (the commands).
See docs/audit.md.
"""
