"""The brand-facing gateway (FastAPI): authenticates brands, maps brand-internal points to
on-chain deposits and withdrawals, runs conversions and owns the durable transaction
pipeline to the chain. Built on the core package `alliance`; see docs/contracts.md for the
roles and events it drives. (Issue: "Gateway"; not implemented yet.)"""
