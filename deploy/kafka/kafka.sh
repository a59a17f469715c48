#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, loopback only) for tests and CI, run from
# Maven Central jars: no Docker, no tarball.
#
#   bash deploy/kafka/kafka.sh start    fetch jars if needed, fresh data dir, start, wait until ready
#                                       (JOBSCRIBE_KAFKA_KEEP_DATA=1: restart on the existing data dir)
#   bash deploy/kafka/kafka.sh stop     stop the broker this script started (idempotent)
#   bash deploy/kafka/kafka.sh status   running?, bootstrap address, RSS  (exit 0 running, 3 not)
#   bash deploy/kafka/kafka.sh fetch    only download the jars into the cache
#
# Environment:
#   JOBSCRIBE_KAFKA_HOME             state dir: libs/, data/, broker.log, broker.pid (default <repo>/.kafka)
#   JOBSCRIBE_KAFKA_PORT             client (PLAINTEXT) port, default 19092
#   JOBSCRIBE_KAFKA_CONTROLLER_PORT  KRaft controller port, default 19093
#   JOBSCRIBE_KAFKA_VERSION          Kafka version: 4.x (default from pom.xml, 4.4.0) or 3.x (3.9.2 tested)
#   JOBSCRIBE_KAFKA_START_TIMEOUT    seconds to wait for readiness, default 120
#   JOBSCRIBE_KAFKA_HEAP_OPTS        default "-Xms256m -Xmx512m"
#   JOBSCRIBE_KAFKA_KEEP_DATA        1: `start` keeps an already formatted data dir (no wipe, no
#                                    format), so stop + start is a broker restart that keeps topics,
#                                    messages and committed group offsets. Use the same ports as
#                                    before. Default: every start wipes the data dir.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KHOME=${JOBSCRIBE_KAFKA_HOME:-$ROOT/.kafka}
PORT=${JOBSCRIBE_KAFKA_PORT:-19092}
CPORT=${JOBSCRIBE_KAFKA_CONTROLLER_PORT:-19093}
START_TIMEOUT=${JOBSCRIBE_KAFKA_START_TIMEOUT:-120}
HEAP_OPTS=${JOBSCRIBE_KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}
POM=$HERE/pom.xml
DEFAULT_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -1)
KVERSION=${JOBSCRIBE_KAFKA_VERSION:-$DEFAULT_VERSION}
# maven-dependency-plugin pinned: Debian's Maven 3.8.7 would default to the old 2.8.
DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

LIBS=$KHOME/libs
DATA=$KHOME/data
PIDFILE=$KHOME/broker.pid
LOG=$KHOME/broker.log
PROPS=$KHOME/server.properties
BOOTSTRAP=127.0.0.1:$PORT
READY_LINE='Kafka Server started'

say() { echo "kafka.sh: $*"; }
die() { echo "kafka.sh: ERROR: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }

# What differs by major version: the logging backend (pom profile + its config) and the quorum.
case "$KVERSION" in
  4.*)
    PROFILE=kafka4
    LOGOPT="-Dlog4j2.configurationFile=$HERE/log4j2.properties"
    QUORUM="controller.quorum.bootstrap.servers=127.0.0.1:$CPORT"
    FORMAT_ARGS=(--standalone) ;;
  3.*)
    PROFILE=kafka3
    LOGOPT="-Dlog4j.configuration=file:$HERE/log4j.properties"
    QUORUM="controller.quorum.voters=1@127.0.0.1:$CPORT"
    FORMAT_ARGS=() ;;
  *) die "Kafka $KVERSION is not supported here (4.x or 3.x)";;
esac

