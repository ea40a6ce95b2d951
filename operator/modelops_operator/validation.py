"""What the child objects' APIs require of the values a ModelDeployment hands them.

The CRD's schema and CEL rules refuse these at admission; a spec that slipped past them
(validation off, an older CRD) is refused here instead, by the same rules, with a
SpecError naming the field. Each check mirrors a rule in the CRD file."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from .durations import parse_duration
from .naming import MAX_NAME_LENGTH

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# Gateway API Hostname: RFC 1123, optionally a leading wildcard label.
HOSTNAME = re.compile(r"(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
GROUP = re.compile(r"|[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
KIND = re.compile(r"[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?")
# distribution/reference: [registry[:port]/]path[:tag][@algorithm:digest]
IMAGE = re.compile(
    r"([a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?([.][a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*(:[0-9]+)?/)?"
    r"[a-z0-9]+(([.]|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([.]|_|__|-+)[a-z0-9]+)*)*"
    r"(:[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127})?(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?")
URL = re.compile(r"https?://[^\s/?#@]+([/?#]\S*)?")
CONFIGMAP_KEY = re.compile(r"[-._a-zA-Z0-9]+")
QUANTITY = re.compile(r"[+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
                      r"(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?")
EXTENDED_RESOURCE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/"
                               r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
MODEL_PORT = 3000  # config.MODEL_PORT
# Go's (and CEL's) largest duration, 2562047h47m16.854775807s.
MAX_DURATION = 9223372036.854775807
_SUFFIX = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
           "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": 1,
           "k": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18}


class Invalid(ValueError):
    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field, self.problem = field, problem


def _full(pattern: re.Pattern, value) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def check_name(name) -> None:
    """metadata.name: the stem of every child's name (naming.py)."""
    if not _full(DNS1035_LABEL, name):
        raise Invalid("metadata.name", "must be a DNS label that starts with a letter (lower-case letters, "
                                       "digits and '-'): it names the ModelDeployment's Services")
    if len(name) > MAX_NAME_LENGTH:
        raise Invalid("metadata.name", f"must be at most {MAX_NAME_LENGTH} characters: the Service "
                                       "NAME-preview must stay within 63")


def quantity(value) -> Decimal | None:
    """A Kubernetes quantity's value, None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, str) or len(value) > 64 or not QUANTITY.fullmatch(value):
        return None
    number = re.match(r"[+-]?[0-9.]+", value).group(0)
    suffix = value[len(number):]
    try:
        if suffix in _SUFFIX:
            return Decimal(number) * Decimal(_SUFFIX[suffix])
        return Decimal(number).scaleb(int(suffix[1:]))
    except (InvalidOperation, ValueError, ArithmeticError):
        return None


def duration(value, field: str, least: float = 0.0, above: bool = False) -> float:
    """Seconds of a duration at or `above` `least`, and at most Go's largest."""
    try:
        seconds = parse_duration(value)
    except ValueError as err:
        raise Invalid(field, str(err)) from None
    if seconds > MAX_DURATION:
        raise Invalid(field, "must be at most 2562047h")
    if above and seconds <= least:
        raise Invalid(field, f"must be above {least:g}s" if least else "must be above 0")
    if not above and seconds < least:
        raise Invalid(field, f"must be at least {least:g}s")
    return seconds


def image(value, field: str) -> None:
    if not _full(IMAGE, value) or len(value) > 512:
        raise Invalid(field, "must be a container image reference such as registry.example/churn:1.3.0 "
                             "(lower-case repository path, optional :tag and @sha256:digest, no spaces)")


def url(value, field: str) -> None:
    if not _full(URL, value) or len(value) > 2048:
        raise Invalid(field, "must be an http:// or https:// URL with a host")


