#!/usr/bin/env bash
# Puts in place what `make e2e-kind` needs from the machine, and says what it changed:
#
#   Docker engine   dockerd installed but not running: started (systemctl or service;
#                   where that fails, dockerd in the background, logging to
#                   /var/log/dockerd.log). No dockerd at all on a Debian/Ubuntu machine:
#                   Debian's docker.io installed with apt-get (--no-install-recommends:
#                   dockerd, containerd, runc, iptables), then started.
#   capabilities    where dockerd's bounding set lacks capabilities that `docker run
#                   --privileged` (kind's nodes) asks for, runc-drop-missing-caps is copied
#                   to $HOST_RUNTIME_PATH (outside the clone, so a deleted clone does not
#                   break Docker), added to /etc/docker/daemon.json as a runtime and made
#                   the default (the file is merged, a copy of the old one kept next to
#                   it), and dockerd reloaded with SIGHUP (it rereads its runtimes).
#   kind's mounts   /lib/modules created (empty) where the machine has none: kind
#                   bind-mounts it into its nodes.
#   offline build   debootstrap installed when the images are to be built here.
#
# Then a throwaway privileged container (a tiny image made from the machine's own
# /usr/bin/true) must start, as kind's nodes will. Each step first checks; a second run
# changes nothing and says so. MODELOPS_KIND_HOST_SETUP=0 changes nothing at all: the
# checks only report what is missing and how to put it in place.
#
# Sourced by hack/e2e-kind.sh (host_docker, host_kind, host_report), or run alone:
#   hack/kind/host.sh [--offline]
# Exits 0 when the machine is ready, 2 when there is no Docker engine to be had here.

HOST_RUNTIME_NAME=runc-drop-missing-caps
HOST_RUNTIME_PATH="${MODELOPS_RUNTIME_PATH:-/usr/local/libexec/modelops/runc-drop-missing-caps}"
HOST_DAEMON_JSON="${MODELOPS_DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}"
HOST_DOCKERD_LOG=/var/log/dockerd.log
host_changes=()
host_skip_reason=""