# Install a Debian package only when running as root under CI; otherwise explain.
need_tool() {
  local tool=$1 pkg=$2
  command -v "$tool" >/dev/null 2>&1 && return 0
  if [ "${CI:-}" = "true" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "$tool not found; CI=true and root: installing Debian package $pkg"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
    command -v "$tool" >/dev/null 2>&1 || die "installed $pkg but $tool is still not on PATH"
    return 0
  fi
  die "$tool not found on PATH. Install it, e.g.: sudo apt-get update && sudo apt-get install -y $pkg"
}

# Serialise start/stop/fetch of the same KAFKA_HOME (fd 9; closed for the broker).
lock() {
  mkdir -p "$KHOME"
  exec 9>"$KHOME/.lock"
  if command -v flock >/dev/null 2>&1; then flock 9; fi
}

pom_sum() { sha256sum "$POM" | cut -d' ' -f1; }  # a changed pom refetches

fetch() {
  local marker=$LIBS/.ok-$KVERSION
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$(pom_sum)" ]; then
    say "jars for Kafka $KVERSION already in $LIBS (cached, no download)"
    return 0
  fi
  need_tool mvn maven
  need_tool java openjdk-17-jre-headless
  say "fetching Kafka $KVERSION jars from Maven Central into $LIBS ..."
  local t0 tmp
  t0=$(now_ms)
  tmp=$KHOME/libs.tmp.$$
  rm -rf "$tmp"; mkdir -p "$tmp"
  # Output goes to fetch.log (Debian's Maven 3.8.7 prints stray ANSI codes even with -B -q).
  if ! mvn -B -q -f "$POM" -P"$PROFILE" -Dkafka.version="$KVERSION" \
        "$DEP_PLUGIN:copy-dependencies" \
        -DincludeScope=runtime -DoutputDirectory="$tmp" > "$KHOME/fetch.log" 2>&1; then
    rm -rf "$tmp"
    sed 's/\x1b\[[0-9;]*m//g' "$KHOME/fetch.log" | tail -n 40 >&2
    die "mvn could not fetch the Kafka jars (full output: $KHOME/fetch.log)"
  fi
  ls "$tmp"/kafka_2.13-"$KVERSION".jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "kafka_2.13-$KVERSION.jar missing after mvn"; }
  rm -rf "$LIBS"; mv "$tmp" "$LIBS"
  pom_sum > "$marker"
  say "fetched $(ls "$LIBS"/*.jar | wc -l) jars, $(du -sh "$LIBS" | cut -f1), in $(( ($(now_ms) - t0) )) ms"
}

# Prints the pid if the pid file names a live broker started by this script
# (a java kafka.Kafka whose command line has our server.properties), else nothing.
our_pid() {
  [ -f "$PIDFILE" ] || return 0
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null || true)
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  [ -r "/proc/$pid/cmdline" ] || return 0
  local cmd
  cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null || true)
  case "$cmd" in
    *kafka.Kafka*"$PROPS"*) echo "$pid" ;;
  esac
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

rss_of() { awk '/^VmRSS:/ {printf "%.0f MiB", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }

healthy() { # pid
  grep -q "$READY_LINE" "$LOG" 2>/dev/null && port_open "$PORT"
}

do_stop() {
  local pid
  pid=$(our_pid)
  if [ -z "$pid" ]; then
    rm -f "$PIDFILE"
    say "not running (nothing to stop)"
    return 0
  fi
  say "stopping broker pid $pid (SIGTERM) ..."
  local t0 i
  t0=$(now_ms)
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 300); do              # 30 s
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "still alive after 30 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$PIDFILE"
  say "stopped in $(( $(now_ms) - t0 )) ms"
}