def resources(raw, field: str) -> None:
    """A container's resources as the Pod API checks them."""
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise Invalid(field, "must be an object")
    values = {}
    for part in ("requests", "limits"):
        block = raw.get(part)
        if block is None:
            values[part] = {}
            continue
        if not isinstance(block, dict):
            raise Invalid(f"{field}.{part}", "must be an object")
        values[part] = {}
        for name, value in block.items():
            path = f"{field}.{part}.{name}"
            if not (name in STANDARD_RESOURCES
                    or (name.startswith("hugepages-") and quantity(name[len("hugepages-"):]) is not None)
                    or (_full(EXTENDED_RESOURCE, name) and len(name) <= 317
                        and not name.split("/")[0].endswith("kubernetes.io") and not name.startswith("requests."))):
                raise Invalid(path, "resource names are cpu, memory, ephemeral-storage, hugepages-SIZE or an "
                                    "extended resource named DOMAIN/NAME (such as nvidia.com/gpu)")
            amount = quantity(value)
            if amount is None:
                raise Invalid(path, "must be a quantity such as 500m, 2 or 1Gi")
            if amount < 0:
                raise Invalid(path, "must not be negative")
            if "/" in name and amount != amount.to_integral_value():
                raise Invalid(path, "extended resources are counted in whole units")
            values[part][name] = amount
    requests, limits = values["requests"], values["limits"]
    for name, amount in requests.items():
        if name in limits and amount > limits[name]:
            raise Invalid(f"{field}.requests.{name}", "must not exceed its limit")
        if (name.startswith("hugepages-") or "/" in name) and limits.get(name) != amount:
            raise Invalid(f"{field}.limits.{name}", "hugepages and extended resources (such as nvidia.com/gpu) "
                                                    "cannot be overcommitted: their limit must equal the request")
    if any(n.startswith("hugepages-") for n in limits) and not {"cpu", "memory"} & (set(limits) | set(requests)):
        raise Invalid(field, "hugepages need a cpu or memory request or limit")


def _parent_key(ref: dict) -> tuple:
    return (ref.get("group"), ref.get("kind"), ref["name"], ref.get("namespace") or "")


def gateway_routing(gw: dict, field: str) -> None:
    """The HTTPRoute's parentRefs and hostnames, by the Gateway API's own rules."""
    refs = gw.get("parentRefs") or []
    seen: dict[tuple, list] = {}
    for i, ref in enumerate(refs):
        path = f"{field}.parentRefs[{i}]"
        if not isinstance(ref, dict) or not isinstance(ref.get("name"), str) or not 1 <= len(ref["name"]) <= 253:
            raise Invalid(f"{path}.name", "is required (at most 253 characters)")
        for key, pattern, longest in (("group", GROUP, 253), ("kind", KIND, 63), ("namespace", DNS_LABEL, 63),
                                      ("sectionName", SUBDOMAIN, 253)):
            if key in ref and (not _full(pattern, ref[key]) or len(ref[key]) > longest):
                raise Invalid(f"{path}.{key}", f"is not a valid {key} (at most {longest} characters)")
        port = ref.get("port")
        if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535):
            raise Invalid(f"{path}.port", "must be a port from 1 to 65535")
        seen.setdefault(_parent_key(ref), []).append(ref.get("sectionName") or "")
    for sections in seen.values():
        if len(sections) > 1 and ("" in sections or len(set(sections)) != len(sections)):
            raise Invalid(f"{field}.parentRefs", "each parent (and sectionName) may be referenced only once, and "
                                                 "sectionName must be set on every reference to a repeated parent")
    for i, host in enumerate(gw.get("hostnames") or []):
        if not _full(HOSTNAME, host) or len(host) > 253:
            raise Invalid(f"{field}.hostnames[{i}]", "must be a hostname (RFC 1123, lower case, optionally with "
                                                     "a leading *. label; no IPs)")


def header_matches(headers: list, field: str) -> None:
    names = set()
    for i, h in enumerate(headers or []):
        name = (h.get("name") or "") if isinstance(h, dict) else ""
        if name.lower() in names:
            raise Invalid(f"{field}[{i}].name", f"{name!r} appears twice (header names are case-insensitive)")
        names.add(name.lower())
        if h.get("type") == "RegularExpression" and len(h.get("value") or "") > 4088:
            raise Invalid(f"{field}[{i}].value", "a RegularExpression value must be at most 4088 characters")


