#!/usr/bin/env bash
# End-to-end check of deploy/guardbot.service under a real systemd: a Debian 12 root filesystem
# (debootstrap) booted with systemd-nspawn, so systemd is PID 1 of a container with a private
# network (loopback only: the exchange is unreachable, and its Mosquitto cannot clash with one on
# the host). Run as root on a scratch Debian 12 machine or VM. See deploy/checks/README.md.
#
#   sudo deploy/checks/systemd.sh
#
# guardbot is installed as deploy/README.md "As a systemd service" says (from a copy of the
# checkout; the checkout is never modified), beside Debian's mosquitto with deploy/mosquitto/acl.
# Checks: a. Type=notify start, b. user/StateDirectory/sandbox, c. watchdog kill+restart of a
# frozen (SIGSTOP) daemon, d. watchdog restart on a stale feed, e. clean stop, f. restart
# recovers the state, g. systemd-analyze security/verify, h. `guardbot health` as the README
# runs it. Each check prints "PASS ..." or "FAIL ..."; the last line is
# "SUMMARY: systemd.sh N passed, M failed in S s"; exit status 0 only if all passed.
#
# Knobs (environment variables):
#   REPO             the guardbot checkout (default: the one this script is in)
#   CHECKS_DIR       work directory (default /var/tmp/guardbot-checks); this script uses
#                    $CHECKS_DIR/systemd (logs, pid files)
#   ROOTFS           the bookworm root filesystem (default $CHECKS_DIR/systemd/rootfs). Made with
#                    debootstrap when missing (~5 min) and kept for the next run: it is modified
#                    (guardbot installed, /etc files) but every run reinstalls and reconfigures.
#   FRESH=1          rebuild the root filesystem even if one exists
#   KEEP=1           leave the container running at the end (stop: kill -TERM $(cat .../nspawn.pid))
#   STALE=0          skip check d (the stale-feed watchdog restart, ~2 min)
#   MIRROR           Debian mirror for debootstrap (default: read from the host's apt sources)
#   HOST_PIP_CONFIG=1  let pip inside the root filesystem use the host's pip configuration: bind
#                    /etc/pip.conf, /etc/xdg/pip, /root/.config/pip, the CA bundle and the local
#                    paths they (or PIP_* variables) name read-only for the install step, and pass
#                    the PIP_* variables. For hosts that reach PyPI only through a mirror or a
#                    TLS-intercepting proxy. PIP_BIND="path ..." binds further paths.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=${REPO:-$(cd "$SCRIPT_DIR/../.." && pwd)}
CHECKS_DIR=${CHECKS_DIR:-/var/tmp/guardbot-checks}
W=$CHECKS_DIR/systemd
R=${ROOTFS:-$W/rootfs}
KEEP=${KEEP:-0}
FRESH=${FRESH:-0}
STALE=${STALE:-1}
HOST_PIP_CONFIG=${HOST_PIP_CONFIG:-0}
MACHINE=guardbot-check
T_START=$(date +%s)
PASSES=0
FAILS=0
NSPAWN_PID=""

log() { printf '\n=== %s\n' "$*"; }
ok() { PASSES=$((PASSES + 1)); printf 'PASS  %s\n' "$*"; }
bad() { FAILS=$((FAILS + 1)); printf 'FAIL  %s\n' "$*"; }
die() {
    printf 'ABORT %s\n' "$*"
    FAILS=$((FAILS + 1))
    exit 1
}
now_ms() { date +%s%3N; }
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); } # ms -> "s.mmm"

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
mkdir -p "$W"

stop_container() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0 # nspawn asks the container's systemd to power off
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$?
    set +e
    if [ -n "$NSPAWN_PID" ]; then
        if [ "$KEEP" = 1 ]; then
            echo "KEEP=1: container left running (systemd-nspawn pid $NSPAWN_PID);"
            echo "  enter it: nsenter -t \$(cat $W/systemd.pid) -a bash; stop it: kill -TERM $NSPAWN_PID"
        else
            stop_container "$NSPAWN_PID"
            echo "container stopped"
        fi
    fi
    printf 'SUMMARY: systemd.sh %d passed, %d failed in %d s\n' \
        "$PASSES" "$FAILS" $(($(date +%s) - T_START))
    exit "$rc"
}
trap cleanup EXIT

SD=""
I() { nsenter -t "$SD" -a "$@"; } # run a command inside the booted container
prop() { I systemctl show -P "$1" guardbot; }
state() {
    I systemctl show guardbot -p ActiveState,SubState,MainPID,NRestarts,Result,StatusText |
        sort | tr '\n' ' '
}
journal_since() { I journalctl -u guardbot --no-pager --since "@$1" "${@:2}"; }

