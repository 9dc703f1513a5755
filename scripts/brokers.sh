#!/usr/bin/env bash
# Real test brokers for Omnibus, on this machine, with one command (docs/brokers.md).
#
#   scripts/brokers.sh up [NAME...]      start what is missing (installing Debian packages as
#                                        root), wait until each answers its protocol, print status
#   scripts/brokers.sh down [NAME...]    stop them
#   scripts/brokers.sh status [NAME...]  one line per broker; exit 1 if any is down
#   scripts/brokers.sh start|stop|restart NAME...
#   scripts/brokers.sh tls               only generate the test CA and certificates (if missing)
#
# NAME: rabbitmq, mosquitto, activemq, kafka, or kafka-N (one node of a KAFKA_NODES=3 cluster).
# Default: all four.
#
# Environment:
#   BROKERS_DIR     work dir for state, data, logs and the test CA (default: /var/tmp/omnibus-brokers;
#                   the brokers and their ports are the machine's, so every clone of the repository
#                   on this machine shares them, the CA and what `down`/`restart` may stop)
#   KAFKA_VERSION   Apache Kafka version from Maven Central (default 4.4.0; 3.9.x works too)
#   KAFKA_NODES     1 (default: one combined broker+controller on 9092) or 3 (9092-9094)
#                   Unset, both keep the layout Kafka's data dir was formatted for, if any;
#                   another value wipes Kafka's data and formats it anew.
#   KAFKA_HEAP_OPTS JVM heap for each Kafka node (default -Xms512m -Xmx512m)
#   ACTIVEMQ_HEAP_OPTS  JVM heap for ActiveMQ (default -Xms128m -Xmx512m)
#   BROKERS_WAIT    seconds each broker may take to answer after a start (default 120)
#
# RabbitMQ and Mosquitto are Debian services on our machines and may already run: `up` leaves
# a running broker alone and only adds what is missing (RabbitMQ's STOMP and stream plugins;
# Mosquitto is restarted with tools/mosquitto/mosquitto.conf if it runs with another config).
#
# Security (docs/brokers.md, "TLS and access control"): `up` generates a test CA and a broker
# certificate under $BROKERS_DIR/tls (once), and brings up TLS listeners that use it: amqps and
# STOMP over TLS added to the running RabbitMQ node, a second Mosquitto of ours (TLS, and a
# password-only listener), STOMP over TLS on ActiveMQ, SSL and SASL_SSL (SCRAM) on Kafka. A broker
# of ours that runs without its TLS listener (an older config) is restarted once to get it.

set -euo pipefail

# Debian puts rabbitmq-server, rabbitmq-plugins and mosquitto in /usr/sbin.
PATH=$PATH:/usr/sbin:/sbin
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${BROKERS_DIR:-/var/tmp/omnibus-brokers}
PROBE="$REPO/scripts/broker-probe.mjs"
WAIT=${BROKERS_WAIT:-120}
ALL=(rabbitmq mosquitto activemq kafka)

RABBITMQ_AMQP_PORT=5672
RABBITMQ_STOMP_PORT=61613
RABBITMQ_STREAM_PORT=5552
MOSQUITTO_PORT=1883
MOSQUITTO_CONF=$REPO/tools/mosquitto/mosquitto.conf
ACTIVEMQ_STOMP_PORT=61614
ACTIVEMQ_HOME=/usr/share/activemq
ACTIVEMQ_USER="admin"
ACTIVEMQ_PASSWORD="admin"
KAFKA_BASE_PORT=9092
KAFKA_CONTROLLER_BASE_PORT=19092
KAFKA_DEFAULT_VERSION=4.4.0

# TLS and access control (docs/brokers.md). Test-only secrets: loopback brokers, no real data.
TLS_DIR=$WORK/tls
TLS_STORE_PASSWORD=omnibus-test-store
RABBITMQ_AMQPS_PORT=5671
RABBITMQ_STOMPS_PORT=61615
RABBITMQ_LIMITED_USER=omnibus-limited
RABBITMQ_LIMITED_PASSWORD=omnibus-limited-secret
RABBITMQ_LIMITED_PREFIX=omnibus-limited.
RABBITMQ_PRIVATE_VHOST=omnibus-private
MOSQUITTO_TLS_PORT=8883
MOSQUITTO_AUTH_PORT=1884
MOSQUITTO_AUTH_USER=omnibus
MOSQUITTO_AUTH_PASSWORD=omnibus-mqtt-secret
ACTIVEMQ_STOMPS_PORT=61612
KAFKA_SSL_BASE_PORT=9192
KAFKA_SASL_BASE_PORT=9292
KAFKA_SCRAM_USER=omnibus
KAFKA_SCRAM_PASSWORD=omnibus-scram-secret

FAILED=()

# ---------------------------------------------------------------------------------------------
# Helpers

log() { printf 'brokers: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# Runs the protocol probe; prints its one-line answer (detail or reason); returns its status.
probe() { PROBE_TIMEOUT_MS=${PROBE_TIMEOUT_MS:-3000} node "$PROBE" "$@"; }

# wait_until NAME LOGFILE PID PROBE-ARGS...: polls the probe until it answers or WAIT seconds
# pass. Fails early if PID (when not empty) dies. On failure prints the reason and the log tail.
wait_until() {
  local name=$1 logfile=$2 pid=$3 deadline answer
  shift 3
  deadline=$((SECONDS + WAIT))
  while :; do
    if answer=$(PROBE_TIMEOUT_MS=2000 probe "$@"); then
      return 0
    fi
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      answer="process $pid exited ($answer)"
      break
    fi
    if ((SECONDS >= deadline)); then
      answer="no protocol answer within ${WAIT}s: $answer"
      break
    fi
    sleep 0.5
  done
  fail_with_log "$name ($1 $2:$3): $answer" "$logfile"
  return 1
}

fail_with_log() {
  local what=$1 logfile=$2
  {
    printf '\nbrokers: FAILED: %s\n' "$what"
    if [[ -n $logfile && -r $logfile ]]; then
      printf 'brokers: last 40 lines of %s:\n' "$logfile"
      tail -n 40 "$logfile" | sed 's/^/    /'
    elif [[ -n $logfile ]]; then
      printf 'brokers: no log at %s\n' "$logfile"
    fi
    printf '\n'
  } >&2
}

# pid of the process listening on 127.0.0.1:PORT (or any address), empty if none.
port_pid() {
  ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1
}

alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# pid from FILE if that process still runs and is the one the file was written for. Every broker
# started here names a file in the pidfile's directory on its command line; a pid left in the file
# by a broker that died with an earlier session may since belong to another process.
pidfile_pid() {
  local pid
  [[ -r $1 ]] || return 0
  pid=$(<"$1")
  alive "$pid" || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$(dirname "$1")/" || return 0
  echo "$pid"
}

# stop_pid NAME PID [SECONDS]: SIGTERM, wait, then SIGKILL.
stop_pid() {
  local name=$1 pid=$2 bound=${3:-60} deadline
  alive "$pid" || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + bound))
  while alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "$name (pid $pid) still running after ${bound}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
}