host_changed() { # what
  host_changes+=("$*")
  log "machine: CHANGED: $*"
}
host_setup_allowed() { [[ "${MODELOPS_KIND_HOST_SETUP:-1}" != 0 ]]; }
# Runs a command as root: directly, or with sudo when it needs no password.
as_root() {
  if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo -n "$@"; fi
}
can_be_root() { [[ "$(id -u)" == 0 ]] || sudo -n true 2>/dev/null; }
docker_up() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
apt_install() { # package...
  local out
  out="$(as_root apt-get update -qq 2>&1)" || { echo "$out" >&2; return 1; }
  out="$(as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" 2>&1)" ||
    { echo "$out" | tail -20 >&2; return 1; }
}
dockerd_path() { PATH="$PATH:/usr/sbin:/sbin:/usr/local/sbin" command -v dockerd 2>/dev/null; }
# The pid of the dockerd serving the default socket (its pid file), else the only one.
dockerd_pid() {
  local pid
  pid="$(cat /var/run/docker.pid 2>/dev/null)" || pid=""
  if [[ -n "$pid" && -d "/proc/$pid" ]]; then echo "$pid"; return; fi
  pid="$(pidof dockerd 2>/dev/null)" || return 1
  [[ "$pid" != *" "* ]] || return 1
  echo "$pid"
}
# A local engine, ours to configure: no DOCKER_HOST elsewhere, no other context.
docker_is_local() {
  [[ -z "${DOCKER_HOST:-}" || "$DOCKER_HOST" == unix:///var/run/docker.sock || "$DOCKER_HOST" == unix:///run/docker.sock ]] &&
    [[ -z "${DOCKER_CONTEXT:-}" || "$DOCKER_CONTEXT" == default ]]
}

# --- the Docker engine -----------------------------------------------------------------------
wait_docker() { # seconds
  local _
  for _ in $(seq "$1"); do
    docker_up && return 0
    sleep 1
  done
  docker_up
}
# The service manager's way first; where that fails (Debian's init script raises
# ulimits, which root without CAP_SYS_RESOURCE cannot), dockerd in the background.
start_dockerd() {
  local how="" dockerd out
  dockerd="$(dockerd_path)"
  if [[ -d /run/systemd/system ]]; then
    how="systemctl start docker"
    out="$(as_root systemctl start docker 2>&1)" || how=""
  elif [[ -x /etc/init.d/docker ]] && command -v service >/dev/null 2>&1; then
    how="service docker start (log: /var/log/docker.log)"
    out="$(as_root service docker start 2>&1)" || how=""
  fi
  if [[ -n "$how" ]] && wait_docker 60; then
    host_changed "started the Docker engine: $how"
    return 0
  fi
  [[ -z "${out:-}" ]] || log "machine: the service manager did not start dockerd: $out"
  how="setsid $dockerd in the background (log: $HOST_DOCKERD_LOG; not a service: start it again after a reboot)"
  # shellcheck disable=SC2016 # $1 and $2 are for the inner shell
  as_root sh -c 'cd / && setsid "$1" >>"$2" 2>&1 </dev/null &' _ "$dockerd" "$HOST_DOCKERD_LOG" || return 1
  wait_docker 60 || return 1
  host_changed "started the Docker engine: $how"
}

# Returns 0 with a working engine (installed and started if need be), else 1 with
# $host_skip_reason set.
host_docker() {
  if docker_up; then
    log "machine: Docker engine running ($(docker version -f '{{.Server.Version}}' 2>/dev/null)): nothing to change"
    return 0
  fi
  if command -v docker >/dev/null 2>&1 && ! docker_is_local; then
    host_skip_reason="the Docker engine at ${DOCKER_HOST:-context $DOCKER_CONTEXT} does not answer: $(docker info 2>&1 | tail -1)"
    return 1
  fi
  if [[ -z "$(dockerd_path)" ]]; then
    if ! host_setup_allowed; then
      host_skip_reason="no Docker engine here (MODELOPS_KIND_HOST_SETUP=0: not installing Debian's docker.io)"
      return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1 || ! can_be_root; then
      host_skip_reason="no Docker engine here, and no way to install one (needs apt-get and root or password-less sudo)"
      return 1
    fi
    log "machine: no Docker engine; installing Debian's docker.io (apt-get install --no-install-recommends docker.io: dockerd, containerd, runc, iptables)"
    if ! apt_install docker.io; then
      host_skip_reason="no Docker engine here, and apt-get install docker.io failed (output above)"
      return 1
    fi
    host_changed "installed Debian's docker.io $(dpkg-query -W -f '${Version}' docker.io 2>/dev/null) (apt-get; with containerd, runc, iptables)"
    # Its maintainer scripts may have started it already.
    if docker_up; then
      host_changed "the docker.io package started the Docker engine"
      return 0
    fi
  fi
  if pidof dockerd >/dev/null 2>&1; then
    host_skip_reason="dockerd runs but does not answer: $(docker info 2>&1 | tail -1)"
    return 1
  fi
  if ! host_setup_allowed; then
    host_skip_reason="dockerd is installed but not running (MODELOPS_KIND_HOST_SETUP=0: not starting it)"
    return 1
  fi
  if ! can_be_root; then
    host_skip_reason="dockerd is installed but not running, and starting it needs root or password-less sudo"
    return 1
  fi
  log "machine: dockerd is installed but not running; starting it"
  if ! start_dockerd; then
    local logfile
    for logfile in "$HOST_DOCKERD_LOG" /var/log/docker.log; do
      [[ -s "$logfile" ]] && tail -15 "$logfile" >&2
    done
    host_skip_reason="dockerd is installed but did not start (its log above)"
    return 1
  fi
}

# --- capabilities ------------------------------------------------------------------------------
# Capabilities (hex) that --privileged asks for and dockerd cannot grant: those up to the
# kernel's last one (and CAP_CHECKPOINT_RESTORE, 40, the wrapper's last) missing from
# dockerd's bounding set. Empty when none are.
missing_caps() {
  local pid status last
  pid="$(dockerd_pid)" || pid=self
  status="/proc/$pid/status"
  [[ -r "$status" ]] || status=/proc/self/status
  last="$(cat /proc/sys/kernel/cap_last_cap 2>/dev/null || echo 40)"
  ((last <= 40)) || last=40
  local bounding want
  bounding="$(awk '/^CapBnd:/ {print $2}' "$status")"
  want=$(((1 << (last + 1)) - 1))
  if (((0x$bounding & want) != want)); then printf '%x' $((want & ~0x$bounding)); fi
}

runtime_in_place() {
  [[ "$(docker info -f '{{.DefaultRuntime}}' 2>/dev/null)" == "$HOST_RUNTIME_NAME" ]] &&
    [[ "$(docker info -f "{{(index .Runtimes \"$HOST_RUNTIME_NAME\").Path}}" 2>/dev/null)" == "$HOST_RUNTIME_PATH" ]] &&
    cmp -s "$HACK_DIR/kind/runc-drop-missing-caps" "$HOST_RUNTIME_PATH"
}

# Copies the wrapper to its stable path, merges daemon.json, reloads dockerd.
install_runtime() {
  local src="$HACK_DIR/kind/runc-drop-missing-caps" pid
  command -v jq >/dev/null 2>&1 || {
    log "machine: runc-drop-missing-caps edits the OCI spec with jq; installing it"
    apt_install jq || die "apt-get install jq failed"
    host_changed "installed jq (apt-get), which runc-drop-missing-caps uses"
  }
  if ! cmp -s "$src" "$HOST_RUNTIME_PATH"; then
    local verb=installed
    [[ -e "$HOST_RUNTIME_PATH" ]] && verb=updated
    as_root install -D -m 0755 "$src" "$HOST_RUNTIME_PATH"
    host_changed "$verb $HOST_RUNTIME_PATH (a copy of hack/kind/runc-drop-missing-caps)"
  fi
  # Merge: every other setting stays; only runtimes.<ours> and default-runtime are set.
  # The script prints what it did on its first line, then the new file (nothing when
  # the file already says all this).
  local merged
  merged="$({ as_root cat "$HOST_DAEMON_JSON" 2>/dev/null || true; } | python3 -c '
import json, sys
name, path = sys.argv[1:]
text = sys.stdin.read()
try:
    conf = json.loads(text) if text.strip() else {}
except ValueError as err:
    sys.exit(f"not valid JSON, left as it is: {err}")
if not isinstance(conf, dict):
    sys.exit("not a JSON object, left as it is")
before = json.dumps(conf, sort_keys=True)
conf.setdefault("runtimes", {})[name] = {"path": path}
old = conf.get("default-runtime")
conf["default-runtime"] = name
if json.dumps(conf, sort_keys=True) != before:
    print("default-runtime was " + (old or "not set (runc)"))
    print(json.dumps(conf, indent=2))
' "$HOST_RUNTIME_NAME" "$HOST_RUNTIME_PATH" 2>&1)" || die "$HOST_DAEMON_JSON: $merged"
  if [[ -n "$merged" ]]; then
    local backup="the file is new"
    if as_root test -e "$HOST_DAEMON_JSON"; then
      backup="$HOST_DAEMON_JSON.before-modelops.$(date +%Y%m%d%H%M%S)"
      as_root cp -p "$HOST_DAEMON_JSON" "$backup"
      backup="the previous file is $backup"
    fi
    # shellcheck disable=SC2016 # $1 is for the inner shell
    tail -n +2 <<<"$merged" | as_root sh -c 'mkdir -p "$(dirname "$1")" && cat >"$1.new" && mv "$1.new" "$1"' _ "$HOST_DAEMON_JSON"
    host_changed "$HOST_DAEMON_JSON: runtime $HOST_RUNTIME_NAME ($HOST_RUNTIME_PATH) added and made the default" \
      "($(head -1 <<<"$merged")); $backup"
  fi
  if [[ "$(docker info -f '{{.DefaultRuntime}}' 2>/dev/null)" != "$HOST_RUNTIME_NAME" ]] ||
    [[ "$(docker info -f "{{(index .Runtimes \"$HOST_RUNTIME_NAME\").Path}}" 2>/dev/null)" != "$HOST_RUNTIME_PATH" ]]; then
    pid="$(dockerd_pid)" || die "cannot tell which dockerd to reload; reload it by hand (kill -HUP <dockerd pid>)"
    as_root kill -HUP "$pid"
    local _
    for _ in $(seq 20); do
      [[ "$(docker info -f '{{.DefaultRuntime}}' 2>/dev/null)" == "$HOST_RUNTIME_NAME" ]] && break
      sleep 0.5
    done
    [[ "$(docker info -f '{{.DefaultRuntime}}' 2>/dev/null)" == "$HOST_RUNTIME_NAME" ]] ||
      die "dockerd (pid $pid) did not take $HOST_RUNTIME_NAME as its default runtime after SIGHUP; see its log" \
        "(a --default-runtime or --config-file flag on its command line wins over $HOST_DAEMON_JSON)"
    host_changed "reloaded dockerd (pid $pid, SIGHUP): default runtime now $HOST_RUNTIME_NAME"
  fi
}

# Starts a throwaway privileged container, as kind starts its nodes: an image of the
# machine's own /usr/bin/true and the libraries it loads, removed afterwards.
privileged_starts() {
  local probe=modelops-probe/privileged:true files out rc=0
  mapfile -t files < <(
    echo /usr/bin/true
    ldd /usr/bin/true 2>/dev/null | grep -o '/[^ ]*'
  )
  tar -C / -ch "${files[@]#/}" 2>/dev/null | docker import - "$probe" >/dev/null || die "could not make the probe image"
  out="$(docker run --rm --privileged --network none --entrypoint /usr/bin/true "$probe" 2>&1)" || rc=$?
  docker rmi "$probe" >/dev/null 2>&1 || true
  ((rc == 0)) || { echo "$out" >&2; return 1; }
}

host_privileged() {
  local missing
  missing="$(missing_caps)"
  if [[ -z "$missing" ]]; then
    log "machine: dockerd has every capability --privileged asks for: no runtime wrapper needed"
  elif runtime_in_place; then
    log "machine: dockerd lacks capabilities (0x$missing); $HOST_RUNTIME_NAME at $HOST_RUNTIME_PATH is already" \
      "its default runtime: nothing to change"
  elif ! docker_is_local || ! host_setup_allowed || ! can_be_root; then
    die "root here lacks capabilities (0x$missing) that 'docker run --privileged' asks for; kind's nodes cannot" \
      "start. Run hack/kind/host.sh as root (it installs hack/kind/runc-drop-missing-caps as Docker's default" \
      "runtime), or do what its header says by hand."
  else
    log "machine: dockerd lacks capabilities (0x$missing) that --privileged asks for; installing $HOST_RUNTIME_NAME" \
      "as its default runtime"
    install_runtime
  fi
  privileged_starts || die "a privileged container does not start here (docker run --privileged: output above);" \
    "kind's nodes would not either"
  log "machine: a privileged container starts"
}

# --- the rest of kind's needs -------------------------------------------------------------------
host_kind() { # [--offline]
  # kind bind-mounts the host's /lib/modules into its nodes (for kube-proxy's modprobe);
  # a machine without loadable modules has none.
  if [[ ! -d /lib/modules ]]; then
    if ! host_setup_allowed || ! can_be_root; then
      die "/lib/modules is missing and kind bind-mounts it: sudo mkdir -p /lib/modules"
    fi
    as_root mkdir -p /lib/modules
    host_changed "created /lib/modules (empty; kind bind-mounts it into its nodes)"
  fi
  if [[ "${1:-}" == --offline ]] && ! PATH="$PATH:/usr/sbin:/sbin" command -v debootstrap >/dev/null 2>&1; then
    if ! host_setup_allowed || ! command -v apt-get >/dev/null 2>&1 || ! can_be_root; then
      die "debootstrap is missing (the offline images start from it): apt-get install debootstrap"
    fi
    log "machine: installing debootstrap (the offline Debian base image is made with it)"
    apt_install debootstrap || die "apt-get install debootstrap failed"
    host_changed "installed debootstrap (apt-get)"
  fi
  host_privileged
}

host_report() {
  if ((${#host_changes[@]} == 0)) && [[ -n "$host_skip_reason" ]]; then
    log "machine: nothing changed"
  elif ((${#host_changes[@]} == 0)); then
    log "machine: nothing changed (everything e2e-kind needs was already in place)"
  else
    log "machine: ${#host_changes[@]} change(s) made:"
    local change
    for change in "${host_changes[@]}"; do log "  - $change"; done
  fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  # shellcheck source=../lib.sh
  source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
  host_docker || { log "machine: $host_skip_reason"; host_report; exit 2; }
  host_kind "$@"
  host_report
fi
