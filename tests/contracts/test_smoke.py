"""The deployed test alliance converts points end to end (a fast canary for the fixtures)."""

from tests.support.alliance import new_member


def test_deployed_alliance_converts_points_between_brands(alliance):
    member = new_member().address
    alliance.deposit("bean", member, 1_000)
    receipt = alliance.convert(member, "bean", "sky", 1_000)
    [converted] = alliance.events(receipt, alliance.exchange, "Converted")
    # 1,000 BEAN at 0.01 unit each = 10 units = 500 SKY gross; 1% fee = 5 SKY.
    assert (converted["amountOut"], converted["feePoints"]) == (495, 5)
    assert alliance.balance("bean", member) == 0
    assert alliance.balance("sky", member) == 495
