"""Alliance contract events: a catalogue built from the ABIs, fast decoding, bounded reads.

Shared by the settlement indexer and the audit tool, which both replay millions of logs:
events whose data holds only static types (every hot one: `Transfer`, `Converted`,
`PointsMinted`, `PointsBurned`, `Gifted`) are decoded by slicing 32-byte words; the rest
go through eth_abi. Addresses are lower-case 0x-hex everywhere (cheap to compare and hash).

`LogReader` walks a block range in bounded windows, halving a window the node refuses as
too large, and yields each window's events in chain order (block, log index).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from sys import intern
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak

from alliance.artifacts import Artifact
from alliance.chain import abi_type
from alliance.errors import ChainRpcFailed
from alliance.manifest import DeploymentManifest
from alliance.rpc import JsonRpc

BLOCK_RANGE_MAX = 5_000
"""Blocks per eth_getLogs window (a window the node refuses is halved)."""

BLOCK_RANGE_MIN = 1
"""Below this a refused window is a real error, not a size limit."""

ALLIANCE_CONTRACTS = ("AllianceGovernance", "AllianceExchange", "SettlementAnchor", "PointToken")
"""Contracts whose events make up the alliance's history."""

_STATIC_PREFIXES = ("uint", "int", "address", "bool", "bytes32")


def _is_static(type_name: str) -> bool:
    return type_name.startswith(_STATIC_PREFIXES) and "[" not in type_name


def _hex_address(word: str) -> str:
    return "0x" + word[24:].lower()


def _hex_bool(word: str) -> bool:
    return word[-1] == "1"


def _hex_signed(word: str) -> int:
    value = int(word, 16)
    return value - (1 << 256) if value >> 255 else value


def _hex_unsigned(word: str) -> int:
    return int(word, 16)


def _hex_converter(type_name: str) -> Callable[[str], Any]:
    """How to read one 32-byte ABI word, given as 64 hex digits, of `type_name`.

    Decoding straight from the JSON-RPC hex text (no bytes round trip, converters chosen
    once per event type) is what lets a replay decode a million logs in seconds.
    """
    if not _is_static(type_name):
        # Indexed dynamic values are stored as their hash: keep the hash.
        return bytes.fromhex
    if type_name == "address":
        return _hex_address
    if type_name == "bool":
        return _hex_bool
    if type_name == "bytes32":
        return bytes.fromhex
    if type_name.startswith("int"):
        return _hex_signed
    return _hex_unsigned


def canonical_address(address: str) -> str:
    """`address` lower-case and interned: a replay keying millions of holdings by address
    keeps one string per address however many rows name it."""
    return intern(address.lower())


@dataclass(frozen=True)
class EventSpec:
    """One event's layout: indexed fields in topics, the others in data."""

    name: str
    signature: str
    topic0: bytes
    indexed: tuple[tuple[str, str], ...]
    data: tuple[tuple[str, str], ...]
    _topic_decoders: tuple[tuple[str, Callable[[str], Any]], ...] = field(
        init=False, repr=False, compare=False
    )
    _data_decoders: tuple[tuple[str, Callable[[str], Any], int], ...] | None = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # Converters are derived from the layout, once; they take no part in equality, so
        # the catalogue's duplicate check still compares layouts only.
        topic_decoders = tuple((name, _hex_converter(t)) for name, t in self.indexed)
        data_decoders = tuple(
            (name, _hex_converter(t), 2 + 64 * index) for index, (name, t) in enumerate(self.data)
        )
        object.__setattr__(self, "_topic_decoders", topic_decoders)
        object.__setattr__(self, "_data_decoders", data_decoders if self.data_is_static else None)

    @property
    def data_is_static(self) -> bool:
        return all(_is_static(type_name) for _, type_name in self.data)

    @classmethod
    def from_abi(cls, entry: Mapping[str, Any]) -> EventSpec:
        inputs = entry["inputs"]
        types = ",".join(abi_type(item) for item in inputs)
        signature = f"{entry['name']}({types})"
        return cls(
            name=entry["name"],
            signature=signature,
            topic0=keccak(text=signature),
            indexed=tuple((i["name"], abi_type(i)) for i in inputs if i["indexed"]),
            data=tuple((i["name"], abi_type(i)) for i in inputs if not i["indexed"]),
        )

    def decode_args(self, topics: Sequence[str], data: bytes) -> dict[str, Any]:
        """The event's arguments by name from raw topics (hex) and data."""
        return self.decode_hex(topics, "0x" + data.hex())

    def decode_hex(self, topics: Sequence[str], data: str) -> dict[str, Any]:
        """The event's arguments by name from raw topics and data, both 0x-hex text."""
        args: dict[str, Any] = {}
        for (name, convert), topic in zip(self._topic_decoders, topics[1:], strict=True):
            args[name] = convert(topic[2:])
        if self._data_decoders is not None:
            for name, convert, start in self._data_decoders:
                args[name] = convert(data[start : start + 64])
        else:
            values = abi_decode([type_name for _, type_name in self.data], bytes.fromhex(data[2:]))
            args.update(zip((name for name, _ in self.data), values, strict=True))
        return args


