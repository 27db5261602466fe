"""The local replay cache: segments of raw logs already read, so a re-run skips the node.

Layout: `<cache_dir>/<chain id>-<manifest key>/index.json` lists the segments in block
order, each with its block range, log count, the keccak256 digest of its file and the hash
of its last block; `seg-<first>-<last>.json.gz` holds the segment. The cache stores logs,
not replayed state, so a cached run repeats every check (request ids, statements, roots of
any past period) and only the reading is saved, which is where the time goes.

A cache is trusted only as far as it provably covers the chain: `validate` walks the
segments from the deploy block and stops at the first range that is missing (`cache_gap`),
whose file does not match its digest (`cache_corrupt`) or whose last block no longer has
the recorded hash (`cache_stale`). Everything from that point is dropped and read again
from the node, and the finding says so: a cache can never make the audit report stale or
partial balances. (The digests guard against loss and accidents, not against someone who
edits both a segment and the index; the block hashes tie the cache to the chain.)
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_utils import keccak

from alliance.audit.findings import Finding
from alliance.audit.source import Segment
from alliance.chainstate import block_hashes
from alliance.rpc import JsonRpc

CACHE_FORMAT = "alliance-audit-cache/1"
GZIP_LEVEL = 1
"""Fast compression: logs shrink ~5x at a cost far below reading them from the node."""


@dataclass(frozen=True)
class SegmentEntry:
    """One segment as the index records it."""

    first: int
    last: int
    logs: int
    digest: str
    file: str
    last_block_hash: str


def cache_key(chain_id: int, deploy_block: int, addresses: list[str]) -> str:
    """Names the cache of one deployment on one chain (a new deployment gets a new cache)."""
    text = json.dumps([chain_id, deploy_block, sorted(addresses)])
    return f"{chain_id}-{keccak(text=text).hex()[:16]}"


class SegmentCache:
    """The segments of one deployment, in one directory."""

    def __init__(self, root: Path, key: str) -> None:
        self.directory = root / key
        self.directory.mkdir(parents=True, exist_ok=True)
        self.entries = self._read_index()

    @property
    def _index_path(self) -> Path:
        return self.directory / "index.json"

    def _read_index(self) -> list[SegmentEntry]:
        if not self._index_path.exists():
            return []
        data = json.loads(self._index_path.read_text())
        assert data["format"] == CACHE_FORMAT, data["format"]
        return sorted((SegmentEntry(**entry) for entry in data["segments"]), key=_first)

    def _write_index(self) -> None:
        data = {"format": CACHE_FORMAT, "segments": [asdict(entry) for entry in self.entries]}
        temporary = self._index_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=1))
        os.replace(temporary, self._index_path)

    # ------------------------------------------------------------------ validation

    def validate(self, rpc: JsonRpc, deploy_block: int) -> list[Finding]:
        """Keep the prefix of segments that provably covers the chain from the deploy block."""
        expected, findings = deploy_block, []
        for index, entry in enumerate(self.entries):
            finding = self._check_entry(entry, expected)
            if finding is not None:
                self._truncate(index)
                return [finding]
            expected = entry.last + 1
        findings = self._check_hashes(rpc)
        return findings

    def _check_entry(self, entry: SegmentEntry, expected: int) -> Finding | None:
        if entry.first > expected:
            return _gap(expected, entry.first - 1, "no segment covers it")
        if entry.first < expected:
            return _corrupt(entry, f"overlaps the previous segment (expected {expected})")
        path = self.directory / entry.file
        if not path.exists():
            return _gap(entry.first, entry.last, f"segment file {entry.file} is missing")
        if "0x" + keccak(path.read_bytes()).hex() != entry.digest:
            return _corrupt(entry, "file digest differs from the index")
        return None

    def _check_hashes(self, rpc: JsonRpc) -> list[Finding]:
        if not self.entries:
            return []
        on_chain = block_hashes(rpc, [entry.last for entry in self.entries])
        for index, entry in enumerate(self.entries):
            if on_chain[entry.last] != entry.last_block_hash:
                self._truncate(index)
                return [
                    Finding(
                        "cache_stale",
                        f"cached block {entry.last} has another hash on chain; re-reading "
                        f"from block {entry.first}",
                        {**asdict(entry), "chain_block_hash": on_chain[entry.last]},
                    )
                ]
        return []

    def _truncate(self, keep: int) -> None:
        """Drop the segments from index `keep` on (their files too)."""
        for entry in self.entries[keep:]:
            (self.directory / entry.file).unlink(missing_ok=True)
        self.entries = self.entries[:keep]
        self._write_index()

    # ------------------------------------------------------------------ reading, writing

    def load(self, entry: SegmentEntry) -> Segment:
        """Read one validated segment."""
        data = json.loads(gzip.decompress((self.directory / entry.file).read_bytes()))
        logs = [
            {
                "address": address,
                "topics": topics,
                "data": data_hex,
                "blockNumber": block,
                "logIndex": log_index,
                "transactionHash": transaction_hash,
            }
            for address, topics, data_hex, block, log_index, transaction_hash in data["logs"]
        ]
        timestamps = {int(block): stamp for block, stamp in data["timestamps"].items()}
        return Segment(entry.first, entry.last, logs, timestamps, entry.last_block_hash)

    def store(self, segment: Segment) -> None:
        """Append a segment read from the chain (it must extend the cached range)."""
        expected = self.entries[-1].last + 1 if self.entries else segment.first
        assert segment.first == expected, (segment.first, expected)
        name = f"seg-{segment.first:012d}-{segment.last:012d}.json.gz"
        body = gzip.compress(json.dumps(_segment_json(segment)).encode(), GZIP_LEVEL)
        temporary = self.directory / (name + ".tmp")
        temporary.write_bytes(body)
        os.replace(temporary, self.directory / name)
        digest = "0x" + keccak(body).hex()
        self.entries.append(
            SegmentEntry(
                segment.first,
                segment.last,
                len(segment.logs),
                digest,
                name,
                segment.last_block_hash,
            )
        )
        self._write_index()


def _segment_json(segment: Segment) -> dict[str, Any]:
    return {
        "first": segment.first,
        "last": segment.last,
        "timestamps": {str(block): stamp for block, stamp in segment.timestamps.items()},
        "logs": [
            [
                log["address"],
                log["topics"],
                log["data"],
                log["blockNumber"],
                log["logIndex"],
                log["transactionHash"],
            ]
            for log in segment.logs
        ],
    }


def _first(entry: SegmentEntry) -> int:
    return entry.first


def _gap(first: int, last: int, why: str) -> Finding:
    return Finding(
        "cache_gap",
        f"the cache lost blocks {first}-{last} ({why}); re-reading them from the chain",
        {"missing_first_block": first, "missing_last_block": last, "reason": why},
    )


def _corrupt(entry: SegmentEntry, why: str) -> Finding:
    return Finding(
        "cache_corrupt",
        f"cache segment {entry.first}-{entry.last}: {why}; re-reading from the chain",
        asdict(entry),
    )
