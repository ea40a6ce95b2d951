"""kubectl modelops: status|watch|promote|abort|retry|history NAME.

Installed as the console script `kubectl-modelops`, which kubectl finds on PATH as a
plugin. watch redraws the status until the rollout ends and can record its timeline
as a PNG. promote, abort and retry set an annotation on the ModelDeployment to a new
value; the operator carries out each value once and records it in status."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from . import GROUP, PLURAL, VERSION
from .planner import ANNOTATION
from .status import parse_ts
from .timeline import Timeline, finished

# Not "kubectl-...": Flux's kustomize-controller strips every Update entry whose manager
# starts with "kubectl" (its cleanup of kubectl apply edits) and would report drift.
PLUGIN_MANAGER = "modelops-plugin"

MARK = {"Pass": "+", "Fail": "x", "Inconclusive": "?"}


def _ago(text: str | None, now: datetime) -> str:
    moment = parse_ts(text)
    if not moment:
        return ""
    seconds = int((now - moment).total_seconds())
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def render_status(md: dict, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    spec, st = md.get("spec", {}), md.get("status") or {}
    meta = md["metadata"]
    model = spec.get("model", {})
    strategy = spec.get("strategy", {})
    routing = next(iter(strategy.get("trafficRouting") or {"replicas": {}}))
    lines = [
        f"Name:        {meta['name']} (namespace {meta['namespace']})",
        f"Model:       {model.get('name')} {model.get('version')}  image {model.get('image')}"
        + (f"  from {model['uri']}" if model.get("uri") else ""),
        f"Strategy:    {strategy.get('type')}, {routing} routing",
    ]
    phase = st.get("phase", "Pending")
    where = []
    if st.get("stepText"):
        where.append(f"step {st['stepText']}")
    if st.get("stage"):
        where.append(st["stage"])
    lines.append(f"Phase:       {phase}" + (f" - {', '.join(where)}" if where else ""))
    weights = st.get("weights") or {}
    if weights:
        text = f"stable {weights.get('stable', 100)}%  candidate {weights.get('candidate', 0)}%"
        if weights.get("mirror"):
            text += f"  mirrored {weights['mirror']}%"
        lines.append(f"Weights:     {text}")
    for role in ("stable", "candidate"):
        track = st.get(role)
        if track:
            lines.append(f"{role.capitalize() + ':':<12} {track.get('version')} ({track.get('revision')})  "
                         f"{track.get('readyReplicas', 0)}/{track.get('replicas', 0)} ready")
            if track.get("model"):
                lines.append(f"             {_pinned(track['model'])}")
    verdict = st.get("lastVerdict")
    if verdict:
        lines.append(f"Verdict:     {verdict.get('result')} ({verdict.get('reason')}): {verdict.get('message')}  "
                     f"{_ago(verdict.get('time'), now)}")
        for check in verdict.get("checks", []):
            value = f" = {check['value']}" if check.get("value") else ""
            want = f" (want {check['threshold']})" if check.get("threshold") else ""
            note = f" - {check['message']}" if check.get("message") else ""
            evidence = f" [{check['progress']} of the way to an alarm]" if check.get("progress") else ""
            lines.append(f"  {MARK.get(check.get('result'), ' ')} {check.get('name')}{value}{want}{evidence}{note}")
    conditions = st.get("conditions") or []
    if conditions:
        lines.append("Conditions:  " + "  ".join(f"{c['type']}={c['status']}" for c in conditions))
        for c in conditions:
            # The ones a person has to act on: set problems, and a route no gateway serves.
            problem = c["status"] == "True" and c["type"] in ("Paused", "Degraded", "InvalidSpec") or \
                c["status"] == "False" and c["type"] in ("RouteReady", "ModelResolved")
            if problem:
                lines.append(f"  {c['type']}: {c.get('reason')}: {c.get('message')}")
    transition = st.get("transition")
    if transition:
        lines.append(f"Last event:  {transition.get('reason')}: {transition.get('message')}  "
                     f"{_ago(transition.get('time'), now)}")
    return "\n".join(lines)


def _pinned(model: dict) -> str:
    """A pinned remote model in one line: where, which registry version, which bytes, how good."""
    reg = f" (registry v{model['registryVersion']})" if model.get("registryVersion") else ""
    metrics = ", ".join(f"{k}={v:.4g}" if isinstance(v, (int, float)) else f"{k}={v}"
                        for k, v in sorted((model.get("metrics") or {}).items())[:4])
    return f"{model.get('uri')}{reg} {str(model.get('digest', ''))[:19]}" + (f"  {metrics}" if metrics else "")


def render_history(md: dict) -> str:
    rows = [("REVISION", "VERSION", "OUTCOME", "REASON", "MODEL", "STARTED", "FINISHED")]
    for entry in (md.get("status") or {}).get("history", []):
        pinned = entry.get("model") or {}
        where = pinned.get("uri", "") + (f" v{pinned['registryVersion']}" if pinned.get("registryVersion") else "")
        rows.append((entry.get("revision", ""), entry.get("version", ""), entry.get("outcome", ""),
                     entry.get("reason", ""), where, entry.get("startedAt", ""), entry.get("finishedAt", "")))
    if len(rows) == 1:
        return "no finished rollouts yet"
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def watch(read, interval: float, timeline_png: str | None, out=sys.stdout, clock=time.monotonic,
          sleep=time.sleep) -> int:
    """Redraws the status every `interval` seconds until the rollout has ended."""
    timeline = Timeline()
    tty = out.isatty()
    last = None
    try:
        while True:
            md = read()
            timeline.add(md, clock())
            text = render_status(md)
            if tty:
                out.write("\x1b[H\x1b[2J" + text + "\n")
            elif text != last:
                out.write(text + "\n\n")
            out.flush()
            last = text
            if finished(md):
                break
            sleep(interval)
    except KeyboardInterrupt:
        pass
    out.write("\n" + timeline.summary() + "\n")
    if timeline_png:
        timeline.render_png(timeline_png)
        out.write(f"timeline written to {timeline_png}\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubectl modelops", description="Inspect and steer ModelDeployments.")
    parser.add_argument("command", choices=["status", "watch", "promote", "abort", "retry", "history"])
    parser.add_argument("name")
    parser.add_argument("-n", "--namespace")
    parser.add_argument("--kubeconfig")
    parser.add_argument("--context")
    parser.add_argument("--interval", type=float, default=1.0, help="watch: seconds between looks")
    parser.add_argument("--timeline", metavar="PNG", help="watch: write the rollout's timeline to this PNG")
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error("--interval must be above 0")

    config.load_kube_config(config_file=args.kubeconfig, context=args.context)
    namespace = args.namespace
    if not namespace:
        _, active = config.list_kube_config_contexts(config_file=args.kubeconfig)
        namespace = (active or {}).get("context", {}).get("namespace", "default")
    api = client.CustomObjectsApi()
    try:
        if args.command in ("promote", "abort", "retry"):
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            body = {"metadata": {"annotations": {ANNOTATION.format(args.command): stamp}}}
            # Under a field manager of its own: the object's managedFields tell a person's
            # command from the operator's status and the GitOps tool's spec.
            api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.name, body,
                                               field_manager=PLUGIN_MANAGER)
            print(f"modeldeployment.{GROUP}/{args.name} {args.command} requested")
            return 0
        md = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.name)
        if args.command == "watch":
            return watch(lambda: api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.name),
                         args.interval, args.timeline)
    except ApiException as err:
        reason = "not found" if err.status == 404 else (err.reason or str(err.status))
        print(f"error: modeldeployment {args.name!r} in namespace {namespace!r}: {reason}", file=sys.stderr)
        return 1
    print(render_status(md) if args.command == "status" else render_history(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