@dataclass(frozen=True, slots=True)
class ChainEvent:
    """One decoded log."""

    name: str
    address: str
    block_number: int
    log_index: int
    transaction_hash: str
    args: dict[str, Any]

    @property
    def position(self) -> tuple[int, int]:
        """(block, log index): the event's place in chain order."""
        return self.block_number, self.log_index


class EventCatalogue:
    """Every event of the given ABIs, by topic0."""

    def __init__(self, abis: Iterable[Sequence[Mapping[str, Any]]]) -> None:
        self._by_topic: dict[bytes, EventSpec] = {}
        self._by_topic_hex: dict[str, EventSpec] = {}
        for abi in abis:
            for entry in abi:
                if entry.get("type") != "event" or entry.get("anonymous"):
                    continue
                spec = EventSpec.from_abi(entry)
                known = self._by_topic.setdefault(spec.topic0, spec)
                assert known == spec, f"two layouts for {spec.signature}"
                self._by_topic_hex["0x" + spec.topic0.hex()] = known

    def spec(self, name: str) -> EventSpec:
        """The spec of the event called `name` (the catalogue holds one per name)."""
        matches = [spec for spec in self._by_topic.values() if spec.name == name]
        assert len(matches) == 1, f"{len(matches)} events named {name}"
        return matches[0]

    def decode(self, log: Mapping[str, Any]) -> ChainEvent | None:
        """Decode one raw JSON-RPC log; None for a topic the catalogue does not know."""
        topics = log["topics"]
        if not topics:
            return None
        spec = self._by_topic_hex.get(topics[0].lower())
        if spec is None:
            return None
        return ChainEvent(
            name=spec.name,
            address=log["address"].lower(),
            block_number=int(log["blockNumber"], 16),
            log_index=int(log["logIndex"], 16),
            transaction_hash=log["transactionHash"],
            args=spec.decode_hex(topics, log["data"]),
        )


def alliance_catalogue(load: Callable[[str], Artifact]) -> EventCatalogue:
    """The catalogue of every alliance contract's events, from compiled artifacts."""
    return EventCatalogue(load(name).abi for name in ALLIANCE_CONTRACTS)


def alliance_addresses(manifest: DeploymentManifest) -> list[str]:
    """Every deployed alliance contract: governance, exchange, anchor, each brand's token."""
    records = [manifest.governance, manifest.exchange, manifest.settlement_anchor]
    records += [brand.token for brand in manifest.brands]
    return [record.address.lower() for record in records]


class LogReader:
    """Reads and decodes the logs of a fixed set of contracts in bounded block windows."""

    def __init__(
        self,
        rpc: JsonRpc,
        catalogue: EventCatalogue,
        addresses: Sequence[str],
        *,
        block_range_max: int = BLOCK_RANGE_MAX,
    ) -> None:
        assert block_range_max >= BLOCK_RANGE_MIN
        self.rpc = rpc
        self.catalogue = catalogue
        self.addresses = [address.lower() for address in addresses]
        self.block_range_max = block_range_max

    def windows(
        self, from_block: int, to_block: int
    ) -> Iterator[tuple[int, int, list[ChainEvent]]]:
        """Yield (first, last, events) windows covering [from_block, to_block] in order."""
        start, size = from_block, self.block_range_max
        while start <= to_block:
            end = min(start + size - 1, to_block)
            try:
                raw = self.rpc.get_logs(self.addresses, start, end)
            except ChainRpcFailed:
                if end == start:
                    raise
                size = max(BLOCK_RANGE_MIN, (end - start + 1) // 2)
                continue
            events = [event for event in map(self.catalogue.decode, raw) if event is not None]
            events.sort(key=lambda event: (event.block_number, event.log_index))
            yield start, end, events
            start = end + 1
            size = self.block_range_max

    def events(self, from_block: int, to_block: int) -> Iterator[ChainEvent]:
        """Every event in [from_block, to_block], in chain order."""
        for _, _, events in self.windows(from_block, to_block):
            yield from events
