"""Leader election on a Lease: the pure decision, the Lease a candidate writes, and two
electors against one in-memory Lease with resourceVersion concurrency."""

import asyncio
import copy

import pytest

from modelops_operator.leadership import (Action, ElectionConfig, LeaderElector, LeaseRecord, decide,
                                          default_identity, next_lease)

ME, OTHER = "op-a", "op-b"


def rec(holder, duration=15.0, renew="2026-01-01T00:00:00.000000Z", transitions=3, rv="7"):
    return LeaseRecord(holder, duration, "2026-01-01T00:00:00.000000Z", renew, transitions, rv)


def test_no_lease_is_created():
    assert decide(None, ME, None, 100.0) is Action.CREATE


def test_our_lease_is_renewed_even_when_it_looks_expired():
    assert decide(rec(ME), ME, 0.0, 1000.0) is Action.RENEW


def test_a_released_lease_is_taken_at_once():
    assert decide(rec(None, duration=1), ME, 100.0, 100.0) is Action.ACQUIRE
    assert decide(rec(""), ME, 100.0, 100.0) is Action.ACQUIRE


@pytest.mark.parametrize("observed_at,now,action", [
    (100.0, 100.0, Action.WAIT),     # just seen
    (100.0, 114.9, Action.WAIT),     # not yet a lease duration since it last changed
    (100.0, 115.0, Action.ACQUIRE),  # a full lease duration without a renewal
    (100.0, 500.0, Action.ACQUIRE),
])
def test_someone_elses_lease_is_taken_only_after_a_lease_duration_unchanged(observed_at, now, action):
    assert decide(rec(OTHER), ME, observed_at, now) is action


def test_a_lease_seen_for_the_first_time_starts_its_duration_now():
    # The holder's timestamps are never trusted (clock skew): only our own observation.
    assert decide(rec(OTHER, renew="2000-01-01T00:00:00.000000Z"), ME, None, 1e9) is Action.WAIT


def test_the_lease_duration_is_the_records_own():
    assert decide(rec(OTHER, duration=4), ME, 100.0, 104.0) is Action.ACQUIRE
    assert decide(rec(OTHER, duration=60), ME, 100.0, 104.0) is Action.WAIT


def test_next_lease_counts_transitions_like_client_go():
    now = "2026-01-01T00:01:00.000000Z"
    created = next_lease(None, Action.CREATE, ME, 15, now)
    assert created == {"holderIdentity": ME, "leaseDurationSeconds": 15, "acquireTime": now, "renewTime": now,
                       "leaseTransitions": 0}
    renewed = next_lease(rec(ME), Action.RENEW, ME, 15, now)
    assert renewed["acquireTime"] == "2026-01-01T00:00:00.000000Z" and renewed["renewTime"] == now
    assert renewed["leaseTransitions"] == 3
    taken = next_lease(rec(OTHER), Action.ACQUIRE, ME, 4.0, now)
    assert taken["holderIdentity"] == ME and taken["acquireTime"] == now and taken["leaseTransitions"] == 4
    assert taken["leaseDurationSeconds"] == 4


def test_same_term():
    assert rec(OTHER).same_term(rec(OTHER, rv="8"))  # resourceVersion alone is no renewal
    assert not rec(OTHER).same_term(rec(OTHER, renew="2026-01-01T00:00:02.000000Z"))
    assert not rec(OTHER).same_term(None)


def test_config_checks_the_durations_and_the_namespace():
    with pytest.raises(ValueError, match="lease duration > renew deadline > retry period"):
        ElectionConfig(enabled=True, lease_namespace="ns", lease_duration=10, renew_deadline=10, retry_period=2)
    with pytest.raises(ValueError, match="namespace"):
        ElectionConfig(enabled=True, lease_namespace=None)
    ElectionConfig(enabled=False)  # off: nothing is needed


