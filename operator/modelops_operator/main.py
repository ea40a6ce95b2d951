"""`modelops-operator`: runs the operator; the same as `kopf run -m modelops_operator.handlers`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os

import kopf

from . import handlers  # noqa: F401 - registers the handlers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="modelops-operator", description=__doc__)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace (default)")
    scope.add_argument("--namespace", "-n", action="append", default=[], help="watch this namespace (repeatable)")
    parser.add_argument("--liveness", help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    parser.add_argument("--log-level", default=os.environ.get("MODELOPS_LOG_LEVEL", "info"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(kopf.operator(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=True,  # one replica (Recreate); no peering objects needed
        liveness_endpoint=args.liveness,
    ))


if __name__ == "__main__":
    main()