# start_detached PIDFILE LOGFILE CMD...: runs CMD in its own session, detached from this shell,
# output to LOGFILE; the pid written is CMD's own (bash execs it).
start_detached() {
  local pidfile=$1 logfile=$2
  shift 2
  # A pidfile left by a broker that died (killed with an earlier session) must not pass for the new one.
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # $$ and $@ are for the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$logfile" 2>&1 </dev/null &
  local i
  for i in $(seq 1 50); do
    [[ -s $pidfile ]] && return 0
    sleep 0.1
  done
  die "could not start $* (no pid written to $pidfile)"
}

APT_UPDATED=
apt_install() {
  if ((EUID != 0)); then
    die "missing $* — install it (apt-get install $*) or run as root"
  fi
  mkdir -p "$WORK"
  if [[ -z $APT_UPDATED ]]; then
    log "apt-get update"
    apt-get update -q >>"$WORK/apt.log" 2>&1 || {
      fail_with_log "apt-get update" "$WORK/apt.log"
      exit 1
    }
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >>"$WORK/apt.log" 2>&1 || {
    fail_with_log "apt-get install $*" "$WORK/apt.log"
    exit 1
  }
}

require_tools() {
  command -v node >/dev/null || die "node is needed (for the protocol probes); install Node.js 20+"
  command -v ss >/dev/null || apt_install iproute2
  command -v setsid >/dev/null || apt_install util-linux
}

