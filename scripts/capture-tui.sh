#!/usr/bin/env bash
# Regenerates docs/tui-80x24.txt and docs/tui-120x40.txt: what `discovery-agent watch` shows
# in a real terminal (tmux) of that size, with a few containers: one passing an HTTP check,
# one critical (its health file removed), one with a long name and no check.
#
# Needs: docker with the local test image (scripts/testenv.sh up builds it), tmux, the built
# CLI (npm run build), and an etcd: DISCOVERY_TEST_ETCD_ENDPOINTS, else the test environment's
# (scripts/testenv.sh env), else a throwaway one (watch --dev).
# Usage: scripts/capture-tui.sh [out-dir]   (default: docs)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-docs}
IMAGE=${DISCOVERY_TEST_IMAGE:-discovery-test/busybox:1}
TAG=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
PREFIX="/capture-$TAG"
SOCKET="discovery-capture-$TAG"
NODE=docker-host-1
NAMES=(web-$TAG api-$TAG a-container-with-a-rather-long-descriptive-name-$TAG)

die() { echo "capture-tui: $*" >&2; exit 1; }
command -v tmux >/dev/null || die "tmux is not installed"
[ -f dist/commands/watch.js ] || die "build first: npm run build"
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "image $IMAGE is missing: run scripts/testenv.sh up"

ENDPOINTS=${DISCOVERY_TEST_ETCD_ENDPOINTS:-}
if [ -z "$ENDPOINTS" ] && [ -f "${DISCOVERY_TESTENV_DIR:-/tmp/discovery-testenv}/env.sh" ]; then
  # shellcheck disable=SC1090,SC1091
  ENDPOINTS=$(. "${DISCOVERY_TESTENV_DIR:-/tmp/discovery-testenv}/env.sh" && echo "${DISCOVERY_TEST_ETCD_ENDPOINTS:-}")
fi
ETCD_ARGS=(--dev)
[ -n "$ENDPOINTS" ] && ETCD_ARGS=(--etcd-endpoints "$ENDPOINTS")

cleanup() {
  tmux -L "$SOCKET" kill-server 2>/dev/null || true
  rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$SOCKET"
  docker rm -f "${NAMES[@]}" >/dev/null 2>&1 || true
  if [ -n "$ENDPOINTS" ]; then ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINTS" del --prefix "$PREFIX/" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# Only containers labelled discovery.enable=true are registered (--no-exposed-by-default), so
# other containers on this daemon stay out of the pictures.
run() { docker run -d --pull never --stop-timeout 1 -p 127.0.0.1::80 -l discovery.enable=true "$@" "$IMAGE" >/dev/null; }
run --name "${NAMES[0]}" -l discovery.service=web -l discovery.check.http=/health -l discovery.check.interval=1s
run --name "${NAMES[1]}" -l discovery.service=api -l discovery.check.http=/health -l discovery.check.interval=1s -l discovery.check.failures=1
run --name "${NAMES[2]}" -l discovery.service=payments-gateway -l discovery.tags=internal,v2

screen() { tmux -L "$SOCKET" capture-pane -p -t watch; }
wait_screen() { # wait_screen <seconds> <grep -E pattern>
  local deadline=$((SECONDS + $1))
  until screen | grep -Eq -- "$2"; do
    [ $SECONDS -lt $deadline ] || { screen >&2; die "timed out waiting for /$2/"; }
    sleep 0.3
  done
}

capture() { # capture <columns> <rows>
  local cols=$1 rows=$2 file="$OUT/tui-$1x$2.txt" exit_file
  exit_file=$(mktemp)
  tmux -L "$SOCKET" -f /dev/null start-server \; set-option -g status off \; set-option -g remain-on-exit on \; \
    new-session -d -s watch -x "$cols" -y "$rows" \
    "env -u CI -u CONTINUOUS_INTEGRATION node bin/run.js watch ${ETCD_ARGS[*]} --prefix $PREFIX --node $NODE --no-exposed-by-default; echo \$? > $exit_file"
  wait_screen 60 "^discovery-agent · node $NODE"
  tmux -L "$SOCKET" send-keys -t watch 2   # the Instances view (Services is the first)
  # Other tests' containers may carry discovery.enable=true too: show only these (the filter key).
  tmux -L "$SOCKET" send-keys -t watch / && tmux -L "$SOCKET" send-keys -t watch -l "$TAG" && tmux -L "$SOCKET" send-keys -t watch Enter
  wait_screen 60 "web +${NAMES[0]}:80 .* passing +HTTP 200"
  wait_screen 30 "api +${NAMES[1]}:80 .* critical +HTTP 404"
  wait_screen 30 "^payments-.* a-container-with-"
  sleep 1.5 # one more clock tick: ages settle
  mkdir -p "$OUT"
  screen >"$file"
  tmux -L "$SOCKET" send-keys -t watch q
  local deadline=$((SECONDS + 30))
  until [ -s "$exit_file" ]; do [ $SECONDS -lt $deadline ] || die "watch did not exit after q"; sleep 0.2; done
  [ "$(cat "$exit_file")" = 0 ] || die "watch exited $(cat "$exit_file")"
  rm -f "$exit_file"
  tmux -L "$SOCKET" kill-server 2>/dev/null || true
  echo "capture-tui: wrote $file" >&2
}

# The api container's health file goes once the agent is watching, so the picture shows a
# real passing → critical change in the log.
( sleep 4; docker exec "${NAMES[1]}" rm -f /www/health ) &
capture 80 24
capture 120 40
