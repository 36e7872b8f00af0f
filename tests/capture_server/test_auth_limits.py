"""The pairing gates with a clock the test moves: when a rate-limited client may try again, where
the window ends, and what revoking a device records and refuses (times worked out by hand)."""

from __future__ import annotations

import pytest

from capture_server.auth import Device, DeviceStore, FailureLimiter
from capture_server.errors import RateLimited, Unauthorized
from core.errors import NotFoundError


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def failures(limiter: FailureLimiter, clock: Clock, client: str, times: list[float]) -> None:
    for t in times:
        clock.t = t
        limiter.record_failure(client)


def test_a_client_over_its_limit_is_told_when_its_oldest_failure_leaves_the_window():
    clock = Clock(0.0)
    limiter = FailureLimiter(per_client=3, overall=100, window_s=60.0, clock=clock)
    failures(limiter, clock, "10.0.0.5", [0.0, 10.0, 20.0])
    clock.t = 25.5
    with pytest.raises(RateLimited) as e:
        limiter.check("10.0.0.5")
    # the failure at 0 s leaves the window at 60 s: 34.5 s from now, rounded up to whole seconds
    assert e.value.retry_after_s == 35 and e.value.where == "code" and e.value.status == 429
    limiter.check("10.0.0.6")  # another client is not held back by this one


def test_the_window_ends_exactly_window_s_after_a_failure():
    clock = Clock(100.0)
    limiter = FailureLimiter(per_client=2, overall=100, window_s=60.0, clock=clock)
    failures(limiter, clock, "a", [100.0, 130.0])
    clock.t = 159.5
    with pytest.raises(RateLimited) as e:
        limiter.check("a")
    assert e.value.retry_after_s == 1  # 0.5 s left: never less than one second
    clock.t = 160.0  # the failure at 100 s is 60 s old now: one failure left in the window
    limiter.check("a")
    limiter.record_failure("a")
    with pytest.raises(RateLimited) as e:
        limiter.check("a")
    assert e.value.retry_after_s == 31  # the failure at 130 s leaves at 190 s


def test_everyone_together_over_the_overall_limit_waits_for_the_oldest_failure():
    clock = Clock(0.0)
    limiter = FailureLimiter(per_client=5, overall=4, window_s=60.0, clock=clock)
    failures(limiter, clock, "a", [1.0])
    failures(limiter, clock, "b", [2.0])
    failures(limiter, clock, "c", [3.0, 4.0])
    clock.t = 20.0
    with pytest.raises(RateLimited) as e:
        limiter.check("d")  # never failed itself
    assert e.value.retry_after_s == 42  # the failure at 1 s leaves at 61 s
    clock.t = 61.0
    limiter.check("d")


def test_a_client_under_both_limits_passes():
    clock = Clock(0.0)
    limiter = FailureLimiter(per_client=3, overall=4, window_s=60.0, clock=clock)
    failures(limiter, clock, "a", [1.0, 2.0])
    failures(limiter, clock, "b", [3.0])
    limiter.check("a")
    limiter.check("b")


def test_revoking_records_the_first_time_and_refuses_the_token(tmp_path):
    clock = Clock(1_764_680_000.0)
    store = DeviceStore(tmp_path / "server", clock=clock)
    code, _ = store.new_code()
    kept = store.redeem(code, "Kitchen iPad")
    code, _ = store.new_code()
    paired = store.redeem(code, "Old phone")
    assert store.devices() == [Device(kept.device.id, "Kitchen iPad", clock.t, None),
                               Device(paired.device.id, "Old phone", clock.t, None)]
    clock.t += 3600
    revoked = store.revoke(paired.device.id)
    assert revoked == Device(paired.device.id, "Old phone", clock.t - 3600, clock.t)
    clock.t += 60
    assert store.revoke(paired.device.id).revoked == clock.t - 60  # revoking again keeps the first time
    assert store.revoked_ids() == {paired.device.id}
    assert [d.revoked for d in store.devices()] == [None, clock.t - 60]
    with pytest.raises(Unauthorized, match="revoked; pair it again"):
        store.authenticate(paired.token)
    assert store.authenticate(kept.token) == Device(kept.device.id, "Kitchen iPad", clock.t - 3660)
    with pytest.raises(NotFoundError) as e:
        store.revoke("0123456789ab")
    assert e.value.where == "0123456789ab"
    assert DeviceStore(tmp_path / "server").revoked_ids() == {paired.device.id}  # stored, not cached