def spec(spec: dict) -> None:
    """The checks above over a defaulted spec; the first problem raises Invalid."""
    model = spec.get("model") or {}
    image(model.get("image"), "spec.model.image")
    ref = model.get("credentialsSecretRef")
    if isinstance(ref, dict) and not (_full(SUBDOMAIN, ref.get("name")) and len(ref["name"]) <= 253):
        raise Invalid("spec.model.credentialsSecretRef.name", "must be a DNS subdomain")
    resources(spec.get("resources"), "spec.resources")
    strategy = spec.get("strategy") or {}
    gw = (strategy.get("trafficRouting") or {}).get("gatewayAPI")
    if isinstance(gw, dict):
        gateway_routing(gw, "spec.strategy.trafficRouting.gatewayAPI")
    duration(strategy.get("scaleDownDelay", "30s"), "spec.strategy.scaleDownDelay")
    for block in ("canary", "shadow"):
        for i, step in enumerate((strategy.get(block) or {}).get("steps") or []):
            pause = step.get("pause") if isinstance(step, dict) else None
            if pause is not None and pause != "Manual":
                duration(pause, f"spec.strategy.{block}.steps[{i}].pause")
    if "shadow" in strategy:
        duration((strategy["shadow"] or {}).get("duration", "5m"), "spec.strategy.shadow.duration", above=True)
    ab = strategy.get("abTest")
    if isinstance(ab, dict):
        header_matches((ab.get("match") or {}).get("headers"), "spec.strategy.abTest.match.headers")
        decision = ab.get("decision") or {}
        duration(decision.get("maxDuration", "24h"), "spec.strategy.abTest.decision.maxDuration", above=True)
    analysis = spec.get("analysis") or {}
    address = (analysis.get("provider") or {}).get("address")
    if address is not None:
        url(address, "spec.analysis.provider.address")
    latency = (analysis.get("slo") or {}).get("maxLatencyP99")
    if latency is not None:
        duration(latency, "spec.analysis.slo.maxLatencyP99", above=True)
    monitor = spec.get("monitor") or {}
    if "image" in monitor:
        image(monitor["image"], "spec.monitor.image")
    if monitor.get("port") == MODEL_PORT:
        raise Invalid("spec.monitor.port", f"must not be {MODEL_PORT}, the model server's port in the same pod")
    duration(monitor.get("window", "5m"), "spec.monitor.window", least=1.0)
    cm = (monitor.get("referenceProfile") or {}).get("configMapRef")
    if isinstance(cm, dict):
        if not (_full(SUBDOMAIN, cm.get("name")) and len(cm["name"]) <= 253):
            raise Invalid("spec.monitor.referenceProfile.configMapRef.name", "must be a DNS subdomain")
        key = cm.get("key", "profile.json")
        if not (_full(CONFIGMAP_KEY, key) and len(key) <= 253):
            raise Invalid("spec.monitor.referenceProfile.configMapRef.key",
                          "must be a ConfigMap key: letters, digits, '-', '_' and '.'")
    resources(monitor.get("resources"), "spec.monitor.resources")
    duration(spec.get("progressDeadline", "10m"), "spec.progressDeadline", above=True)
    for i, hook in enumerate(spec.get("hooks") or []):
        if not isinstance(hook, dict):
            continue
        path = f"spec.hooks[{i}]"
        name = hook.get("name")
        if not (_full(DNS_LABEL, name) and len(name) <= 40):
            raise Invalid(f"{path}.name", "must be a DNS label of at most 40 characters")
        duration(hook.get("deadline", "30m"), f"{path}.deadline", least=1.0)
        http = hook.get("http")
        if isinstance(http, dict):
            url(http.get("url"), f"{path}.http.url")
            duration(http.get("timeout", "10s"), f"{path}.http.timeout", above=True)
            duration(http.get("pollInterval", "10s"), f"{path}.http.pollInterval", least=1.0)
        job = hook.get("job")
        if isinstance(job, dict):
            image(job.get("image"), f"{path}.job.image")
            account = job.get("serviceAccountName")
            if account is not None and not (_full(SUBDOMAIN, account) and len(account) <= 253):
                raise Invalid(f"{path}.job.serviceAccountName", "must be a DNS subdomain")
            for j, env in enumerate(job.get("env") or []):
                env_name = env.get("name") if isinstance(env, dict) else None
                if not _full(re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*"), env_name):
                    raise Invalid(f"{path}.job.env[{j}].name", "must be an environment variable name")
            resources(job.get("resources"), f"{path}.job.resources")
    for i, note in enumerate(spec.get("notifications") or []):
        if isinstance(note, dict):
            url(note.get("url"), f"spec.notifications[{i}].url")
