"""A deployed alliance survives an Anvil restart: balances, supply, request ids and rates.

Uses a private chain (not the session one) with state persisted under its data dir, stops
it with SIGTERM as `alliance chain stop` does, starts it again from the same state file
and checks that everything the contracts hold came back and the exchange still works.
"""

from alliance.deploy import is_deployed
from tests.support.alliance import deploy_test_alliance, new_member


def test_restarting_the_chain_keeps_every_balance_and_request_id(compiled, chain_factory, tmp_path):
    chain = chain_factory()
    alliance = deploy_test_alliance(compiled, chain.rpc_url, tmp_path)
    member = new_member().address
    alliance.deposit("bean", member, 10_000, request_id=77)
    receipt = alliance.convert(member, "bean", "sky", 4_000, request_id=78)
    block_before = receipt["blockNumber"]
    supplies_before = {
        code: alliance.call(t.functions.totalSupply()) for code, t in alliance.tokens.items()
    }

    chain.stop()
    assert not chain.is_running()
    chain.start()
    chain.wait_ready()

    assert is_deployed(alliance.client, alliance.manifest)
    assert alliance.client.w3.eth.block_number >= block_before
    assert alliance.balance("bean", member) == 6_000
    assert alliance.balance("sky", member) == 1_980  # 4,000 BEAN = 40 units = 2,000 SKY, less 1%
    assert {
        code: alliance.call(t.functions.totalSupply()) for code, t in alliance.tokens.items()
    } == supplies_before
    assert alliance.call(alliance.tokens["bean"].functions.isRequestProcessed(77))
    assert alliance.call(alliance.exchange.functions.isRequestProcessed(78))
    # The restarted chain keeps working, and still refuses the old request ids.
    alliance.convert(member, "bean", "sky", 1_000, request_id=79)
    assert alliance.balance("bean", member) == 5_000
