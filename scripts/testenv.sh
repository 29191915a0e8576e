#!/usr/bin/env bash
# The real parts the tests (and the demo) talk to, brought up idempotently:
#   - the host's dockerd (/var/run/docker.sock), and a second dockerd standing for a second host
#   - a 3-member etcd cluster on loopback (plain), and a 1-member etcd with TLS + auth
#   - the local test image, made from Debian's busybox-static with `docker import`
# Usage: scripts/testenv.sh up | down | clean | status | env | etcd-stop N | etcd-start N | etcd-kill N
#        | etcd-pause N | etcd-resume N | docker2-stop | docker2-start | podman-stop | podman-start
# Writes $DIR/env.json and $DIR/env.sh with the endpoints (DIR defaults to /tmp/discovery-testenv).
set -euo pipefail

DIR=${DISCOVERY_TESTENV_DIR:-/tmp/discovery-testenv}
IMAGE=${DISCOVERY_TEST_IMAGE:-discovery-test/busybox:1}
ETCD_CLIENT_PORTS=(23791 23792 23793)
ETCD_PEER_PORTS=(23891 23892 23893)
TLS_CLIENT_PORT=23794
TLS_PEER_PORT=23894
DOCKER2="$DIR/docker2"
DOCKER2_SOCK="$DOCKER2/docker.sock"
DOCKER2_BRIDGE=dischost2br
DOCKER2_CIDR=172.30.0.1/24
PODMAN="$DIR/podman"
PODMAN_SOCK="$PODMAN/podman.sock"