do_start() {
  local pid
  pid=$(our_pid)
  if [ -n "$pid" ]; then
    if healthy; then
      say "already running (pid $pid), bootstrap $BOOTSTRAP, RSS $(rss_of "$pid")"
      return 0
    fi
    say "broker pid $pid is running but not ready: restarting it"
    do_stop
  fi
  port_open "$PORT" && die "port $PORT is already in use by another process (set JOBSCRIBE_KAFKA_PORT)"
  port_open "$CPORT" && die "controller port $CPORT is already in use by another process (set JOBSCRIBE_KAFKA_CONTROLLER_PORT)"

  fetch
  need_tool java openjdk-17-jre-headless

  local t0 keep=
  t0=$(now_ms)
  if [ "${JOBSCRIBE_KAFKA_KEEP_DATA:-}" = 1 ] && [ -f "$DATA/meta.properties" ]; then
    keep=1
    say "keeping the data dir $DATA (JOBSCRIBE_KAFKA_KEEP_DATA=1): topics, messages and group offsets survive"
  else
    rm -rf "$DATA"; mkdir -p "$DATA"
  fi
  sed -e "s#@DATA_DIR@#$DATA#g" -e "s#@PORT@#$PORT#g" -e "s#@CONTROLLER_PORT@#$CPORT#g" -e "s#@QUORUM@#$QUORUM#g" \
    "$HERE/server.properties" > "$PROPS"

  local logopt=$LOGOPT
  local cp="$LIBS/*"
  if [ -z "$keep" ]; then
    # Cluster id = what Uuid.randomUuid() makes: 16 random bytes, base64url, no
    # padding, not starting with '-'. Saves a JVM start over `StorageTool random-uuid`.
    local cid
    while :; do
      cid=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
      [ "${cid:0:1}" != "-" ] && break
    done
    if ! java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "$logopt" -cp "$cp" \
          kafka.tools.StorageTool format -t "$cid" -c "$PROPS" "${FORMAT_ARGS[@]}" > "$KHOME/format.log" 2>&1; then
      cat "$KHOME/format.log" >&2
      die "StorageTool format failed"
    fi
  fi

  [ -f "$LOG" ] && mv -f "$LOG" "$LOG.prev"
  # shellcheck disable=SC2086
  nohup java $HEAP_OPTS -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
      -XX:MaxInlineLevel=15 -Djava.awt.headless=true \
      -Dkafka.logs.dir="$KHOME" "$logopt" \
      -cp "$cp" kafka.Kafka "$PROPS" </dev/null >"$LOG" 2>&1 9>&- &
  pid=$!
  echo "$pid" > "$PIDFILE"
  say "starting Kafka $KVERSION (pid $pid), data $DATA, log $LOG ..."

  local deadline=$(( t0 + START_TIMEOUT * 1000 ))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PIDFILE"
      echo "----- last 60 lines of $LOG -----" >&2; tail -n 60 "$LOG" >&2 || true
      die "broker exited during startup"
    fi
    if healthy; then break; fi
    if [ "$(now_ms)" -ge "$deadline" ]; then
      echo "----- last 60 lines of $LOG -----" >&2; tail -n 60 "$LOG" >&2 || true
      do_stop >&2 || true
      die "broker not ready within ${START_TIMEOUT}s"
    fi
    sleep 0.2
  done
  local ms=$(( $(now_ms) - t0 ))
  local what="format + JVM + broker"
  [ -n "$keep" ] && what="JVM + broker; data kept"
  say "ready: bootstrap $BOOTSTRAP, pid $pid, started in $((ms / 1000)).$(printf '%03d' $((ms % 1000))) s ($what), RSS $(rss_of "$pid")"
}

do_status() {
  local pid
  pid=$(our_pid)
  if [ -z "$pid" ]; then
    say "not running (bootstrap would be $BOOTSTRAP)"
    return 3
  fi
  if healthy; then
    say "running: pid $pid, bootstrap $BOOTSTRAP, RSS $(rss_of "$pid")"
  else
    say "process running but NOT ready: pid $pid, bootstrap $BOOTSTRAP, RSS $(rss_of "$pid"); see $LOG"
  fi
}

usage() { echo "usage: $0 {start|stop|status|fetch}" >&2; exit 2; }

[ $# -eq 1 ] || usage
case "$1" in
  start)  lock; do_start ;;
  stop)   lock; do_stop ;;
  status) do_status ;;
  fetch)  lock; fetch ;;
  *) usage ;;
esac
