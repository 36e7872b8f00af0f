"""The pairing gates with a clock the test moves: when a rate-limited client may try again, where
the window ends, and what revoking a device records and refuses (times worked out by hand)."""

from __future__ import annotations

import json

import pytest

from capture_server.auth import Device, DeviceStore, FailureLimiter
from capture_server.errors import RateLimited, RequestError, Unauthorized
from core.errors import ConfigError, NotFoundError


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


def test_a_client_is_told_about_its_own_oldest_failure_not_everyones():
    clock = Clock(0.0)
    limiter = FailureLimiter(per_client=2, overall=100, window_s=60.0, clock=clock)
    failures(limiter, clock, "other", [1.0])
    failures(limiter, clock, "a", [20.0, 30.0])
    clock.t = 40.0
    with pytest.raises(RateLimited) as e:
        limiter.check("a")
    assert e.value.retry_after_s == 41  # a's failure at 20 s leaves at 80 s (not other's at 1 s)
    assert e.value.reason == "too many wrong pairing codes; wait and try again"


def test_default_limits_are_five_per_client_and_thirty_in_a_minute():
    clock = Clock(0.0)
    limiter = FailureLimiter(clock=clock)
    failures(limiter, clock, "a", [0.0, 1.0, 2.0, 3.0])
    limiter.check("a")
    failures(limiter, clock, "a", [4.0])
    with pytest.raises(RateLimited):
        limiter.check("a")
    clock.t = 60.0  # the failure at 0 s is a minute old
    limiter.check("a")
    for i in range(25):  # 4 of a's still in the window + 25 others = 29
        failures(limiter, clock, f"phone-{i}", [60.0])
    limiter.check("new")
    failures(limiter, clock, "phone-25", [60.0])
    with pytest.raises(RateLimited):
        limiter.check("new")


def test_codes_are_eight_digits_and_expired_ones_leave_the_store(tmp_path):
    clock = Clock(1000.0)
    store = DeviceStore(tmp_path, clock=clock)
    code, expires = store.new_code()
    assert len(code) == 8 and code.isdigit() and code.isascii() and expires == 1300.0
    clock.t = 1300.0  # the first code expires now
    store.new_code()
    stored = json.loads((tmp_path / "devices.json").read_text())
    assert [c["expires"] for c in stored["codes"]] == [1600.0]
    assert code not in (tmp_path / "devices.json").read_text()  # only its hash was ever stored


def test_a_fresh_store_has_no_devices_and_knows_no_token(tmp_path):
    store = DeviceStore(tmp_path / "server")
    assert store.devices() == [] and store.revoked_ids() == set()
    with pytest.raises(Unauthorized) as e:
        store.authenticate("x" * 43)
    assert (e.value.reason, e.value.where) == ("unknown device token", "Authorization")


def test_refusals_name_their_field(tmp_path):
    store = DeviceStore(tmp_path)
    code, _ = store.new_code()
    paired = store.redeem(code, "phone")
    store.revoke(paired.device.id)
    with pytest.raises(Unauthorized) as e:
        store.authenticate(paired.token)
    assert (e.value.reason, e.value.where) == ("this device was revoked; pair it again", "Authorization")
    with pytest.raises(NotFoundError) as e:
        store.revoke("nope")
    assert e.value.reason == "no paired device with this id"


def test_a_device_written_without_a_token_hash_never_matches(tmp_path):
    (tmp_path / "devices.json").write_text(json.dumps(
        {"devices": [{"id": "abc", "name": "by hand", "paired": 1.0, "revoked": None}], "codes": []}))
    store = DeviceStore(tmp_path)
    with pytest.raises(Unauthorized, match="unknown device token"):
        store.authenticate("anything")
    assert store.devices() == [Device("abc", "by hand", 1.0, None)]


@pytest.mark.parametrize(("text", "reason"), [("{not json", "not valid JSON (line 1)"),
                                              ('\n\n["a list"]', "expected a JSON object")])
def test_a_damaged_store_is_one_error_naming_the_file(tmp_path, text, reason):
    (tmp_path / "devices.json").write_text(text)
    with pytest.raises(ConfigError) as e:
        DeviceStore(tmp_path).devices()
    assert (e.value.reason, e.value.where) == (reason, str(tmp_path / "devices.json"))


def test_redeem_gates_name_their_field_and_a_code_is_dead_at_its_expiry(tmp_path):
    clock = Clock(0.0)
    store = DeviceStore(tmp_path, clock=clock)
    code, _ = store.new_code()
    for bad_code in (None, 12345678, "   "):
        with pytest.raises(RequestError) as e:
            store.redeem(bad_code, "phone")
        assert (e.value.reason, e.value.where) == ("expected the pairing code as a string", "code")
    for bad_name in (None, " ", "x" * 101):
        with pytest.raises(RequestError) as e:
            store.redeem(code, bad_name)
        assert (e.value.reason, e.value.where) == ("expected a device name (1 to 100 characters)", "name")
    clock.t = 300.0  # five minutes on the dot: expired
    with pytest.raises(Unauthorized) as e:
        store.redeem(code, "phone")
    assert (e.value.reason, e.value.where) == ("wrong or expired pairing code", "code")
    code, _ = store.new_code()
    paired = store.redeem(code, "y" * 100)  # 100 characters is the most a name may have
    assert len(paired.token) == 43 and len(paired.device.id) == 12  # 256 random bits; 48 bits of id
    int(paired.device.id, 16)


def test_an_empty_store_object_is_an_empty_store(tmp_path):
    (tmp_path / "devices.json").write_text("{}")
    store = DeviceStore(tmp_path)
    assert store.devices() == [] and store.revoked_ids() == set()
    code, _ = store.new_code()
    assert store.redeem(code, "first").device.name == "first"