log() { echo "testenv: $*" >&2; }
die() { echo "testenv: error: $*" >&2; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root to install and start dockerd/etcd (run: sudo $0 $*)"; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v etcd >/dev/null || missing+=(etcd-server)
  command -v etcdctl >/dev/null || missing+=(etcd-client)
  [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx httpd || missing+=(busybox-static)
  command -v tmux >/dev/null || missing+=(tmux)
  command -v promtool >/dev/null || missing+=(prometheus)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v ip >/dev/null || missing+=(iproute2)
  # Real consumers of the DNS and HTTP interfaces.
  command -v dig >/dev/null || missing+=(dnsutils)
  command -v haproxy >/dev/null || missing+=(haproxy)
  command -v dnsmasq >/dev/null || missing+=(dnsmasq-base)
  /usr/bin/python3 -c 'import consul' >/dev/null 2>&1 || missing+=(python3-consul)
  # Peers for the benchmarks (npm run bench): dnsperf against the DNS server, wrk and nginx for the HTTP API.
  command -v dnsperf >/dev/null || missing+=(dnsperf)
  command -v wrk >/dev/null || missing+=(wrk)
  command -v nginx >/dev/null || missing+=(nginx-light)
  # A wall-clock step under a running agent (the clock fault test).
  [ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 ] || missing+=(faketime)
  if [ ${#missing[@]} -gt 0 ]; then
    need_root
    log "installing ${missing[*]} (apt-get)"
    apt-get update -qq >/dev/null || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$DIR/apt.log" 2>&1 \
      || die "apt-get install ${missing[*]} failed; see $DIR/apt.log"
    # Debian's prometheus package starts a server; the tests need only promtool.
    if systemctl is-active prometheus >/dev/null 2>&1; then systemctl stop prometheus >/dev/null 2>&1 || true; fi
    # Likewise haproxy and nginx: the tests and benches start their own on loopback ports.
    for service in haproxy nginx; do
      if systemctl is-active "$service" >/dev/null 2>&1; then systemctl stop "$service" >/dev/null 2>&1 || true; fi
    done
  fi
}

wait_for() { # wait_for <seconds> <description> <command...>
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

# ---------- dockerd (host 1) ----------
docker1_ok() { docker -H unix:///var/run/docker.sock version >/dev/null 2>&1 && ip link show docker0 >/dev/null 2>&1; }

docker1_up() {
  if docker1_ok; then return; fi
  need_root
  if pgrep -x dockerd >/dev/null && ! ip link show docker0 >/dev/null 2>&1; then
    log "docker0 is missing: restarting dockerd so it recreates it"
    pkill -x dockerd || true
    wait_for 20 "dockerd to stop" bash -c '! pgrep -x dockerd' || die "dockerd did not stop"
  fi
  if ! pgrep -f '^dockerd( |$)' >/dev/null && ! pgrep -x dockerd >/dev/null; then
    log "starting dockerd (log: $DIR/dockerd.log)"
    setsid nohup dockerd >"$DIR/dockerd.log" 2>&1 </dev/null &
  fi
  wait_for 60 dockerd docker1_ok || die "dockerd did not come up within 60s; see $DIR/dockerd.log"
}

# ---------- dockerd (host 2) ----------
docker2_ok() { docker -H "unix://$DOCKER2_SOCK" version >/dev/null 2>&1; }

docker2_start() {
  if docker2_ok; then return; fi
  need_root
  if ! ip link show "$DOCKER2_BRIDGE" >/dev/null 2>&1; then
    ip link add "$DOCKER2_BRIDGE" type bridge
    ip addr add "$DOCKER2_CIDR" dev "$DOCKER2_BRIDGE"
  fi
  ip link set "$DOCKER2_BRIDGE" up
  mkdir -p "$DOCKER2/data" "$DOCKER2/exec"
  if [ -f "$DOCKER2/pid" ] && kill -0 "$(cat "$DOCKER2/pid")" 2>/dev/null; then :; else
    log "starting second dockerd at $DOCKER2_SOCK"
    setsid nohup dockerd --data-root "$DOCKER2/data" --exec-root "$DOCKER2/exec" --pidfile "$DOCKER2/pid" \
      -H "unix://$DOCKER2_SOCK" -b "$DOCKER2_BRIDGE" --iptables=false --ip-masq=false \
      >"$DOCKER2/dockerd.log" 2>&1 </dev/null &
  fi
  wait_for 60 "second dockerd" docker2_ok || die "second dockerd did not come up; see $DOCKER2/dockerd.log"
}

docker2_stop() {
  if [ -f "$DOCKER2/pid" ]; then
    local pid; pid=$(cat "$DOCKER2/pid")
    kill "$pid" 2>/dev/null || true
    wait_for 30 "second dockerd to stop" bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
  fi
}

# ---------- podman (rootful, Docker-compatible API) ----------
# Debian's podman 4.3 (CNI networking), serving the Docker API on its own socket with
# `podman system service --time=0`. Two things this machine kind lacks are stood in for:
#   - root without CAP_SYS_RESOURCE may not raise RLIMIT_NOFILE/NPROC above its own hard limits,
#     and Podman gives containers 1048576 open files by default: runc then fails with
#     "error setting rlimit type 7: operation not permitted". The service gets a containers.conf
#     with default_ulimits equal to its own limits (only when the capability is missing).
#   - Podman runs HEALTHCHECKs from systemd timers; without systemd as PID 1 they never run
#     ("unable to get systemd connection to add healthchecks" in its log). A loop here runs
#     `podman healthcheck run` for each container with a check, at its interval, as the timer would.
podman_ok() { local v; v=$(docker -H "unix://$PODMAN_SOCK" version 2>/dev/null) || return 1; [[ $v == *"Podman Engine"* ]]; }
podman_pid_running() { [ -f "$PODMAN/pid" ] && kill -0 "$(cat "$PODMAN/pid")" 2>/dev/null; }
lacks_sys_resource() { local eff; eff=$(awk '/^CapEff/ {print $2}' /proc/self/status); [ $(( 0x$eff >> 24 & 1 )) = 0 ]; }

podman_service_start() {
  rm -f "$PODMAN_SOCK"
  log "starting podman system service at $PODMAN_SOCK (log: $PODMAN/service.log)"
  CONTAINERS_CONF="$PODMAN/containers.conf" setsid nohup podman system service --time=0 "unix://$PODMAN_SOCK" \
    >"$PODMAN/service.log" 2>&1 </dev/null &
  echo $! >"$PODMAN/pid"
}

podman_stop() {
  if [ -f "$PODMAN/health.pid" ]; then kill "$(cat "$PODMAN/health.pid")" 2>/dev/null || true; rm -f "$PODMAN/health.pid"; fi
  if podman_pid_running; then
    local pid; pid=$(cat "$PODMAN/pid")
    kill "$pid" 2>/dev/null || true
    wait_for 20 "podman service to stop" bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PODMAN/pid"
}

podman_up() {
  if ! command -v podman >/dev/null; then
    need_root
    log "installing podman (apt-get)"
    apt-get update -qq >/dev/null || { log "apt-get update failed"; return 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman >"$DIR/apt-podman.log" 2>&1 \
      || { log "apt-get install podman failed; see $DIR/apt-podman.log"; return 1; }
  fi
  # Debian's package enables podman.socket/podman.service; the tests use their own socket.
  mkdir -p "$PODMAN"
  [ -f "$PODMAN/containers.conf" ] || printf '[containers]\n' >"$PODMAN/containers.conf"
  if ! podman_pid_running || ! podman_ok; then
    podman_stop
    podman_service_start
    wait_for 30 "podman service" podman_ok || { log "podman service did not come up; see $PODMAN/service.log"; return 1; }
  fi
  if lacks_sys_resource; then
    local pid nofile nproc want
    pid=$(cat "$PODMAN/pid")
    nofile=$(awk '/^Max open files/ {print $5}' "/proc/$pid/limits")
    nproc=$(awk '/^Max processes/ {print $4}' "/proc/$pid/limits")
    want=$(printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' "$nofile" "$nofile" "$nproc" "$nproc")
    if [ "$(cat "$PODMAN/containers.conf")" != "$want" ]; then
      log "no CAP_SYS_RESOURCE: podman containers get nofile=$nofile nproc=$nproc (the service's own limits)"
      printf '%s\n' "$want" >"$PODMAN/containers.conf"
      podman_stop
      podman_service_start
      wait_for 30 "podman service" podman_ok || { log "podman service did not come up; see $PODMAN/service.log"; return 1; }
    fi
  fi
  build_image "unix://$PODMAN_SOCK"
  if [ ! -f "$PODMAN/health.pid" ] || ! kill -0 "$(cat "$PODMAN/health.pid")" 2>/dev/null; then
    setsid nohup bash "$0" podman-health-loop >"$PODMAN/health.log" 2>&1 </dev/null &
    echo $! >"$PODMAN/health.pid"
  fi
}

# Runs every running container's HEALTHCHECK at its interval (what Podman's systemd timer does).
podman_health_loop() {
  declare -A due=()
  export CONTAINERS_CONF="$PODMAN/containers.conf"
  while podman_pid_running; do
    local now id interval ids
    now=$(date +%s%N)
    ids=$(podman ps -q --no-trunc --filter health=starting --filter health=healthy --filter health=unhealthy 2>/dev/null || true)
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086
      while read -r id interval; do
        [ -n "$id" ] || continue
        [ -n "$interval" ] && [ "$interval" -gt 0 ] || interval=30000000000
        if [ -z "${due[$id]:-}" ] || [ "$now" -ge "${due[$id]}" ]; then
          due[$id]=$((now + interval))
          podman healthcheck run "$id" >/dev/null 2>&1 &
        fi
      done < <(podman inspect --format '{{.Id}} {{if .Config.Healthcheck}}{{.Config.Healthcheck.Interval.Nanoseconds}}{{end}}' $ids 2>/dev/null || true)
      sleep 0.25
    else
      # Nothing to check: look again in a second (a `podman ps` four times a second costs a core's third).
      sleep 1
    fi
  done
}

# ---------- test image ----------
build_image() { # build_image <docker -H arg>
  local host=$1
  if docker -H "$host" image inspect "$IMAGE" >/dev/null 2>&1; then return; fi
  local root; root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/www" "$root/tmp" "$root/etc"
  cp /bin/busybox "$root/bin/busybox"
  for a in sh ash httpd sleep wget nc rm echo cat ls mkdir touch true false kill ps mv cp test date env hostname; do
    ln -s busybox "$root/bin/$a"
  done
  echo "ok" >"$root/www/index.html"
  echo "ok" >"$root/www/health"
  echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
  tar -C "$root" -c . | docker -H "$host" import -c 'ENV PATH=/bin' -c 'CMD ["/bin/httpd","-f","-p","80","-h","/www"]' - "$IMAGE" >/dev/null
  rm -rf "$root"
  log "built $IMAGE on $host"
}

# ---------- etcd cluster ----------
member_pidfile() { echo "$DIR/etcd$1.pid"; }
member_running() { local f; f=$(member_pidfile "$1"); [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

initial_cluster() {
  local parts=() i
  for i in 0 1 2; do parts+=("m$((i + 1))=http://127.0.0.1:${ETCD_PEER_PORTS[$i]}"); done
  (IFS=,; echo "${parts[*]}")
}

etcd_start_member() { # 1-based index
  local n=$1 i=$(($1 - 1))
  if member_running "$n"; then
    kill -CONT "$(cat "$(member_pidfile "$n")")" 2>/dev/null || true
    return
  fi
  local data="$DIR/etcd$n" state=new
  [ -d "$data/member" ] && state=existing
  mkdir -p "$data"
  setsid nohup etcd --name "m$n" --data-dir "$data" \
    --listen-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORTS[$i]}" \
    --advertise-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORTS[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${ETCD_PEER_PORTS[$i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER_PORTS[$i]}" \
    --initial-cluster "$(initial_cluster)" --initial-cluster-token discovery-testenv \
    --initial-cluster-state "$state" --heartbeat-interval 100 --election-timeout 1000 \
    >"$DIR/etcd$n.log" 2>&1 </dev/null &
  echo $! >"$(member_pidfile "$n")"
}

etcd_stop_member() { # SIGTERM, wait
  local n=$1
  member_running "$n" || return 0
  local pid; pid=$(cat "$(member_pidfile "$n")")
  kill -CONT "$pid" 2>/dev/null || true
  kill "$pid" 2>/dev/null || true
  wait_for 20 "etcd m$n to stop" bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
}

plain_endpoints() { local e=() p; for p in "${ETCD_CLIENT_PORTS[@]}"; do e+=("http://127.0.0.1:$p"); done; (IFS=,; echo "${e[*]}"); }

etcd_healthy() { ETCDCTL_API=3 etcdctl --endpoints "$(plain_endpoints)" --command-timeout=2s endpoint health >/dev/null 2>&1; }

etcd_up() {
  local n
  for n in 1 2 3; do etcd_start_member "$n"; done
  wait_for 60 "etcd cluster" etcd_healthy || die "etcd cluster did not become healthy; see $DIR/etcd*.log"
}

# ---------- etcd with TLS + auth ----------
TLS="$DIR/tls"
make_certs() {
  [ -f "$TLS/client.key" ] && [ -f "$TLS/expired-client.key" ] && return
  rm -rf "$TLS"; mkdir -p "$TLS"
  (
    cd "$TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=discovery-test-ca" -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=other-ca" -keyout other-ca.key -out other-ca.crt 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >ext.cnf
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile ext.cnf -out server.crt 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >client.cnf
    openssl req -newkey rsa:2048 -nodes -subj "/CN=root" -keyout client.key -out client.csr 2>/dev/null
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile client.cnf -out client.crt 2>/dev/null
    # An expired client certificate: `openssl ca` takes explicit start and end dates in the past.
    openssl req -newkey rsa:2048 -nodes -subj "/CN=root" -keyout expired-client.key -out expired-client.csr 2>/dev/null
    mkdir -p newcerts && : >index.txt && echo 1000 >serial
    printf '[ca]\ndefault_ca=x\n[x]\ndir=.\ndatabase=index.txt\nnew_certs_dir=newcerts\nserial=serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n' >ca.cnf
    openssl ca -batch -config ca.cnf -cert ca.crt -keyfile ca.key -in expired-client.csr -extfile client.cnf \
      -startdate 20200101000000Z -enddate 20200102000000Z -out expired-client.crt >/dev/null 2>&1 \
      || die "could not make the expired test certificate"
  )
}

tls_running() { [ -f "$DIR/etcd-tls.pid" ] && kill -0 "$(cat "$DIR/etcd-tls.pid")" 2>/dev/null; }
tls_ctl() {
  ETCDCTL_API=3 etcdctl --endpoints "https://127.0.0.1:$TLS_CLIENT_PORT" --cacert "$TLS/ca.crt" \
    --cert "$TLS/client.crt" --key "$TLS/client.key" --command-timeout=3s "$@"
}

etcd_tls_up() {
  make_certs
  if ! tls_running; then
    mkdir -p "$DIR/etcd-tls"
    setsid nohup etcd --name tls --data-dir "$DIR/etcd-tls" \
      --listen-client-urls "https://127.0.0.1:$TLS_CLIENT_PORT" --advertise-client-urls "https://127.0.0.1:$TLS_CLIENT_PORT" \
      --listen-peer-urls "http://127.0.0.1:$TLS_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$TLS_PEER_PORT" \
      --initial-cluster "tls=http://127.0.0.1:$TLS_PEER_PORT" --initial-cluster-state new \
      --cert-file "$TLS/server.crt" --key-file "$TLS/server.key" --client-cert-auth --trusted-ca-file "$TLS/ca.crt" \
      >"$DIR/etcd-tls.log" 2>&1 </dev/null &
    echo $! >"$DIR/etcd-tls.pid"
  fi
  if ! wait_for 30 "TLS etcd" tls_ctl --user root:rootpw endpoint health && ! wait_for 5 "TLS etcd" tls_ctl endpoint health; then
    die "TLS etcd did not come up; see $DIR/etcd-tls.log"
  fi
  if ! tls_ctl --user root:rootpw auth status 2>/dev/null | grep -q 'Enabled: true'; then
    tls_ctl user add root:rootpw >/dev/null 2>&1 || true
    tls_ctl user grant-role root root >/dev/null 2>&1 || true
    tls_ctl auth enable >/dev/null || die "could not enable auth on TLS etcd"
  fi
}

write_env() {
  cat >"$DIR/env.json" <<JSON
{
  "etcdEndpoints": ["http://127.0.0.1:${ETCD_CLIENT_PORTS[0]}", "http://127.0.0.1:${ETCD_CLIENT_PORTS[1]}", "http://127.0.0.1:${ETCD_CLIENT_PORTS[2]}"],
  "etcdPeerPorts": [${ETCD_PEER_PORTS[0]}, ${ETCD_PEER_PORTS[1]}, ${ETCD_PEER_PORTS[2]}],
  "tls": {
    "endpoint": "https://127.0.0.1:$TLS_CLIENT_PORT",
    "ca": "$TLS/ca.crt", "cert": "$TLS/client.crt", "key": "$TLS/client.key",
    "otherCa": "$TLS/other-ca.crt", "expiredCert": "$TLS/expired-client.crt", "expiredKey": "$TLS/expired-client.key",
    "user": "root", "password": "rootpw"
  },
  "dockerHost": "unix:///var/run/docker.sock",
  "docker2Host": "unix://$DOCKER2_SOCK",
  "docker2Bridge": "$DOCKER2_BRIDGE",
  "podmanHost": $( [ -n "${PODMAN_READY:-}" ] && echo "\"unix://$PODMAN_SOCK\"" || echo null ),
  "podmanError": $( [ -n "${PODMAN_READY:-}" ] && echo null || echo "\"${PODMAN_ERROR:-podman was not brought up}\"" ),
  "image": "$IMAGE",
  "script": "$(cd "$(dirname "$0")" && pwd)/testenv.sh",
  "dir": "$DIR"
}
JSON
  cat >"$DIR/env.sh" <<SH
export DISCOVERY_TEST_ETCD_ENDPOINTS=$(plain_endpoints)
export DISCOVERY_TEST_DOCKER2_HOST=unix://$DOCKER2_SOCK
export DISCOVERY_TEST_PODMAN_HOST=${PODMAN_READY:+unix://$PODMAN_SOCK}
export DISCOVERY_TEST_IMAGE=$IMAGE
SH
}

cmd_up() {
  mkdir -p "$DIR"
  install_packages
  docker1_up
  docker2_start
  build_image unix:///var/run/docker.sock
  build_image "unix://$DOCKER2_SOCK"
  etcd_up
  etcd_tls_up
  # Podman's tests fail on their own (env.json names the reason); the rest run without it.
  if podman_up; then PODMAN_READY=1; else PODMAN_ERROR="podman could not be brought up; see $PODMAN/service.log and $DIR/apt-podman.log"; fi
  write_env
  log "ready: docker unix:///var/run/docker.sock, docker2 unix://$DOCKER2_SOCK, podman ${PODMAN_READY:+unix://$PODMAN_SOCK}${PODMAN_ERROR:-}, etcd $(plain_endpoints), etcd-tls https://127.0.0.1:$TLS_CLIENT_PORT"
}

# Containers an earlier test run left behind (a run killed mid-way never reaches its cleanup).
# They would keep running their health checks and their events would reach this run's agents,
# which watch whole engines. Only containers carrying the tests' own labels are removed, and
# only `npm test` runs this, before its first suite: like the suites that stop etcd members, it
# takes the engines as this run's alone.
cmd_clean() {
  local host ids
  for host in unix:///var/run/docker.sock "unix://$DOCKER2_SOCK" "unix://$PODMAN_SOCK"; do
    [ -S "${host#unix://}" ] || continue
    # Every label key the tests use starts with discovery-test (discovery-test-agent, -dns, -tui, …) or is fault-test.
    ids=$(docker -H "$host" ps -a --format '{{.ID}} {{.Labels}}' 2>/dev/null | grep -E '^[0-9a-f]+ (.*,)?(discovery-test[^=,]*|fault-test)=' | cut -d' ' -f1 || true)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || { docker -H "$host" rm -f $ids >/dev/null 2>&1 || true; log "removed $(echo "$ids" | wc -w) container(s) an earlier test run left on $host"; }
  done
}

cmd_down() {
  local n
  for n in 1 2 3; do etcd_stop_member "$n"; done
  if tls_running; then kill "$(cat "$DIR/etcd-tls.pid")" 2>/dev/null || true; fi
  docker2_stop
  podman_stop
  rm -rf "$DIR/etcd1" "$DIR/etcd2" "$DIR/etcd3" "$DIR/etcd-tls"
  log "stopped etcd members, the second dockerd and the podman service (the host's dockerd is left running)"
}

case "${1:-up}" in
  up) cmd_up ;;
  down) cmd_down ;;
  clean) cmd_clean ;;
  env) cat "$DIR/env.json" ;;
  status) docker1_ok && echo "docker: up" || echo "docker: down"; docker2_ok && echo "docker2: up" || echo "docker2: down"
          podman_ok && echo "podman: up" || echo "podman: down"
          etcd_healthy && echo "etcd: healthy" || echo "etcd: unhealthy" ;;
  etcd-start) etcd_start_member "$2" ;;
  etcd-stop) etcd_stop_member "$2" ;;
  etcd-kill) member_running "$2" && kill -9 "$(cat "$(member_pidfile "$2")")" ;;
  etcd-pause) member_running "$2" && kill -STOP "$(cat "$(member_pidfile "$2")")" ;;
  etcd-resume) member_running "$2" && kill -CONT "$(cat "$(member_pidfile "$2")")" ;;
  etcd-wait) wait_for "${2:-60}" "etcd cluster" etcd_healthy || die "etcd not healthy" ;;
  docker2-stop) docker2_stop ;;
  docker2-start) docker2_start ;;
  podman-stop) podman_stop ;;
  podman-start) mkdir -p "$DIR"; podman_up ;;
  podman-health-loop) podman_health_loop ;;
  *) die "unknown command '$1' (use up, down, status, env, etcd-start|stop|kill|pause|resume N, etcd-wait, docker2-stop|start, podman-stop|start)" ;;
esac