java_bin() {
  local java=${JAVA_HOME:+$JAVA_HOME/bin/}java major
  if ! command -v "$java" >/dev/null; then
    apt_install default-jre-headless
    java=java
  fi
  major=$("$java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')
  if ((${major:-0} < 17)); then
    die "Kafka 4 and our ActiveMQ setup need Java 17+; $java is Java ${major:-?} (set JAVA_HOME)"
  fi
  echo "$java"
}

elapsed_since() { echo "$((SECONDS - $1))s"; }

# ---------------------------------------------------------------------------------------------
# The test CA: $TLS_DIR/ca.pem signs server.pem (CN localhost; SAN localhost, 127.0.0.1, ::1),
# which every TLS listener presents (server.key; server.p12 for the JVM brokers). other-ca.pem is a
# CA no broker uses: the "wrong CA" of the tests. Made once; the server certificate is renewed
# when it is missing, no longer signed by ca.pem, or expires within a week. The keys are readable
# by everyone (0644) because the rabbitmq and mosquitto users must read them: test material only.

tls_openssl() {
  openssl "$@" >>"$TLS_DIR/openssl.log" 2>&1 || {
    fail_with_log "openssl $1" "$TLS_DIR/openssl.log"
    return 1
  }
}

# tls_ca NAME SUBJECT: a self-signed CA, NAME.pem and NAME.key, if missing.
tls_ca() {
  local name=$1 subject=$2
  [[ -s $TLS_DIR/$name.pem && -s $TLS_DIR/$name.key ]] && return 1
  log "generating the test CA $TLS_DIR/$name.pem"
  tls_openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "$subject" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout "$TLS_DIR/$name.key.tmp" -out "$TLS_DIR/$name.pem.tmp" || exit 1
  chmod 600 "$TLS_DIR/$name.key.tmp"
  mv "$TLS_DIR/$name.key.tmp" "$TLS_DIR/$name.key"
  mv "$TLS_DIR/$name.pem.tmp" "$TLS_DIR/$name.pem"
}

tls_material() {
  local d=$TLS_DIR renew=''
  command -v openssl >/dev/null || apt_install openssl
  mkdir -p "$d"
  chmod 755 "$d"
  tls_ca ca "/CN=Omnibus test CA" && renew=1
  tls_ca other-ca "/CN=Omnibus unrelated test CA" || true
  if [[ -n $renew || ! -s $d/server.pem || ! -s $d/server.key || ! -s $d/server.p12 ]] ||
    ! openssl verify -CAfile "$d/ca.pem" "$d/server.pem" >/dev/null 2>&1 ||
    ! openssl x509 -checkend 604800 -noout -in "$d/server.pem" >/dev/null 2>&1; then
    log "generating the brokers' certificate $d/server.pem (signed by $d/ca.pem)"
    printf '%s\n' 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1' 'basicConstraints=CA:FALSE' \
      'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' >"$d/server.ext"
    tls_openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout "$d/server.key.tmp" -out "$d/server.csr" || exit 1
    tls_openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
      -days 825 -sha256 -extfile "$d/server.ext" -out "$d/server.pem.tmp" || exit 1
    tls_openssl pkcs12 -export -in "$d/server.pem.tmp" -inkey "$d/server.key.tmp" -certfile "$d/ca.pem" \
      -name broker -passout "pass:$TLS_STORE_PASSWORD" -out "$d/server.p12.tmp" || exit 1
    chmod 644 "$d/server.key.tmp" "$d/server.pem.tmp" "$d/server.p12.tmp"
    mv "$d/server.key.tmp" "$d/server.key"
    mv "$d/server.pem.tmp" "$d/server.pem"
    mv "$d/server.p12.tmp" "$d/server.p12"
    rm -f "$d/server.csr" "$d/server.ext"
  fi
  chmod 644 "$d/ca.pem" "$d/other-ca.pem"
}

# probe_tls PROTOCOL HOST PORT ARGS...: the protocol probe over TLS, trusting only our CA.
probe_tls() { PROBE_CA=$TLS_DIR/ca.pem probe "$@"; }

# tls_stale PROTOCOL HOST PORT ARGS...: true when a broker that runs must be restarted to get its
# TLS listener: nothing listens on the port, or for 30 s what listens does not answer over TLS with
# our certificate. A slow answer on a busy machine is waited for, not taken for a missing listener.
tls_stale() {
  local deadline=$((SECONDS + 30))
  [[ -n $(port_pid "$3") ]] || return 0
  while ((SECONDS < deadline)); do
    probe_tls "$@" >/dev/null && return 1
    sleep 1
  done
  return 0
}

# ---------------------------------------------------------------------------------------------
# RabbitMQ: Debian's rabbitmq-server, guest/guest on 5672, plugins rabbitmq_stomp (61613) and
# rabbitmq_stream (5552), enabled online if missing.

# RabbitMQ's main log (rabbit@<host>.log), newest first.
rabbitmq_log() {
  local f newest=''
  for f in /var/log/rabbitmq/rabbit*.log; do
    [[ -e $f && $f != *upgrade* ]] || continue
    [[ -z $newest || $f -nt $newest ]] && newest=$f
  done
  echo "${newest:-/var/log/rabbitmq}"
}

# Debian's /usr/sbin/rabbitmq-server switches to the rabbitmq user with su, whose PAM session
# leaves 1024 open files; each stream keeps its segment and index files open, so a few hundred
# test streams ran the node out of files (emfile) and broke it. Raise the limit in that shell, as
# Debian's systemd unit does (LimitNOFILE).
rabbitmq_server_detached() {
  local server=/usr/lib/rabbitmq/bin/rabbitmq-server
  if [[ $(id -u) == 0 && -x $server ]] && id rabbitmq >/dev/null 2>&1; then
    (cd /var/lib/rabbitmq && su rabbitmq -s /bin/sh -c "ulimit -n \$(ulimit -Hn); exec $server -detached")
  else
    rabbitmq-server -detached
  fi
}

rabbitmq_start() {
  rabbitmq_main_start || return 1
  rabbitmq_tls_start
}

rabbitmq_main_start() {
  local t0=$SECONDS
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  if ! probe amqp 127.0.0.1 "$RABBITMQ_AMQP_PORT" >/dev/null; then
    log "starting RabbitMQ (rabbitmq-server -detached)"
    rabbitmq_server_detached >>"$WORK/rabbitmq-start.log" 2>&1 || {
      fail_with_log "rabbitmq-server -detached" "$WORK/rabbitmq-start.log"
      return 1
    }
    wait_until rabbitmq "$(rabbitmq_log)" "" amqp 127.0.0.1 "$RABBITMQ_AMQP_PORT" || return 1
    # AMQP answers a moment before the node finishes booting; plugin changes need it booted.
    rabbitmqctl -q await_startup --timeout "$WAIT" >/dev/null 2>&1 || true
  fi
  if ! probe stomp 127.0.0.1 "$RABBITMQ_STOMP_PORT" guest guest >/dev/null ||
    ! probe stream 127.0.0.1 "$RABBITMQ_STREAM_PORT" >/dev/null; then
    log "enabling RabbitMQ plugins rabbitmq_stomp rabbitmq_stream"
    rabbitmq-plugins enable rabbitmq_stomp rabbitmq_stream >>"$WORK/rabbitmq-start.log" 2>&1 || {
      fail_with_log "rabbitmq-plugins enable rabbitmq_stomp rabbitmq_stream" "$WORK/rabbitmq-start.log"
      return 1
    }
  fi
  wait_until rabbitmq "$(rabbitmq_log)" "" stomp 127.0.0.1 "$RABBITMQ_STOMP_PORT" guest guest || return 1
  wait_until rabbitmq "$(rabbitmq_log)" "" stream 127.0.0.1 "$RABBITMQ_STREAM_PORT" || return 1
  log "rabbitmq ready ($(elapsed_since "$t0"))"
}

# TLS listeners (amqps on 5671, STOMP over TLS on 61615) added to the running node with
# `rabbitmqctl eval`: the node is the machine's and others' tests use it, so it is never restarted
# for them; `up` adds them again after the node restarts. Also the user and vhost of the access
# control tests: omnibus-limited may use only the names starting omnibus-limited. on vhost / (and
# publish through the default exchange, amq.default, which sending to a queue needs), and has no
# access to vhost omnibus-private.
rabbitmq_tls_up() {
  local restart=${1:-false} ssl expr answer
  ssl="[{cacertfile,\"$TLS_DIR/ca.pem\"},{certfile,\"$TLS_DIR/server.pem\"},{keyfile,\"$TLS_DIR/server.key\"},{verify,verify_none},{fail_if_no_peer_cert,false}]"
  # shellcheck disable=SC2016 # Erlang, not shell
  expr='
    Restart = '"$restart"', Ssl = '"$ssl"', AmqpsPort = '"$RABBITMQ_AMQPS_PORT"', StompsPort = '"$RABBITMQ_STOMPS_PORT"',
    Limited = <<"'"$RABBITMQ_LIMITED_USER"'">>, Private = <<"'"$RABBITMQ_PRIVATE_VHOST"'">>,
    Prefix = <<"^omnibus-limited[.]">>, Write = <<"^(omnibus-limited[.].*|amq[.]default)$">>,
    Me = <<"omnibus-brokers.sh">>,
    _ = rabbit_networking:ensure_ssl(),
    Listening = fun(Proto, Port) -> [x || {listener, N, P, _, _, Po, _} <- rabbit_networking:active_listeners(), N =:= node(), P =:= Proto, Po =:= Port] =/= [] end,
    StompSsl = rabbit_misc:tcp_name(rabbit_stomp_listener_sup, {127,0,0,1}, StompsPort),
    if Restart ->
         catch rabbit_networking:stop_tcp_listener({"127.0.0.1", AmqpsPort}),
         catch supervisor:terminate_child(rabbit_stomp_sup, StompSsl),
         catch supervisor:delete_child(rabbit_stomp_sup, StompSsl),
         ssl:clear_pem_cache();
       true -> ok
    end,
    A = case Listening('"'"'amqp/ssl'"'"', AmqpsPort) of
          true -> already;
          false -> rabbit_networking:start_ssl_listener({"127.0.0.1", AmqpsPort}, Ssl, 10)
        end,
    S = case Listening('"'"'stomp/ssl'"'"', StompsPort) of
          true -> already;
          false ->
            [Conf | _] = [lists:nth(6, Args) || {Id, _, _, _} <- supervisor:which_children(rabbit_stomp_sup),
                          {ok, #{start := {tcp_listener_sup, start_link, Args}}} <- [supervisor:get_childspec(rabbit_stomp_sup, Id)],
                          lists:nth(3, Args) =:= ranch_tcp],
            [Addr | _] = rabbit_networking:tcp_listener_addresses({"127.0.0.1", StompsPort}),
            Spec = rabbit_networking:tcp_listener_spec(rabbit_stomp_listener_sup, Addr, [{backlog, 128}, {nodelay, true} | Ssl],
                     ranch_ssl, rabbit_stomp_client_sup, Conf, '"'"'stomp/ssl'"'"', 10, 1, "STOMP TLS listener"),
            element(1, supervisor:start_child(rabbit_stomp_sup, Spec))
        end,
    catch rabbit_vhost:add(Private, Me),
    case catch rabbit_auth_backend_internal:add_user(Limited, <<"'"$RABBITMQ_LIMITED_PASSWORD"'">>, Me) of
      ok -> ok;
      _ -> rabbit_auth_backend_internal:change_password(Limited, <<"'"$RABBITMQ_LIMITED_PASSWORD"'">>, Me)
    end,
    ok = rabbit_auth_backend_internal:set_permissions(Limited, <<"/">>, Prefix, Write, Prefix, Me),
    ok = rabbit_auth_backend_internal:set_permissions(<<"guest">>, Private, <<".*">>, <<".*">>, <<".*">>, Me),
    {A, S}.'
  answer=$(rabbitmqctl -q eval "$expr" 2>&1) || {
    printf '%s\n' "$answer" >>"$WORK/rabbitmq-start.log"
    fail_with_log "rabbitmqctl eval (TLS listeners, users)" "$WORK/rabbitmq-start.log"
    return 1
  }
  [[ $answer == *ok* || $answer == *already* ]] || {
    printf '%s\n' "$answer" >>"$WORK/rabbitmq-start.log"
    fail_with_log "rabbitmq TLS listeners: $answer" "$WORK/rabbitmq-start.log"
    return 1
  }
}

rabbitmq_tls_start() {
  if ! tls_stale amqp 127.0.0.1 "$RABBITMQ_AMQPS_PORT" &&
    ! tls_stale stomp 127.0.0.1 "$RABBITMQ_STOMPS_PORT" guest guest; then
    # Listeners up with our certificate; the users may be gone (a reset node): cheap to set again.
    rabbitmq_tls_up false
    return
  fi
  log "adding RabbitMQ's TLS listeners (amqps $RABBITMQ_AMQPS_PORT, STOMP $RABBITMQ_STOMPS_PORT)"
  # A listener that answers with another certificate (the CA was made anew) is replaced.
  local restart=false
  if [[ -n $(port_pid "$RABBITMQ_AMQPS_PORT") || -n $(port_pid "$RABBITMQ_STOMPS_PORT") ]]; then restart=true; fi
  rabbitmq_tls_up "$restart" || return 1
  PROBE_CA=$TLS_DIR/ca.pem wait_until rabbitmq-tls "$(rabbitmq_log)" "" amqp 127.0.0.1 "$RABBITMQ_AMQPS_PORT" || return 1
}

rabbitmq_stop() {
  if probe amqp 127.0.0.1 "$RABBITMQ_AMQP_PORT" >/dev/null; then
    log "stopping RabbitMQ (rabbitmqctl shutdown)"
    rabbitmqctl -q shutdown >>"$WORK/rabbitmq-start.log" 2>&1 || {
      local pid
      pid=$(port_pid "$RABBITMQ_AMQP_PORT")
      [[ -n $pid ]] && stop_pid rabbitmq "$pid" 60
    }
  fi
}

rabbitmq_status() {
  local amqp stomp stream state=up
  stomp=$(probe stomp 127.0.0.1 "$RABBITMQ_STOMP_PORT" guest guest) || state=degraded
  stream=$(probe stream 127.0.0.1 "$RABBITMQ_STREAM_PORT") || state=degraded
  amqp=$(probe amqp 127.0.0.1 "$RABBITMQ_AMQP_PORT") || state=down
  status_line rabbitmq "$state" \
    "amqp://127.0.0.1:$RABBITMQ_AMQP_PORT stomp://127.0.0.1:$RABBITMQ_STOMP_PORT stream://127.0.0.1:$RABBITMQ_STREAM_PORT" \
    "amqp: $amqp; stomp: $stomp; stream: $stream"
  state=up
  amqp=$(probe_tls amqp 127.0.0.1 "$RABBITMQ_AMQPS_PORT") || state=down
  stomp=$(probe_tls stomp 127.0.0.1 "$RABBITMQ_STOMPS_PORT" guest guest) || state=down
  status_line rabbitmq-tls "$state" "amqps://127.0.0.1:$RABBITMQ_AMQPS_PORT stomp+ssl://127.0.0.1:$RABBITMQ_STOMPS_PORT" \
    "amqps: $amqp; stomp+ssl: $stomp"
}

# ---------------------------------------------------------------------------------------------
# Mosquitto: Debian's mosquitto with tools/mosquitto/mosquitto.conf on 127.0.0.1:1883.

# Config file a running mosquitto was started with (its -c argument), if any.
mosquitto_conf_of() {
  local pid=$1 prev='' arg
  while IFS= read -r -d '' arg; do
    if [[ $prev == -c || $prev == --config-file ]]; then
      # A relative path is relative to the process's cwd.
      [[ $arg == /* ]] || arg="/proc/$pid/cwd/$arg"
      echo "$arg"
      return 0
    fi
    prev=$arg
  done <"/proc/$pid/cmdline"
}

mosquitto_start() {
  mosquitto_main_start || return 1
  mosquitto_secure_start
}

mosquitto_main_start() {
  local t0=$SECONDS pid conf queued
  command -v mosquitto >/dev/null || apt_install mosquitto
  pid=$(port_pid "$MOSQUITTO_PORT")
  if [[ -n $pid ]]; then
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) != mosquitto ]]; then
      fail_with_log "port $MOSQUITTO_PORT is taken by $(cat "/proc/$pid/comm" 2>/dev/null) (pid $pid), not mosquitto" ""
      return 1
    fi
    conf=$(mosquitto_conf_of "$pid")
    if [[ -n $conf ]] && cmp -s "$conf" "$MOSQUITTO_CONF"; then
      wait_until mosquitto /var/log/mosquitto/mosquitto.log "$pid" mqtt 127.0.0.1 "$MOSQUITTO_PORT" || return 1
      log "mosquitto already runs with our config (pid $pid)"
      return 0
    fi
    queued=$(sed -n 's/^[[:space:]]*max_queued_messages[[:space:]]\{1,\}\([0-9]*\).*/\1/p' "${conf:-/dev/null}" 2>/dev/null | tail -n 1)
    log "mosquitto (pid $pid) runs with ${conf:-its built-in defaults} (max_queued_messages ${queued:-1000 by default}):" \
      "restarting it with tools/mosquitto/mosquitto.conf"
    stop_pid mosquitto "$pid" 20
  fi
  # Mosquitto drops root for the mosquitto user, which must own its pid, data and log dirs.
  install -d -o mosquitto -g mosquitto /run/mosquitto /var/lib/mosquitto /var/log/mosquitto
  log "starting mosquitto -d -c tools/mosquitto/mosquitto.conf"
  mosquitto -d -c "$MOSQUITTO_CONF" >>"$WORK/mosquitto-start.log" 2>&1 || {
    fail_with_log "mosquitto -d -c $MOSQUITTO_CONF" /var/log/mosquitto/mosquitto.log
    return 1
  }
  wait_until mosquitto /var/log/mosquitto/mosquitto.log "" mqtt 127.0.0.1 "$MOSQUITTO_PORT" || return 1
  log "mosquitto ready ($(elapsed_since "$t0"))"
}

mosquitto_stop() {
  local pid
  pid=$(port_pid "$MOSQUITTO_PORT")
  if [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == mosquitto ]]; then
    stop_pid mosquitto "$pid" 20
  fi
  mosquitto_secure_stop
}

# A second Mosquitto of ours (tools/mosquitto/mosquitto-secure.conf): TLS on 8883 and, with
# anonymous access off, user omnibus with a password on 1884. The machine's Mosquitto on 1883 is
# left as it is.
MOSQUITTO_SECURE_DIR=$WORK/mosquitto-secure

mosquitto_secure_ready() {
  probe_tls mqtt 127.0.0.1 "$MOSQUITTO_TLS_PORT" >/dev/null &&
    probe mqtt 127.0.0.1 "$MOSQUITTO_AUTH_PORT" "$MOSQUITTO_AUTH_USER" "$MOSQUITTO_AUTH_PASSWORD" >/dev/null
}

mosquitto_secure_start() {
  local dir=$MOSQUITTO_SECURE_DIR pid port
  pid=$(pidfile_pid "$dir/mosquitto.pid")
  if [[ -n $pid ]] && mosquitto_secure_ready; then return 0; fi
  # Ours but not answering as it should (an old certificate or config): start it again.
  [[ -n $pid ]] && stop_pid mosquitto-secure "$pid" 20
  for port in "$MOSQUITTO_TLS_PORT" "$MOSQUITTO_AUTH_PORT"; do
    pid=$(port_pid "$port")
    if [[ -n $pid ]]; then
      fail_with_log "port $port is taken by pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null)), not by our second Mosquitto" ""
      return 1
    fi
  done
  mkdir -p "$dir"
  sed -e "s|@TLS_DIR@|$TLS_DIR|g" -e "s|@DIR@|$dir|g" -e "s/@TLS_PORT@/$MOSQUITTO_TLS_PORT/" \
    -e "s/@AUTH_PORT@/$MOSQUITTO_AUTH_PORT/" "$REPO/tools/mosquitto/mosquitto-secure.conf" >"$dir/mosquitto.conf"
  rm -f "$dir/passwords"
  touch "$dir/passwords"
  chmod 600 "$dir/passwords"
  mosquitto_passwd -b "$dir/passwords" "$MOSQUITTO_AUTH_USER" "$MOSQUITTO_AUTH_PASSWORD" >>"$dir/mosquitto.log" 2>&1 || {
    fail_with_log "mosquitto_passwd" "$dir/mosquitto.log"
    return 1
  }
  # Started as root, Mosquitto runs as the mosquitto user, which must read the password file.
  if ((EUID == 0)) && id mosquitto >/dev/null 2>&1; then chown mosquitto:mosquitto "$dir/passwords"; fi
  log "starting a second mosquitto (TLS $MOSQUITTO_TLS_PORT, password-only $MOSQUITTO_AUTH_PORT)"
  start_detached "$dir/mosquitto.pid" "$dir/mosquitto.log" mosquitto -c "$dir/mosquitto.conf" || return 1
  PROBE_CA=$TLS_DIR/ca.pem wait_until mosquitto-secure "$dir/mosquitto.log" "$(<"$dir/mosquitto.pid")" \
    mqtt 127.0.0.1 "$MOSQUITTO_TLS_PORT" || return 1
  wait_until mosquitto-secure "$dir/mosquitto.log" "$(<"$dir/mosquitto.pid")" \
    mqtt 127.0.0.1 "$MOSQUITTO_AUTH_PORT" "$MOSQUITTO_AUTH_USER" "$MOSQUITTO_AUTH_PASSWORD" || return 1
}

mosquitto_secure_stop() {
  local pid
  pid=$(pidfile_pid "$MOSQUITTO_SECURE_DIR/mosquitto.pid")
  [[ -n $pid ]] && stop_pid mosquitto-secure "$pid" 20
  rm -f "$MOSQUITTO_SECURE_DIR/mosquitto.pid"
}


mosquitto_status() {
  local answer state=up pid conf='' which
  answer=$(probe mqtt 127.0.0.1 "$MOSQUITTO_PORT") || state=down
  pid=$(port_pid "$MOSQUITTO_PORT")
  [[ -n $pid ]] && conf=$(mosquitto_conf_of "$pid" 2>/dev/null || true)
  if [[ -n $conf ]] && cmp -s "$conf" "$MOSQUITTO_CONF"; then which="our config"; else which="config ${conf:-default}"; fi
  [[ $state == up ]] && answer="$answer; $which"
  status_line mosquitto "$state" "mqtt://127.0.0.1:$MOSQUITTO_PORT" "$answer"
  local tls auth
  state=up
  tls=$(probe_tls mqtt 127.0.0.1 "$MOSQUITTO_TLS_PORT") || state=down
  auth=$(probe mqtt 127.0.0.1 "$MOSQUITTO_AUTH_PORT" "$MOSQUITTO_AUTH_USER" "$MOSQUITTO_AUTH_PASSWORD") || state=down
  status_line mosquitto-tls "$state" "mqtts://127.0.0.1:$MOSQUITTO_TLS_PORT mqtt://$MOSQUITTO_AUTH_USER:***@127.0.0.1:$MOSQUITTO_AUTH_PORT" \
    "mqtts: $tls; password-only: $auth"
}

# ---------------------------------------------------------------------------------------------
# ActiveMQ Classic 5.17: Debian's activemq jars, our tools/activemq/activemq.xml, data in the
# work dir, STOMP on 127.0.0.1:61614 (admin/admin).

ACTIVEMQ_DIR=$WORK/activemq

activemq_start() {
  local t0=$SECONDS pid java
  [[ -r $ACTIVEMQ_HOME/bin/activemq.jar ]] || apt_install activemq
  pid=$(pidfile_pid "$ACTIVEMQ_DIR/activemq.pid")
  if probe stomp 127.0.0.1 "$ACTIVEMQ_STOMP_PORT" "$ACTIVEMQ_USER" "$ACTIVEMQ_PASSWORD" >/dev/null; then
    if ! tls_stale stomp 127.0.0.1 "$ACTIVEMQ_STOMPS_PORT" "$ACTIVEMQ_USER" "$ACTIVEMQ_PASSWORD"; then
      log "activemq already runs"
      return 0
    fi
    if [[ -z $pid ]]; then
      log "activemq runs but was not started from $WORK and has no STOMP over TLS on $ACTIVEMQ_STOMPS_PORT: leaving it alone"
      return 0
    fi
    # Started from an older config, or with a certificate that is no longer ours: once more.
    log "activemq runs without STOMP over TLS on $ACTIVEMQ_STOMPS_PORT (an older config or certificate): restarting it"
    activemq_stop
    pid=''
  fi
  if [[ -z $pid ]]; then
    pid=$(port_pid "$ACTIVEMQ_STOMP_PORT")
    if [[ -n $pid ]]; then
      fail_with_log "port $ACTIVEMQ_STOMP_PORT is taken by pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null)), which does not answer STOMP as our ActiveMQ" ""
      return 1
    fi
    java=$(java_bin) || return 1
    mkdir -p "$ACTIVEMQ_DIR/data"
    log "starting ActiveMQ from tools/activemq/activemq.xml"
    # shellcheck disable=SC2086 # ACTIVEMQ_HEAP_OPTS is a list of JVM options
    (cd "$ACTIVEMQ_DIR" && start_detached "$ACTIVEMQ_DIR/activemq.pid" "$ACTIVEMQ_DIR/stdout.log" \
      "$java" ${ACTIVEMQ_HEAP_OPTS:--Xms128m -Xmx512m} -XX:+UseG1GC -Djava.awt.headless=true \
      -Dactivemq.home="$ACTIVEMQ_HOME" -Dactivemq.base="$ACTIVEMQ_DIR" \
      -Dactivemq.conf="$REPO/tools/activemq" -Dactivemq.data="$ACTIVEMQ_DIR/data" \
      -Dlog4j.configuration="file:$REPO/tools/activemq/log4j.properties" \
      -Domnibus.tls="$TLS_DIR" -Domnibus.tls.password="$TLS_STORE_PASSWORD" \
      -jar "$ACTIVEMQ_HOME/bin/activemq.jar" start "xbean:file:$REPO/tools/activemq/activemq.xml") || return 1
    pid=$(<"$ACTIVEMQ_DIR/activemq.pid")
  fi
  wait_until activemq "$ACTIVEMQ_DIR/data/activemq.log" "$pid" \
    stomp 127.0.0.1 "$ACTIVEMQ_STOMP_PORT" "$ACTIVEMQ_USER" "$ACTIVEMQ_PASSWORD" || {
    tail -n 20 "$ACTIVEMQ_DIR/stdout.log" 2>/dev/null | sed 's/^/    stdout: /' >&2
    return 1
  }
  PROBE_CA=$TLS_DIR/ca.pem wait_until activemq "$ACTIVEMQ_DIR/data/activemq.log" "$pid" \
    stomp 127.0.0.1 "$ACTIVEMQ_STOMPS_PORT" "$ACTIVEMQ_USER" "$ACTIVEMQ_PASSWORD" || return 1
  log "activemq ready ($(elapsed_since "$t0"))"
}

activemq_stop() {
  local pid
  pid=$(pidfile_pid "$ACTIVEMQ_DIR/activemq.pid")
  [[ -n $pid ]] || pid=$(port_pid "$ACTIVEMQ_STOMP_PORT")
  [[ -n $pid ]] && stop_pid activemq "$pid" 60
  rm -f "$ACTIVEMQ_DIR/activemq.pid"
}

activemq_status() {
  local answer state=up
  answer=$(probe stomp 127.0.0.1 "$ACTIVEMQ_STOMP_PORT" "$ACTIVEMQ_USER" "$ACTIVEMQ_PASSWORD") || state=down
  status_line activemq "$state" "stomp://127.0.0.1:$ACTIVEMQ_STOMP_PORT" "$answer"
  state=up
  answer=$(probe_tls stomp 127.0.0.1 "$ACTIVEMQ_STOMPS_PORT" "$ACTIVEMQ_USER" "$ACTIVEMQ_PASSWORD") || state=down
  status_line activemq-tls "$state" "stomp+ssl://127.0.0.1:$ACTIVEMQ_STOMPS_PORT" "$answer"
}

# ---------------------------------------------------------------------------------------------
# Kafka: Apache Kafka in KRaft mode, jars from Maven Central (tools/kafka/pom.xml), one combined
# broker+controller per node. Node N listens on 9091+N, its controller on 19091+N.

KAFKA_DIR=$WORK/kafka

# The layout the data dirs were formatted for: "VERSION NODES", empty if never formatted.
kafka_layout() { cat "$KAFKA_DIR/layout" 2>/dev/null || true; }

kafka_running_nodes() {
  local n
  for n in "$KAFKA_DIR"/node-*; do
    [[ -d $n ]] || continue
    if [[ -n $(pidfile_pid "$n/kafka.pid") ]]; then echo "${n##*-}"; fi
  done
}

kafka_bootstrap() {
  local nodes=$1 i list=''
  for ((i = 1; i <= nodes; i++)); do list+="${list:+,}127.0.0.1:$((KAFKA_BASE_PORT + i - 1))"; done
  echo "$list"
}

# Copies the broker's jars for VERSION into the work dir (once; Maven caches them in ~/.m2).
kafka_fetch() {
  local version=$1 lib=$KAFKA_DIR/lib/$1 profile=()
  [[ -r $lib/kafka_2.13-$version.jar ]] && return 0
  command -v mvn >/dev/null || apt_install maven
  # Kafka 3.x logs through log4j 1 (reload4j); 4.x through Log4j 2.
  [[ $version == 3.* ]] && profile=(-P reload4j)
  log "fetching Apache Kafka $version jars (mvn dependency:copy-dependencies)"
  rm -rf "$lib.tmp"
  mkdir -p "$KAFKA_DIR/lib"
  if ! mvn -q -B -f "$REPO/tools/kafka/pom.xml" "${profile[@]}" dependency:copy-dependencies \
    -Dkafka.version="$version" -DincludeScope=runtime -DoutputDirectory="$lib.tmp" \
    >"$KAFKA_DIR/mvn.log" 2>&1; then
    fail_with_log "mvn dependency:copy-dependencies for Kafka $version" "$KAFKA_DIR/mvn.log"
    return 1
  fi
  mv "$lib.tmp" "$lib"
}

kafka_render_config() {
  local node=$1 nodes=$2 dir=$KAFKA_DIR/node-$1 voters='' i rf min_isr
  for ((i = 1; i <= nodes; i++)); do voters+="${voters:+,}$i@127.0.0.1:$((KAFKA_CONTROLLER_BASE_PORT + i - 1))"; done
  rf=$((nodes < 3 ? nodes : 3))
  min_isr=$((nodes >= 3 ? 2 : 1))
  mkdir -p "$dir/data"
  sed -e "s/@NODE_ID@/$node/" -e "s/@VOTERS@/$voters/" \
    -e "s/@PORT@/$((KAFKA_BASE_PORT + node - 1))/g" \
    -e "s/@CONTROLLER_PORT@/$((KAFKA_CONTROLLER_BASE_PORT + node - 1))/g" \
    -e "s|@LOG_DIR@|$dir/data|" -e "s/@RF@/$rf/g" -e "s/@MIN_ISR@/$min_isr/g" \
    -e "s/@SSL_PORT@/$((KAFKA_SSL_BASE_PORT + node - 1))/g" -e "s/@SASL_PORT@/$((KAFKA_SASL_BASE_PORT + node - 1))/g" \
    -e "s|@TLS_DIR@|$TLS_DIR|g" -e "s/@TLS_STORE_PASSWORD@/$TLS_STORE_PASSWORD/g" \
    "$REPO/tools/kafka/server.properties" >"$dir/server.properties"
}

kafka_java_opts() {
  local version=$1 dir=$2
  if [[ $version == 3.* ]]; then
    echo "-Dlog4j.configuration=file:$REPO/tools/kafka/log4j.properties"
  else
    echo "-Dlog4j2.configurationFile=$REPO/tools/kafka/log4j2.properties"
  fi
  echo "-Dkafka.logs.dir=$dir"
}

# Formats (if needed) and launches node N; does not wait.
kafka_launch() {
  local version=$1 nodes=$2 node=$3 dir=$KAFKA_DIR/node-$3 java cid opts=()
  java=$(java_bin) || return 1
  kafka_render_config "$node" "$nodes"
  mapfile -t opts < <(kafka_java_opts "$version" "$dir")
  if [[ ! -e $dir/data/meta.properties ]]; then
    cid=$(<"$KAFKA_DIR/cluster.id")
    # The SCRAM user of the SASL tests comes with new storage (no Admin API call needed later).
    "$java" "${opts[@]}" -cp "$KAFKA_DIR/lib/$version/*" kafka.tools.StorageTool format \
      -t "$cid" -c "$dir/server.properties" --ignore-formatted \
      --add-scram "SCRAM-SHA-256=[name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASSWORD]" \
      --add-scram "SCRAM-SHA-512=[name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASSWORD]" \
      >"$dir/format.log" 2>&1 || {
      fail_with_log "kafka-$node: storage format" "$dir/format.log"
      return 1
    }
    echo "$cid $KAFKA_SCRAM_USER" >"$KAFKA_DIR/scram-user"
  fi
  log "starting kafka-$node (Kafka $version) on 127.0.0.1:$((KAFKA_BASE_PORT + node - 1))"
  : >"$dir/stdout.log"
  # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of JVM options
  start_detached "$dir/kafka.pid" "$dir/stdout.log" "$java" ${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m} \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true "${opts[@]}" \
    -cp "$KAFKA_DIR/lib/$version/*" kafka.Kafka "$dir/server.properties"
}

kafka_wait_node() {
  local node=$1 dir=$KAFKA_DIR/node-$1 log=$KAFKA_DIR/node-$1/server.log
  [[ -s $log ]] || log=$dir/stdout.log
  wait_until "kafka-$node" "$log" "$(pidfile_pid "$dir/kafka.pid")" \
    kafka 127.0.0.1 "$((KAFKA_BASE_PORT + node - 1))"
}

# kafka_start [NODE]: all nodes (formatting them first when needed), or one node.
kafka_start() {
  local only=${1:-} t0=$SECONDS layout version nodes running i ok=0 started=()
  layout=$(kafka_layout)
  mapfile -t running < <(kafka_running_nodes)
  if ((${#running[@]} == 0)) && [[ -z $only ]] && probe kafka 127.0.0.1 "$KAFKA_BASE_PORT" >/dev/null; then
    # Started from another clone or work dir, or by hand: it is not ours to reconfigure.
    log "a Kafka broker already answers on 127.0.0.1:$KAFKA_BASE_PORT (not started from $WORK): leaving it alone"
    return 0
  fi
  if ((${#running[@]})); then
    # A cluster runs: keep its layout unless asked for another one explicitly.
    version=${KAFKA_VERSION:-${layout% *}}
    nodes=${KAFKA_NODES:-${layout#* }}
    if [[ "$version $nodes" != "$layout" ]]; then
      fail_with_log "kafka runs as '$layout' (version nodes); asked for '$version $nodes': run 'scripts/brokers.sh stop kafka' first" ""
      return 1
    fi
    if [[ -z $only ]] && kafka_tls_stale "$nodes"; then
      # Started from an older config, or with a certificate that is no longer ours: once more.
      log "kafka runs without its SSL and SASL_SSL listeners (an older config or certificate): restarting it"
      kafka_stop
      running=()
    fi
  elif [[ -n $layout ]]; then
    # Stopped, with data: an unset KAFKA_VERSION / KAFKA_NODES keeps that data's layout (so
    # `restart kafka` never wipes it); a different one asks for new, empty storage.
    version=${KAFKA_VERSION:-${layout% *}}
    nodes=${KAFKA_NODES:-${layout#* }}
  else
    version=${KAFKA_VERSION:-$KAFKA_DEFAULT_VERSION}
    nodes=${KAFKA_NODES:-1}
  fi
  if ! [[ $nodes =~ ^[1-9]$ ]]; then
    fail_with_log "KAFKA_NODES must be 1 to 9, not '$nodes'" ""
    return 1
  fi
  if [[ -n $only ]] && ((only > nodes)); then
    fail_with_log "kafka-$only: the cluster has $nodes node(s)" ""
    return 1
  fi
  kafka_fetch "$version" || return 1
  mkdir -p "$KAFKA_DIR"
  if [[ -n $only && "$version $nodes" != "$layout" ]]; then
    fail_with_log "kafka-$only: the data is formatted as '$layout' (version nodes), not '$version $nodes': start the whole cluster with 'up kafka'" ""
    return 1
  fi
  if [[ "$version $nodes" != "$layout" ]]; then
    # Another version or size: data from the old layout can't be reused (and 4.x data can't go
    # back to 3.x), so start from empty storage with a new cluster id.
    [[ -n $layout ]] && log "kafka layout changes from '$layout' to '$version $nodes': wiping its data"
    rm -rf "$KAFKA_DIR"/node-*
    local java
    java=$(java_bin) || return 1
    "$java" -cp "$KAFKA_DIR/lib/$version/*" kafka.tools.StorageTool random-uuid 2>/dev/null |
      tail -n 1 >"$KAFKA_DIR/cluster.id"
    echo "$version $nodes" >"$KAFKA_DIR/layout"
  fi
  for ((i = 1; i <= nodes; i++)); do
    [[ -n $only && $i != "$only" ]] && continue
    if [[ -n $(pidfile_pid "$KAFKA_DIR/node-$i/kafka.pid") ]]; then continue; fi
    local port=$((KAFKA_BASE_PORT + i - 1)) pid
    pid=$(port_pid "$port")
    if [[ -n $pid ]]; then
      # A Kafka from another work dir that is still starting (or restarting) answers soon: wait
      # for it rather than fail; anything else on the port is an error.
      local waited=0
      while ((waited < 60)) && ! probe kafka 127.0.0.1 "$port" >/dev/null; do
        sleep 1
        waited=$((waited + 1))
      done
      if [[ -z $only ]] && probe kafka 127.0.0.1 "$port" >/dev/null; then
        log "a Kafka broker started elsewhere answers on 127.0.0.1:$port: leaving it alone"
        return 0
      fi
      fail_with_log "port $port is taken by pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null)), not by our kafka-$i" ""
      return 1
    fi
    kafka_launch "$version" "$nodes" "$i" || return 1
    started+=("$i")
  done
  # Nodes of a cluster need each other (controller quorum): launch all, then wait for each.
  for ((i = 1; i <= nodes; i++)); do
    [[ -n $only && $i != "$only" ]] && continue
    kafka_wait_node "$i" || ok=1
  done
  ((ok == 0)) || return 1
  if [[ -z $only ]]; then
    wait_until kafka "$KAFKA_DIR/node-1/server.log" "" kafka 127.0.0.1 "$KAFKA_BASE_PORT" "$nodes" groups || return 1
  fi
  kafka_bootstrap "$nodes" >"$KAFKA_DIR/bootstrap"
  if [[ -z $only ]]; then
    local n
    for ((n = 1; n <= nodes; n++)); do
      PROBE_CA=$TLS_DIR/ca.pem wait_until "kafka-$n" "$KAFKA_DIR/node-$n/server.log" "" \
        kafka 127.0.0.1 "$((KAFKA_SSL_BASE_PORT + n - 1))" || return 1
    done
    kafka_scram_user "$version" "$nodes" || return 1
  fi
  write_env
  if ((${#started[@]})); then
    log "kafka ready: nodes ${started[*]} started ($(elapsed_since "$t0"))"
  else
    log "kafka already runs"
  fi
}

# kafka_tls_ready NODES: each node's SSL listener answers with our certificate, and its SASL_SSL
# listener answers ApiVersions (what it allows before authentication). Prints what failed.
kafka_tls_ready() {
  local nodes=$1 i answer ok=0 failed=()
  for ((i = 1; i <= nodes; i++)); do
    answer=$(probe_tls kafka 127.0.0.1 "$((KAFKA_SSL_BASE_PORT + i - 1))") || failed+=("kafka-$i ssl: $answer")
    answer=$(probe_tls kafka-apis 127.0.0.1 "$((KAFKA_SASL_BASE_PORT + i - 1))") || failed+=("kafka-$i sasl_ssl: $answer")
  done
  ((${#failed[@]} == 0)) && return 0
  local IFS=';'
  echo "${failed[*]}"
  return 1
}

# kafka_tls_stale NODES: true when a node lacks its SSL or SASL_SSL listener (see tls_stale).
kafka_tls_stale() {
  local nodes=$1 i
  for ((i = 1; i <= nodes; i++)); do
    tls_stale kafka 127.0.0.1 "$((KAFKA_SSL_BASE_PORT + i - 1))" && return 0
    tls_stale kafka-apis 127.0.0.1 "$((KAFKA_SASL_BASE_PORT + i - 1))" && return 0
  done
  return 1
}

# kafka_scram_user VERSION NODES: the SCRAM user of the SASL tests, for data formatted before
# `format --add-scram` made it (the marker file names the cluster id it was made for).
kafka_scram_user() {
  local version=$1 nodes=$2 marker=$KAFKA_DIR/scram-user want java
  want="$(cat "$KAFKA_DIR/cluster.id" 2>/dev/null) $KAFKA_SCRAM_USER"
  [[ -r $marker && $(<"$marker") == "$want" ]] && return 0
  java=$(java_bin) || return 1
  log "kafka: SCRAM user $KAFKA_SCRAM_USER (tools/kafka/ScramUser.java)"
  "$java" -Dlog4j2.configurationFile="$REPO/tools/kafka/log4j2.properties" -Dkafka.logs.dir="$KAFKA_DIR" \
    -cp "$KAFKA_DIR/lib/$version/*" "$REPO/tools/kafka/ScramUser.java" "$(kafka_bootstrap "$nodes")" \
    "$KAFKA_SCRAM_USER" "$KAFKA_SCRAM_PASSWORD" >"$KAFKA_DIR/scram-user.log" 2>&1 || {
    fail_with_log "kafka: creating SCRAM user $KAFKA_SCRAM_USER" "$KAFKA_DIR/scram-user.log"
    return 1
  }
  echo "$want" >"$marker"
}

# kafka_stop [NODE]
kafka_stop() {
  local only=${1:-} n pids=() names=() i
  for n in "$KAFKA_DIR"/node-*; do
    [[ -d $n ]] || continue
    i=${n##*-}
    [[ -n $only && $i != "$only" ]] && continue
    local pid
    pid=$(pidfile_pid "$n/kafka.pid")
    if [[ -n $pid ]]; then
      pids+=("$pid")
      names+=("kafka-$i")
    fi
  done
  ((${#pids[@]})) || return 0
  # Signal all nodes at once: a node waiting for a quorum that is already gone would only time out.
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for i in "${!pids[@]}"; do stop_pid "${names[$i]}" "${pids[$i]}" 60; done
}

kafka_status() {
  local layout version nodes i answer state=up detail='' down=()
  layout=$(kafka_layout)
  version=${layout% *}
  nodes=${layout#* }
  if [[ -z $layout ]]; then
    version=${KAFKA_VERSION:-$KAFKA_DEFAULT_VERSION}
    nodes=${KAFKA_NODES:-1}
  fi
  for ((i = 1; i <= nodes; i++)); do
    if ! answer=$(probe kafka 127.0.0.1 "$((KAFKA_BASE_PORT + i - 1))"); then
      down+=("kafka-$i: $answer")
    elif [[ -z $detail ]]; then
      detail=$answer
    fi
  done
  if ((${#down[@]} == nodes)); then
    state=down
    detail="${down[*]}"
  elif ((${#down[@]})); then
    state=degraded
    detail="$detail; down: ${down[*]}"
  fi
  status_line kafka "$state" "$(kafka_bootstrap "$nodes")" "Kafka $version, $nodes node(s); $detail"
  local ssl='' sasl=''
  for ((i = 1; i <= nodes; i++)); do
    ssl+="${ssl:+,}127.0.0.1:$((KAFKA_SSL_BASE_PORT + i - 1))"
    sasl+="${sasl:+,}127.0.0.1:$((KAFKA_SASL_BASE_PORT + i - 1))"
  done
  state=up
  detail=$(kafka_tls_ready "$nodes") || state=down
  status_line kafka-tls "$state" "ssl $ssl sasl_ssl $sasl" "${detail:-SSL and SASL_SSL (SCRAM-SHA-256/512) answer with the certificate of the test CA}"
}

# ---------------------------------------------------------------------------------------------

# Connection settings for tests: `set -a; . .brokers/env; set +a`.
write_env() {
  local kafka
  kafka=$(cat "$KAFKA_DIR/bootstrap" 2>/dev/null || echo "127.0.0.1:$KAFKA_BASE_PORT")
  cat >"$WORK/env" <<EOF
AMQP_URL=amqp://guest:guest@127.0.0.1:$RABBITMQ_AMQP_PORT
MQTT_URL=mqtt://127.0.0.1:$MOSQUITTO_PORT
STOMP_URL=stomp://guest:guest@127.0.0.1:$RABBITMQ_STOMP_PORT
ACTIVEMQ_STOMP_URL=stomp://$ACTIVEMQ_USER:$ACTIVEMQ_PASSWORD@127.0.0.1:$ACTIVEMQ_STOMP_PORT
KAFKA_BROKERS=$kafka
OMNIBUS_TLS_DIR=$TLS_DIR
EOF
}

STATUS_FAILED=0
status_line() {
  local name=$1 state=$2 address=$3 detail=$4
  printf '%-10s %-9s %s  (%s)\n' "$name" "$state" "$address" "$detail"
  [[ $state == up ]] || STATUS_FAILED=1
}

# Expands NAME arguments into ITEMS, "broker" or "kafka:N"; no arguments: all four brokers.
ITEMS=()
targets() {
  local name
  (($#)) || set -- "${ALL[@]}"
  for name in "$@"; do
    case $name in
      all) ITEMS+=("${ALL[@]}") ;;
      rabbitmq | mosquitto | activemq | kafka) ITEMS+=("$name") ;;
      kafka-[1-9]) ITEMS+=("kafka:${name#kafka-}") ;;
      *) die "unknown broker '$name' (rabbitmq, mosquitto, activemq, kafka, kafka-N)" ;;
    esac
  done
}

run_start() {
  local item broker node
  tls_material
  for item in "$@"; do
    broker=${item%%:*}
    node=''
    [[ $item == *:* ]] && node=${item#*:}
    case $broker in
      kafka) kafka_start "$node" || FAILED+=("$broker${node:+-$node}") ;;
      *) "${broker}_start" || FAILED+=("$broker") ;;
    esac
  done
}

run_stop() {
  local item broker node
  for item in "$@"; do
    broker=${item%%:*}
    node=''
    [[ $item == *:* ]] && node=${item#*:}
    case $broker in
      kafka) kafka_stop "$node" ;;
      *) "${broker}_stop" ;;
    esac
  done
}

run_status() {
  local item seen=' '
  for item in "$@"; do
    item=${item%%:*}
    [[ $seen == *" $item "* ]] && continue
    seen+="$item "
    "${item}_status"
  done
}

main() {
  local cmd=${1:-} t0=$SECONDS
  (($#)) && shift
  case $cmd in
    up | start | restart | down | stop | status) ;;
    tls)
      mkdir -p "$WORK"
      tls_material
      log "test CA: $TLS_DIR/ca.pem"
      return
      ;;
    -h | --help | help | '')
      sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed -e '/^$/d' -e 's/^# \{0,1\}//'
      [[ -n $cmd ]]
      return
      ;;
    *) die "unknown command '$cmd' (up, down, status, start, stop, restart, tls)" ;;
  esac
  if [[ $cmd == start || $cmd == stop || $cmd == restart ]] && (($# == 0)); then
    die "$cmd needs a broker name (rabbitmq, mosquitto, activemq, kafka, kafka-N)"
  fi
  targets "$@"
  mkdir -p "$WORK"
  require_tools
  case $cmd in
    up | start)
      run_start "${ITEMS[@]}"
      write_env
      ;;
    restart)
      run_stop "${ITEMS[@]}"
      run_start "${ITEMS[@]}"
      ;;
    down | stop)
      run_stop "${ITEMS[@]}"
      ;;
    status) ;;
  esac
  run_status "${ITEMS[@]}"
  if [[ $cmd == up || $cmd == start || $cmd == restart ]]; then
    log "$cmd took $((SECONDS - t0))s"
    if ((${#FAILED[@]})); then
      die "not up: ${FAILED[*]} (see above)"
    fi
    ((STATUS_FAILED == 0)) || die "a broker came up but does not answer any more (see status above)"
  elif [[ $cmd == status ]]; then
    return "$STATUS_FAILED"
  fi
}

# Sourced (test/brokers/script.test.ts), it only defines the helpers.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then main "$@"; fi