def test_config_from_env_and_flags():
    env = {"MODELOPS_LEADER_ELECT": "true", "POD_NAMESPACE": "modelops", "POD_NAME": "modelops-operator-abc",
           "MODELOPS_LEASE_DURATION": "4"}
    cfg = ElectionConfig.from_env(env, renew_deadline=3.0, retry_period=None)
    assert cfg.enabled and cfg.lease_namespace == "modelops" and cfg.identity == "modelops-operator-abc"
    assert (cfg.lease_duration, cfg.renew_deadline, cfg.retry_period) == (4.0, 3.0, 2.0)
    assert cfg.lease_name == "modelops-operator"
    defaults = ElectionConfig.from_env({})
    assert not defaults.enabled and (defaults.lease_duration, defaults.renew_deadline, defaults.retry_period) == (
        15.0, 10.0, 2.0)
    assert default_identity({}).rsplit("_", 1)[1].isdigit()


class FakeLeases:
    """One Lease with the API server's optimistic concurrency."""

    def __init__(self):
        self.lease, self.rv, self.writes = None, 0, []
        self.down = False

    def client(self):
        store = self

        class Client:
            async def get(self):
                await asyncio.sleep(0)
                if store.down:
                    raise RuntimeError("connection refused")
                return copy.deepcopy(store.lease)

            async def create(self, spec):
                await asyncio.sleep(0)
                if store.down:
                    raise RuntimeError("connection refused")
                if store.lease is not None:
                    return False
                return store._write(spec)

            async def update(self, rv, spec):
                await asyncio.sleep(0)
                if store.down:
                    raise RuntimeError("connection refused")
                if store.lease is None or store.lease["metadata"]["resourceVersion"] != rv:
                    return False
                return store._write(spec)

            def close(self):
                pass

        return Client()

    def _write(self, spec):
        self.rv += 1
        self.lease = {"metadata": {"resourceVersion": str(self.rv)}, "spec": dict(spec)}
        self.writes.append(spec["holderIdentity"])
        return True


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def elector(store, identity, clock, lost):
    cfg = ElectionConfig(enabled=True, lease_namespace="ns", identity=identity, lease_duration=4, renew_deadline=3,
                         retry_period=1)
    return LeaderElector(cfg, client=store.client(), on_lost=lambda reason: lost.append((identity, reason)),
                         clock=clock)


def test_two_candidates_reading_the_same_expired_lease_never_both_win():
    async def run():
        store, clock, lost = FakeLeases(), Clock(), []
        a, b = elector(store, ME, clock, lost), elector(store, OTHER, clock, lost)
        # Both find no Lease; they race to create it: one wins.
        results = await asyncio.gather(a.try_acquire_or_renew(), b.try_acquire_or_renew())
        assert sorted(results) == [False, True]
        leader, standby = (a, b) if results[0] else (b, a)
        # The leader dies; the standby sees the record unchanged for a lease duration.
        assert not await standby.try_acquire_or_renew()
        clock.t += 4.0
        # Two standbys (the old one restarted) act on the same read: only one write lands.
        third = elector(store, "op-c", clock, lost)
        third.observed, third.observed_at = standby.observed, standby.observed_at
        results = await asyncio.gather(standby.try_acquire_or_renew(), third.try_acquire_or_renew())
        assert sorted(results) == [False, True]
        assert store.lease["spec"]["leaseTransitions"] == 1
        return leader
    asyncio.run(run())


def test_the_leader_steps_down_when_it_cannot_renew_within_the_deadline():
    async def run():
        store, lost = FakeLeases(), []
        a = elector(store, ME, __import__("time").monotonic, lost)
        a.config = ElectionConfig(enabled=True, lease_namespace="ns", identity=ME, lease_duration=0.4,
                                  renew_deadline=0.3, retry_period=0.05)
        a.start()
        await asyncio.wait_for(a.wait_leading(), 2)
        assert a.valid()
        store.down = True  # the API server is unreachable
        await asyncio.wait_for(a.wait_stopped(), 2)
        assert lost and lost[0][0] == ME and "renew deadline" in lost[0][1]
        assert not a.valid()
    asyncio.run(run())


