"""Balance reads at scale: the deployless BalanceLens agrees with plain balanceOf calls.

Proves, on the test alliance: across more holdings than one lens call takes (so several
calls and several request batches), with real and empty balances in every brand, the lens
returns exactly what batched `balanceOf` calls return, in order, at a past block too.
"""

from __future__ import annotations

import random

from alliance import chainstate
from alliance.chainstate import balances_batched, balances_lens


def test_lens_reads_match_batched_balance_of_across_chunks(alliance, rpc, monkeypatch):
    funded = [f"0x{index:040x}" for index in range(1, 6)]
    for index, member in enumerate(funded):
        alliance.deposit("bean", member, 1_000 + index)
    past = int(alliance.client.w3.eth.block_number)
    alliance.deposit("bean", funded[0], 5)
    rng = random.Random(3)
    tokens = [t.address.lower() for t in alliance.tokens.values()]
    holdings = [(tokens[i % 3], "0x" + rng.randbytes(20).hex()) for i in range(1_000)]
    holdings[::200] = [(tokens[0], member.lower()) for member in funded]
    # Small chunks and batches, so a thousand holdings cross every boundary.
    monkeypatch.setattr(chainstate, "LENS_HOLDINGS_MAX", 90)
    monkeypatch.setattr(chainstate, "LENS_CALLS_PER_REQUEST", 4)
    lens_code = alliance.compiled.load_artifact("BalanceLens").bytecode

    for block in (past, past + 1):
        via_lens = balances_lens(rpc, lens_code, holdings, block)
        assert via_lens == balances_batched(rpc, holdings, block)
    assert sorted(b for b in via_lens if b) == [1_001, 1_002, 1_003, 1_004, 1_005]
    assert balances_lens(rpc, lens_code, holdings, past)[0] == 1_000