# --- 0. host tools --------------------------------------------------------------------------------
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
if ((${#need[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >"$W/apt.log" 2>&1 ||
        die "apt-get install ${need[*]} (see $W/apt.log)"
fi

# --- 1. root filesystem ---------------------------------------------------------------------------
host_mirror() { # a Debian mirror from the host's apt sources whose suites include bookworm
    {
        grep -h -A3 -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
            awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u}'
        grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '$2=="bookworm"{print $1}'
    } | grep -E '/debian/?$' | head -1 || true
}
if [ -f "$W/nspawn.pid" ] && kill -0 "$(cat "$W/nspawn.pid")" 2>/dev/null; then
    echo "stopping the container left by an earlier KEEP=1 run"
    stop_container "$(cat "$W/nspawn.pid")"
fi
if [ "$FRESH" = 1 ]; then rm -rf "$R"; fi
if [ ! -x "$R/lib/systemd/systemd" ]; then
    M=${MIRROR:-$(host_mirror)}
    [ -n "$M" ] || die "no bookworm mirror in the host's apt sources; set MIRROR"
    log "debootstrap bookworm into $R (a few minutes)"
    rm -rf "$R"
    debootstrap --include=systemd,systemd-sysv,dbus,python3,python3-venv,python3-pip,mosquitto,mosquitto-clients,sqlite3,procps,ca-certificates \
        bookworm "$R" "$M" >"$W/debootstrap.log" 2>&1 || die "debootstrap (see $W/debootstrap.log)"
fi

# --- 2. install guardbot as deploy/README.md says ------------------------------------------------
log "copy the checkout into the root filesystem; pip install . into /opt/guardbot/venv"
rm -rf "$R/usr/local/src/guardbot"
mkdir -p "$R/usr/local/src/guardbot"
tar -C "$REPO" --exclude=.git --exclude='*.egg-info' --exclude=__pycache__ --exclude=build \
    --exclude=.venv --exclude=deploy/.env --exclude=deploy/mosquitto/passwd -cf - . |
    tar -C "$R/usr/local/src/guardbot" -xf -
binds=()
envs=()
if [ "$HOST_PIP_CONFIG" = 1 ]; then
    paths=(/etc/pip.conf /etc/xdg/pip /root/.config/pip /etc/ssl/certs/ca-certificates.crt)
    # local paths the pip configuration names: find-links dirs, file:// indexes, cert, constraints
    mapfile -t named < <(cat /etc/pip.conf /etc/xdg/pip/*.conf /root/.config/pip/*.conf 2>/dev/null |
        grep -v '^[[:space:]]*#' | grep -oE '(file://)?/[^[:space:]",]+' | sed 's#^file://##' || true)
    paths+=("${named[@]}")
    for v in $(compgen -e | grep '^PIP_' || true); do
        envs+=("--setenv=$v=${!v}")
        for p in ${!v}; do [[ "$p" == /* ]] && paths+=("$p"); done
    done
    # shellcheck disable=SC2206 # PIP_BIND is a space-separated list on purpose
    paths+=(${PIP_BIND:-})
    for p in "${paths[@]}"; do
        [ -e "$p" ] || continue
        # bind a file:///x/simple index's whole tree (its pages link to ../files)
        case "$p" in */simple | */simple/) p=$(dirname "$p") ;; esac
        binds+=("--bind-ro=$p")
    done
    mapfile -t binds < <(printf '%s\n' "${binds[@]}" | sort -u)
    echo "host pip configuration: ${binds[*]}"
fi
systemd-nspawn -q -D "$R" --register=no --keep-unit "${binds[@]}" "${envs[@]}" \
    --chdir=/usr/local/src/guardbot /bin/sh -c '
    set -e
    install -d -m 0755 /opt/guardbot
    [ -x /opt/guardbot/venv/bin/python3 ] || python3 -m venv /opt/guardbot/venv
    /opt/guardbot/venv/bin/pip install -q .
    # an unchanged version number must still get the current checkout
    /opt/guardbot/venv/bin/pip install -q --force-reinstall --no-deps .
    /opt/guardbot/venv/bin/guardbot --version' || die "pip install in the root filesystem"

cat >"$R/root/provision.sh" <<'EOF'
#!/bin/sh
# Inside the root filesystem (not booted): deploy/README.md "As a systemd service".
set -eu
cd /usr/local/src/guardbot
id guardbot >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/guardbot \
    --no-create-home --shell /usr/sbin/nologin guardbot
install -d -m 0755 /etc/guardbot
install -m 0644 deploy/guardbot.toml /etc/guardbot/guardbot.toml
install -m 0600 -o root -g root deploy/env.example /etc/guardbot/guardbot.env
PW=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
TOK=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
sed -i -e "s|^GUARDBOT_MQTT_PASSWORD=.*|GUARDBOT_MQTT_PASSWORD=$PW|" \
       -e "s|^GUARDBOT_CONTROL_TOKEN=.*|GUARDBOT_CONTROL_TOKEN=$TOK|" /etc/guardbot/guardbot.env
# Debian's mosquitto with the repo's acl and a passwd (README: "A Mosquitto on the same host").
install -m 0640 -o root -g mosquitto deploy/mosquitto/acl /etc/mosquitto/acl
rm -f /etc/mosquitto/passwd
touch /etc/mosquitto/passwd
mosquitto_passwd -b /etc/mosquitto/passwd guardbot "$PW"
mosquitto_passwd -b /etc/mosquitto/passwd operator "op-$PW"
chown root:mosquitto /etc/mosquitto/passwd
chmod 0640 /etc/mosquitto/passwd
printf '%s\n' 'per_listener_settings false' 'listener 1883' 'protocol mqtt' \
    'allow_anonymous false' 'password_file /etc/mosquitto/passwd' 'acl_file /etc/mosquitto/acl' \
    >/etc/mosquitto/conf.d/guardbot.conf
echo "op-$PW" >/root/operator.pw
chmod 600 /root/operator.pw
install -m 0644 deploy/guardbot.service /etc/systemd/system/guardbot.service
# Offline: the simulated feed instead of the exchange; control on, to open a position (check f).
install -d /etc/systemd/system/guardbot.service.d
rm -f /etc/systemd/system/guardbot.service.d/*.conf
printf '%s\n' '[Service]' 'Environment=GUARDBOT_FEED_MODE=sim' 'Environment=GUARDBOT_FEED_SIM_SEED=7' \
    'Environment=GUARDBOT_CONTROL_ENABLED=true' >/etc/systemd/system/guardbot.service.d/10-check.conf
systemctl enable guardbot.service mosquitto.service
systemctl mask console-getty.service systemd-networkd-wait-online.service >/dev/null 2>&1 || true
rm -rf /var/lib/guardbot /var/lib/private/guardbot
EOF
chmod +x "$R/root/provision.sh"
systemd-nspawn -q -D "$R" --register=no --keep-unit /root/provision.sh || die "provisioning"

# --- boot ------------------------------------------------------------------------------------------
log "boot: systemd-nspawn --boot --private-network (systemd is PID 1 of the container)"
setsid systemd-nspawn -D "$R" --boot --register=no --keep-unit --private-network \
    --machine="$MACHINE" --console=pipe </dev/null >"$W/boot.log" 2>&1 &
NSPAWN_PID=$!
echo "$NSPAWN_PID" >"$W/nspawn.pid"
for _ in $(seq 100); do
    SD=$(pgrep -P "$NSPAWN_PID" -x systemd || true)
    [ -n "$SD" ] && break
    sleep 0.2
done
[ -n "$SD" ] || die "no systemd in the container (see $W/boot.log)"
echo "$SD" >"$W/systemd.pid"
echo "systemd-nspawn pid $NSPAWN_PID, container PID 1 = host pid $SD"
echo "system state: $(timeout 90 nsenter -t "$SD" -a systemctl is-system-running --wait || true)"

# --- a. Type=notify start ----------------------------------------------------------------------------
log "a. systemctl start returns after READY=1"
I systemctl stop guardbot
T0=$(now_ms)
rc=0
I systemctl start guardbot || rc=$?
T1=$(now_ms)
echo "systemctl start: exit $rc in $(secs $((T1 - T0))) s; $(state)"
if [ "$rc" = 0 ] && [ "$(prop ActiveState)/$(prop SubState)" = active/running ] &&
    journal_since $((T0 / 1000)) -o cat | grep -q '"guardbot daemon started"'; then
    ok "a: Type=notify start -> active/running after READY=1 ($(secs $((T1 - T0))) s)"
else bad "a: start: exit $rc, $(state)"; fi
sleep 17 # a watchdog ping or more
echo "watchdog: $(I systemctl show guardbot -p WatchdogUSec -p WatchdogTimestamp | tr '\n' ' ')"

# --- b. user, StateDirectory, sandbox ---------------------------------------------------------------
log "b. dedicated user, StateDirectory, sandbox"
P=$(prop MainPID)
I grep -E '^(Uid|Gid|CapEff|NoNewPrivs|Seccomp):' "/proc/$P/status" | tr -s '\t\n' '  '
echo
# shellcheck disable=SC2016 # expanded by the shell inside the container
PROBE='for d in /etc /opt/guardbot /usr /var/lib /var/lib/guardbot /tmp /var/tmp /dev/shm /home /root; do
  if ( : > "$d/.probe.$$" ) 2>/tmp/.e.$$; then echo "WRITE OK      $d"; rm -f "$d/.probe.$$";
  else echo "WRITE DENIED  $d: $(sed "s/.*: //" /tmp/.e.$$)"; fi; done; rm -f /tmp/.e.$$'
probe=$(I nsenter -t "$P" -m -- setpriv --reuid=guardbot --regid=guardbot --init-groups sh -c "$PROBE")
echo "$probe"
if [ "$(I ps -o user= -p "$P")" = guardbot ] && I test -s /var/lib/guardbot/guardbot.db &&
    [ "$(I stat -c %U:%a /var/lib/guardbot/guardbot.db)" = guardbot:600 ] &&
    grep -q 'WRITE OK      /var/lib/guardbot$' <<<"$probe" &&
    grep -q 'DENIED  /etc: Read-only' <<<"$probe" &&
    grep -q 'DENIED  /opt/guardbot: Read-only' <<<"$probe" &&
    grep -q 'DENIED  /var/lib: Read-only' <<<"$probe"; then
    ok "b: runs as guardbot, database guardbot:600 in /var/lib/guardbot, the rest read-only"
else bad "b: user/state/sandbox"; fi

# --- c. watchdog on a frozen daemon -------------------------------------------------------------------
log "c. kill -STOP the main process: the watchdog must kill and restart it"
P=$(prop MainPID)
N0=$(prop NRestarts)
T0=$(now_ms)
I kill -STOP "$P"
last=""
tk=""
tr=""
while (($(now_ms) - T0 < 120000)); do
    s=$(state)
    el=$(secs $(($(now_ms) - T0)))
    [ "$s" != "$last" ] && echo "+${el}s $s" && last=$s
    [[ -z "$tk" && "$s" == *"Result=watchdog"* ]] && tk=$el
    m=$(prop MainPID)
    if [ "$m" != "$P" ] && [ "$m" != 0 ] && [ "$(prop ActiveState)/$(prop SubState)" = active/running ]; then
        tr=$el
        break
    fi
    sleep 0.5
done
journal_since $((T0 / 1000)) -o short-precise | grep -E 'Watchdog|SIGABRT|Scheduled|Started' || true
N1=$(prop NRestarts)
if [ -n "$tr" ] && [ "$N1" -gt "$N0" ]; then
    ok "c: watchdog killed the frozen daemon ${tk:-?} s after SIGSTOP, active again after $tr s (NRestarts $N0->$N1)"
else bad "c: no watchdog restart within 120 s: $(state)"; fi

# --- d. watchdog on a stale feed ----------------------------------------------------------------------
if [ "$STALE" = 1 ]; then
    log "d. exchange feed without network: pings withheld once the feed is stale, watchdog restart"
    I sh -c 'printf "[Service]\nEnvironment=GUARDBOT_FEED_MODE=ccxt\n" \
        >/etc/systemd/system/guardbot.service.d/20-ccxt-offline.conf && systemctl daemon-reload'
    T0=$(date +%s)
    I systemctl restart guardbot
    N0=$(prop NRestarts) # a manual restart resets the counter
    last=""
    while (($(date +%s) - T0 < 240)); do
        s=$(state)
        [ "$s" != "$last" ] && echo "+$(($(date +%s) - T0))s $s" && last=$s
        [ "$(prop NRestarts)" -gt "$N0" ] && [ "$(prop ActiveState)" = active ] && break
        sleep 1
    done
    J=$(journal_since "$T0" -o short-precise)
    grep -E 'withholding|Watchdog|SIGABRT|Scheduled' <<<"$J" | cut -c1-200 || true
    if grep -q 'withholding watchdog pings' <<<"$J" && grep -q 'Watchdog timeout' <<<"$J" &&
        [ "$(prop NRestarts)" -gt "$N0" ]; then
        ok "d: stale feed -> pings withheld -> watchdog restart, $(($(date +%s) - T0)) s after the start"
    else bad "d: stale-feed watchdog: $(state)"; fi
    I sh -c 'rm -f /etc/systemd/system/guardbot.service.d/20-ccxt-offline.conf && systemctl daemon-reload'
    I systemctl restart guardbot
else
    echo "d. skipped (STALE=0)"
fi

# --- e. clean stop -------------------------------------------------------------------------------------
# shellcheck disable=SC2016 # expanded by the shell inside the container
OPER='set -a; . /etc/guardbot/guardbot.env; set +a;
  export GUARDBOT_MQTT_USERNAME=operator GUARDBOT_MQTT_PASSWORD="$(cat /root/operator.pw)";'
log "e. a position to restore later, then systemctl stop: STOPPING=1, clean stop, exit 0"
I sh -c "$OPER /opt/guardbot/venv/bin/guardbot order -c /etc/guardbot/guardbot.toml BTC/USDT:USDT buy 0.05 --leverage 10" ||
    bad "e: order (operator) refused or unanswered"
I systemd-analyze log-level debug # shows the STOPPING=1 notification
sleep 1
T0=$(now_ms)
rc=0
I systemctl stop guardbot || rc=$?
T1=$(now_ms)
I systemd-analyze log-level info
J=$(journal_since $((T0 / 1000)))
grep -E 'STOPPING|daemon stopped|Deactivated|Stopped' <<<"$J" | cut -c1-200 || true
# shellcheck disable=SC2016 # expanded by the shell inside the container
st=$(I sh -c 'mosquitto_sub -h 127.0.0.1 -u operator -P "$(cat /root/operator.pw)" -t guardbot/main/status -C 1 -W 3' || true)
echo "retained status: $st"
if [ "$rc" = 0 ] && [ "$(prop Result)" = success ] && [ "$(prop ExecMainStatus)" = 0 ] &&
    grep -q 'STOPPING=1' <<<"$J" && grep -q '"guardbot daemon stopped"' <<<"$J" &&
    ((T1 - T0 < 30000)) && [[ "$st" == *'"state":"offline"'* ]]; then
    ok "e: clean stop in $(secs $((T1 - T0))) s, status=0/SUCCESS, retained status offline"
else bad "e: clean stop: exit $rc, $(state)"; fi

# --- f. restart recovers the state ---------------------------------------------------------------------
log "f. systemctl restart: state recovered from the journal"
I systemctl start guardbot
sleep 3
T0=$(date +%s)
I systemctl restart guardbot
sleep 3
st=$(I sh -c "$OPER /opt/guardbot/venv/bin/guardbot status -c /etc/guardbot/guardbot.toml" || true)
sed -n '/positions/,$p' <<<"$st"
if journal_since "$T0" -o cat | grep -q '"recovered_inputs": [1-9]' &&
    grep -qE 'BTC/USDT:USDT +long +0\.05' <<<"$st"; then
    ok "f: restart recovered the journal, position long 0.05 BTC restored"
else bad "f: restart/recovery"; fi

# --- g. systemd-analyze security / verify ---------------------------------------------------------------
log "g. systemd-analyze security guardbot, systemd-analyze verify"
I systemd-analyze security guardbot --no-pager >"$W/security.txt" 2>&1 || true
tail -1 "$W/security.txt"
score=$(grep -o 'exposure level for guardbot.service: [0-9.]*' "$W/security.txt" | awk '{print $NF}' || true)
verify=$(I systemd-analyze verify /etc/systemd/system/guardbot.service 2>&1) && vrc=0 || vrc=$?
if [ -n "$score" ] && [ "${score%%.*}" -lt 2 ] && [ "$vrc" = 0 ] && [ -z "$verify" ]; then
    ok "g: exposure $score (< 2), systemd-analyze verify clean"
else bad "g: exposure '${score:-?}', verify exit $vrc: $verify"; fi

# --- h. guardbot health as the guardbot user ---------------------------------------------------------------
log "h. guardbot health as user guardbot (the README's systemd-run command)"
rc=0
out=$(I systemd-run --quiet --pipe --wait -p User=guardbot -p EnvironmentFile=/etc/guardbot/guardbot.env \
    -E GUARDBOT_GUARDBOT_DATA_DIR=/var/lib/guardbot /opt/guardbot/venv/bin/guardbot health \
    -c /etc/guardbot/guardbot.toml) || rc=$?
echo "$out (exit $rc)"
if [ "$rc" = 0 ] && [ "$out" = healthy ]; then ok "h: guardbot health -> healthy, exit 0"; else bad "h: health"; fi

log "Result"
[ "$FAILS" -eq 0 ]
