"""`modelops-operator`: runs the operator; the same as `kopf run -m modelops_operator.handlers`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

import kopf

from . import handlers  # noqa: F401 - registers the handlers
from .kube import load_config
from .leadership import ElectionConfig, LeaderElector
from .standby import stand_by


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="modelops-operator", description=__doc__)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace (default)")
    scope.add_argument("--namespace", "-n", action="append", default=[], help="watch this namespace (repeatable)")
    parser.add_argument("--liveness", help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    parser.add_argument("--log-level", default=os.environ.get("MODELOPS_LOG_LEVEL", "info"))
    election = parser.add_argument_group(
        "leader election", "run several replicas; only the holder of a coordination.k8s.io Lease reconciles")
    env = os.environ.get
    election.add_argument("--leader-elect", action=argparse.BooleanOptionalAction,
                          default=_flag(env("MODELOPS_LEADER_ELECT")),
                          help="elect a leader before reconciling (env MODELOPS_LEADER_ELECT; default off)")
    election.add_argument("--lease-name", default=env("MODELOPS_LEASE_NAME") or ElectionConfig.lease_name)
    election.add_argument("--lease-namespace", default=env("MODELOPS_LEASE_NAMESPACE"),
                          help="default: POD_NAMESPACE (the downward API), else the ServiceAccount's namespace")
    election.add_argument("--lease-duration", type=float, default=env("MODELOPS_LEASE_DURATION"),
                          help="seconds a standby waits after the last renewal it saw before taking over (15)")
    election.add_argument("--renew-deadline", type=float, default=env("MODELOPS_RENEW_DEADLINE"),
                          help="seconds the leader keeps trying to renew before it steps down and exits (10)")
    election.add_argument("--retry-period", type=float, default=env("MODELOPS_RETRY_PERIOD"),
                          help="seconds between attempts to acquire or renew the Lease (2)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        election_config = ElectionConfig.from_env(
            enabled=args.leader_elect, lease_name=args.lease_name, lease_namespace=args.lease_namespace,
            lease_duration=_seconds(args.lease_duration), renew_deadline=_seconds(args.renew_deadline),
            retry_period=_seconds(args.retry_period))
    except ValueError as err:
        parser.error(str(err))
    asyncio.run(_operate(args, election_config))


async def _operate(args: argparse.Namespace, election_config: ElectionConfig) -> None:
    memo = kopf.Memo(election=election_config)
    if election_config.enabled:
        load_config()
        handlers.serve_metrics()
        memo.elector = await stand_by(LeaderElector(election_config), args.liveness)
    await kopf.operator(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        # No kopf peering: it pauses operators by priority, it does not elect a leader.
        # Several replicas elect one on a Lease instead (--leader-elect).
        standalone=True,
        liveness_endpoint=args.liveness,
        memo=memo,
    )


def _seconds(value) -> float | None:
    return None if value in (None, "") else float(value)


if __name__ == "__main__":
    main()