def test_the_leader_steps_down_when_another_holds_the_lease():
    async def run():
        store, lost = FakeLeases(), []
        a = elector(store, ME, __import__("time").monotonic, lost)
        a.config = ElectionConfig(enabled=True, lease_namespace="ns", identity=ME, lease_duration=4,
                                  renew_deadline=3, retry_period=0.05)
        a.start()
        await asyncio.wait_for(a.wait_leading(), 2)
        store._write({"holderIdentity": OTHER, "leaseDurationSeconds": 4, "leaseTransitions": 1})
        await asyncio.wait_for(a.wait_stopped(), 2)
        assert lost == [(ME, f"the Lease is held by {OTHER}")]
    asyncio.run(run())


def test_release_hands_the_lease_back():
    async def run():
        store, lost = FakeLeases(), []
        a = elector(store, ME, __import__("time").monotonic, lost)
        a.start()
        await asyncio.wait_for(a.wait_leading(), 2)
        await a.release()
        assert store.lease["spec"]["holderIdentity"] is None and not lost
        # A standby takes a released Lease at once.
        b = elector(store, OTHER, Clock(), lost)
        assert await b.try_acquire_or_renew()
    asyncio.run(run())


def test_a_standby_answers_the_liveness_probe_until_it_leads_then_frees_the_port():
    import aiohttp
    import socket

    from modelops_operator.standby import stand_by

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/healthz"

    async def run():
        store, lost = FakeLeases(), []
        store._write({"holderIdentity": OTHER, "leaseDurationSeconds": 4, "leaseTransitions": 0})
        b = elector(store, ME, __import__("time").monotonic, lost)
        b.config = ElectionConfig(enabled=True, lease_namespace="ns", identity=ME, lease_duration=4,
                                  renew_deadline=3, retry_period=0.05)
        waiting = asyncio.create_task(stand_by(b, url))
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # the probe comes up while the Lease is someone else's
                try:
                    async with http.get(url) as resp:
                        assert resp.status == 200 and await resp.json() == {}
                        break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.02)
            else:
                raise AssertionError("no liveness answer while standing by")
            await asyncio.sleep(0.2)
            assert not waiting.done() and store.lease["spec"]["holderIdentity"] == OTHER
            store._write({"holderIdentity": None, "leaseDurationSeconds": 1, "leaseTransitions": 1})  # released
            assert await asyncio.wait_for(waiting, 2) is b and b.valid()
            try:  # the address is free again, for kopf's own probe
                async with http.get(url) as resp:
                    raise AssertionError(f"still answered after leading: {resp.status}")
            except aiohttp.ClientConnectorError:
                pass
        await b.release()
        assert not lost
    asyncio.run(run())


def test_the_leader_keeps_renewing_while_the_operators_loop_is_busy():
    """A pass or a burst of watch events can hold the operator's event loop for seconds;
    the renewals run on a loop of their own, so leadership survives it."""
    import time

    async def run():
        store, lost = FakeLeases(), []
        a = elector(store, ME, time.monotonic, lost)
        a.config = ElectionConfig(enabled=True, lease_namespace="ns", identity=ME, lease_duration=2,
                                  renew_deadline=1.5, retry_period=0.1)
        a.start()
        await asyncio.wait_for(a.wait_leading(), 5)
        writes = len(store.writes)
        busy_until = time.monotonic() + 3 * a.config.renew_deadline
        while time.monotonic() < busy_until:  # the operator's loop computes without yielding
            sum(range(1000))
        assert not lost and a.valid()
        assert len(store.writes) > writes + 3  # renewed all along
        await a.release()
    asyncio.run(run())


def test_a_campaign_that_dies_is_no_standby():
    """An election that ends without leading (an unexpected error) fails the wait, so the
    process exits and is restarted instead of standing by for ever."""
    async def run():
        store, lost = FakeLeases(), []
        a = elector(store, ME, Clock(), lost)

        async def broken():
            raise TypeError("a bug")
        a.run = broken
        a.start()
        with pytest.raises(RuntimeError, match="ended without leading"):
            await asyncio.wait_for(a.wait_leading(), 5)
    asyncio.run(run())
