#!/usr/bin/env bash
# Build the metarl image for real and run a two-iteration training inside it.
#
# Needs root and nothing else: no running Docker, no registry access. The script
#   1. installs docker.io and debootstrap with apt if they are missing,
#   2. starts its own dockerd (own data root, exec root and socket in a temp dir),
#   3. makes a local base image: debootstrap --variant=minbase bookworm + python3,
#      `docker import`ed, plus the host's CA certificates,
#   4. builds docker/Dockerfile on that base with --network host; the torch wheel
#      comes from a local wheel folder served on 127.0.0.1 when there is one,
#   5. runs `python launchers/train.py` for two iterations with runs/ bind-mounted (and one tiny
#      MuJoCo iteration); or, with METARL_SMOKE_COMPOSE=1, brings up docker/compose.yaml instead:
#      a Ray head, two Ray workers and the trainer, which trains two iterations with
#      sampler.backend=ray, and checks that the rollout actors ran on the worker containers,
#   6. checks config.yaml, checkpoints/latest.pt and a TensorBoard event file on the host,
#   7. stops its dockerd and helper server by process id and removes the temp dir.
# The base tarball and the engine's data root (images, build cache) are kept in a cache
# folder, so a rerun skips debootstrap and reuses unchanged image layers.
#
# Usage: sudo docker/smoke.sh
#        sudo METARL_SMOKE_COMPOSE=1 docker/smoke.sh      # the compose cluster
# Environment (all optional):
#   METARL_SMOKE_CACHE       cache folder (default ~/.cache/metarl-docker-smoke)
#   METARL_SMOKE_FRESH=1     empty the cache first: a from-scratch run
#   METARL_SMOKE_WHEELS      folder with torch-<version>*.whl (default: $PIP_FIND_LINKS or /opt/wheels);
#                            set to "none" to use the Dockerfile's public torch index instead
#   METARL_SMOKE_WHEELS_PORT port of the local wheel server (default 38765)
#   METARL_SMOKE_MIRROR      Debian mirror for debootstrap (default http://deb.debian.org/debian)
#   METARL_SMOKE_DOCKERFILE  Dockerfile to build (default docker/Dockerfile)
#   METARL_SMOKE_KEEP=1      keep the temp dir (engine data, run dir) for inspection
#   METARL_SMOKE_COMPOSE=1   run the compose cluster (steps 5-6) instead of the single containers
#   METARL_SMOKE_COMPOSE_CMD the compose command (default: `docker compose` when the v2 plugin is
#                            there, else `docker-compose`, installed with apt if missing: Debian 12
#                            has v1, 1.29.2); e.g. "/opt/bin/docker-compose" for a v2 binary
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${METARL_SMOKE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/metarl-docker-smoke}
MIRROR=${METARL_SMOKE_MIRROR:-http://deb.debian.org/debian}
DOCKERFILE=${METARL_SMOKE_DOCKERFILE:-docker/Dockerfile}
TORCH_VERSION=2.13.0
SUITE=bookworm
BASE_TAR=$CACHE/$SUITE-minbase-python3.tar
BASE_TAG=metarl-smoke-base:$SUITE
IMAGE_TAG=metarl:smoke$(basename "$DOCKERFILE" | sed "s/^Dockerfile//")   # metarl:smoke, metarl:smoke.cuda
CONTAINER_HOME=/home/metarl/metarl
COMPOSE_MODE=${METARL_SMOKE_COMPOSE:-0}
COMPOSE_PROJECT=metarl-smoke

log() { printf '[smoke %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root: dockerd and debootstrap need it"

if [[ ${METARL_SMOKE_FRESH:-0} == 1 && -d $CACHE ]]; then
    log "METARL_SMOKE_FRESH=1: removing $CACHE"
    rm -rf "$CACHE"
fi
mkdir -p "$CACHE"
ENGINE_DATA=$CACHE/engine
WORK=$(mktemp -d /tmp/metarl-smoke.XXXXXX)
SOCK=$WORK/docker.sock
DOCKERD_PID=""
HTTP_PID=""
COMPOSE_CMD=()
COMPOSE_UP=0

cleanup() {
    local rc=$?
    set +e
    if ((COMPOSE_UP)); then
        log "compose down"
        compose down -v --timeout 10 >>"$WORK/compose-down.log" 2>&1
    fi
    if [[ -n $HTTP_PID ]] && kill -0 "$HTTP_PID" 2>/dev/null; then
        kill "$HTTP_PID"
        wait "$HTTP_PID" 2>/dev/null
    fi
    if [[ -n $DOCKERD_PID ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        log "stopping dockerd (pid $DOCKERD_PID)"
        kill -TERM "$DOCKERD_PID"
        for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$DOCKERD_PID" 2>/dev/null; then
            log "dockerd did not stop in 30 s, killing it"
            kill -KILL "$DOCKERD_PID"
        fi
        wait "$DOCKERD_PID" 2>/dev/null
    fi
    log "dockerd stopped"
    # Anything the engine left mounted under our temp dir (normally nothing).
    findmnt -rn -o TARGET | grep -F -e "$WORK/" -e "$ENGINE_DATA/" | sort -r | while read -r mnt; do umount -l "$mnt"; done
    if [[ $rc -ne 0 ]]; then
        rm -rf "$CACHE/last-failure" && mkdir -p "$CACHE/last-failure"
        cp "$WORK"/*.log "$CACHE/last-failure/" 2>/dev/null
    fi
    if [[ ${METARL_SMOKE_KEEP:-0} == 1 ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
        log "removed $WORK"
    fi
    if [[ $rc -eq 0 ]]; then log "PASS in $SECONDS s"; else log "FAIL (exit $rc) after $SECONDS s; logs in $CACHE/last-failure"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. tools ------------------------------------------------------------------------------
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [[ $COMPOSE_MODE == 1 ]]; then
    if [[ -n ${METARL_SMOKE_COMPOSE_CMD:-} ]]; then
        read -r -a COMPOSE_CMD <<<"$METARL_SMOKE_COMPOSE_CMD"
    elif command docker compose version >/dev/null 2>&1; then
        COMPOSE_CMD=(docker compose)
    else
        COMPOSE_CMD=(docker-compose)
        command -v docker-compose >/dev/null || missing+=(docker-compose)
    fi
fi
if ((${#missing[@]})); then
    log "installing ${missing[*]} with apt"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v docker >/dev/null || die "no docker client after installing docker.io"
docker() { command docker -H "unix://$SOCK" "$@"; }
# Our engine and project name, and the smoke overrides (written in step 5) on top of
# docker/compose.yaml; no call runs longer than COMPOSE_TIMEOUT seconds.
compose() {
    DOCKER_HOST="unix://$SOCK" timeout "${COMPOSE_TIMEOUT:-120}" "${COMPOSE_CMD[@]}" -p "$COMPOSE_PROJECT" \
        -f "$REPO/docker/compose.yaml" -f "$WORK/compose.smoke.yaml" "$@"
}
# The classic builder: no buildx plugin needed, and it honours --network host.
export DOCKER_BUILDKIT=0

# --- 2. engine -----------------------------------------------------------------------------
log "starting dockerd (data root $ENGINE_DATA, exec root and socket in $WORK)"
# No bridge and no iptables rules: builds and containers use the host network or none,
# so the host's network configuration is left alone.
dockerd --data-root "$ENGINE_DATA" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
    -H "unix://$SOCK" --bridge none --iptables=false --ip-masq=false \
    >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 120); do
    docker version >/dev/null 2>&1 && break
    kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -20 "$WORK/dockerd.log" >&2; die "dockerd exited"; }
    sleep 0.5
done
docker version >/dev/null 2>&1 || { tail -20 "$WORK/dockerd.log" >&2; die "dockerd did not answer in 60 s"; }
log "dockerd up (pid $DOCKERD_PID, storage driver $(docker info --format '{{.Driver}}'))"

# --- 3. local base image ---------------------------------------------------------------------
if [[ ! -s $BASE_TAR ]]; then
    log "debootstrap $SUITE minbase with python3 into $WORK/rootfs (cached as $BASE_TAR)"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        "$SUITE" "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
    rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
    tar -C "$WORK/rootfs" --numeric-owner -cf "$BASE_TAR.tmp" .
    mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf "$WORK/rootfs"
else
    log "using cached base $BASE_TAR"
fi
if ! docker image inspect "$BASE_TAG-bare" >/dev/null 2>&1; then
    docker import --change 'CMD ["/bin/bash"]' "$BASE_TAR" "$BASE_TAG-bare" >/dev/null
fi

# The host may reach PyPI through a TLS-inspecting proxy: give the base the host's extra CA
# certificates (not cached, they belong to this machine) and point pip at the system bundle.
mkdir -p "$WORK/base-ctx/certs"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$WORK/base-ctx/certs/"
fi
cat >"$WORK/base-ctx/Dockerfile" <<EOF
FROM $BASE_TAG-bare
COPY certs/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
EOF
docker build -q -t "$BASE_TAG" "$WORK/base-ctx" >/dev/null
log "base image: $(docker run --rm "$BASE_TAG" python3 --version)"

# --- 4. the image --------------------------------------------------------------------------
build_args=(--build-arg "BASE_IMAGE=$BASE_TAG")
WHEELS=${METARL_SMOKE_WHEELS:-${PIP_FIND_LINKS:-/opt/wheels}}
if [[ $WHEELS != none ]] && compgen -G "$WHEELS/torch-$TORCH_VERSION*.whl" >/dev/null; then
    # A fixed port: the URL is part of the build cache key of every RUN after it.
    port=${METARL_SMOKE_WHEELS_PORT:-38765}
    # (SO_REUSEADDR as http.server: a port left in TIME_WAIT by the previous run is free.)
    if ! python3 -c "import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $port))" 2>/dev/null; then
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        log "port ${METARL_SMOKE_WHEELS_PORT:-38765} is taken; serving on $port (no build cache reuse)"
    fi
    python3 -m http.server --bind 127.0.0.1 --directory "$WHEELS" "$port" >"$WORK/http.log" 2>&1 &
    HTTP_PID=$!
    for _ in $(seq 40); do
        python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/')" 2>/dev/null && break
        sleep 0.25
    done
    log "serving torch wheels from $WHEELS on 127.0.0.1:$port (pid $HTTP_PID)"
    # The local CPU wheel (torch==X+cpu) outranks PyPI's CUDA build of the same version.
    build_args+=(--build-arg "TORCH_INDEX_URL=https://pypi.org/simple"
        --build-arg "PIP_EXTRA_ARGS=--find-links http://127.0.0.1:$port/")
else
    log "no local torch $TORCH_VERSION wheel; using the Dockerfile's default torch index"
fi
log "building $IMAGE_TAG from $DOCKERFILE"
start=$SECONDS
docker build --network host -f "$REPO/$DOCKERFILE" "${build_args[@]}" -t "$IMAGE_TAG" "$REPO" \
    >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log" >&2; die "docker build failed"; }
log "built in $((SECONDS - start)) s: $(grep -m1 '^torch ' "$WORK/build.log" || echo 'every layer cached')"
size_mb=$(($(docker image inspect --format '{{.Size}}' "$IMAGE_TAG") / 1000000))
log "$IMAGE_TAG: $size_mb MB; $(docker run --rm --network none "$IMAGE_TAG" python -c \
    'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPU", torch.cuda.is_available())')"

# --- 5. a two-iteration training: single containers, or the compose cluster -------------------
uid=$(docker run --rm "$IMAGE_TAG" id -u)
[[ $uid != 0 ]] || die "the image runs as root"
user_ids=$(docker run --rm "$IMAGE_TAG" id -u):$(docker run --rm "$IMAGE_TAG" id -g)
mkdir -p "$WORK/runs"
chown "$user_ids" "$WORK/runs"
if [[ $COMPOSE_MODE == 1 ]]; then
    # compose.yaml names its image metarl:ray; the override points every service at this build,
    # mounts the temp run folder, and makes the compose network internal: the containers reach
    # each other and nothing else.
    cat >"$WORK/compose.smoke.yaml" <<EOF
services:
  ray-head: {image: "$IMAGE_TAG"}
  ray-worker: {image: "$IMAGE_TAG"}
  trainer:
    image: "$IMAGE_TAG"
    volumes: ["$WORK/runs:$CONTAINER_HOME/runs"]
networks:
  ray: {internal: true}
EOF
    log "compose command: ${COMPOSE_CMD[*]} ($(command "${COMPOSE_CMD[@]}" version 2>/dev/null | head -1))"
    train_args=(--config launchers/configs/2d-navigation.yaml --set num_iterations=2 --set meta_batch_size=4
        --set episodes_per_task=2 --output runs/compose-smoke)
    export METARL_TRAIN_ARGS="${train_args[*]}"   # one line: compose pastes it into a `bash -c`
    export METARL_NUM_WORKERS=4 RAY_HEAD_CPUS=1 RAY_WORKER_CPUS=2
    log "compose up: ray-head, 2 x ray-worker, trainer (2 iterations, 4 Ray rollout actors)"
    start=$SECONDS
    COMPOSE_UP=1
    rc=0
    COMPOSE_TIMEOUT=900 compose up --no-build --no-color --scale ray-worker=2 \
        --abort-on-container-exit --exit-code-from trainer >"$WORK/compose.log" 2>&1 || rc=$?
    sed -i 's/\x1b\[[0-9;]*[A-Za-z]//g' "$WORK/compose.log"   # terminal codes (colours, erase line)
    grep -E 'Local node IP|ray sampler:|^trainer.*\| *(run directory|iter |done:)|exited with code' \
        "$WORK/compose.log" >&2 || true
    ((rc == 0)) || { tail -60 "$WORK/compose.log" >&2; die "compose up exited with $rc"; }
    log "cluster up, trained and stopped in $((SECONDS - start)) s"
    grep -q 'done: 2 iterations' "$WORK/compose.log" || die "the trainer did not finish 2 iterations"

    # Did the trainer sample on the worker containers? Each node's `ray start` prints its IP; the
    # trainer prints where its rollout actors run: "ray sampler: 4 actors on 3 nodes: IP (n), ...".
    node_ips() {
        grep -E "^$1[-_][0-9]+ +\| .*Local node IP: " "$WORK/compose.log" | grep -oE '[0-9]+(\.[0-9]+){3}$' | sort -u
    }
    mapfile -t worker_ips < <(node_ips ray-worker)
    mapfile -t trainer_ip < <(node_ips trainer)
    placement=$(grep -m1 -o 'ray sampler: .*' "$WORK/compose.log") || die "the trainer printed no actor placement"
    ((${#worker_ips[@]} == 2)) || die "expected 2 worker node IPs, got: ${worker_ips[*]}"
    ((${#trainer_ip[@]} == 1)) || die "expected 1 trainer node IP, got: ${trainer_ip[*]}"
    for ip in "${worker_ips[@]}"; do
        [[ $placement == *" $ip ("* ]] || die "no rollout actor on worker $ip: $placement"
    done
    [[ $placement != *" ${trainer_ip[0]} ("* ]] || die "a rollout actor ran on the trainer's node: $placement"
    [[ $placement == *"driver on ${trainer_ip[0]}" ]] || die "the driver is not on the trainer: $placement"
    log "rollout actors on both workers (${worker_ips[*]}), driver on the trainer (${trainer_ip[0]})"
    compose down -v --timeout 10 >"$WORK/compose-down.log" 2>&1 || die "compose down failed"
    COMPOSE_UP=0
    [[ -z $(docker ps -aq) ]] || die "containers left after compose down: $(docker ps -a --format '{{.Names}}')"
    run_dir=$WORK/runs/compose-smoke
else
    log "training 2 iterations in the container (uid $uid, network none)"
    start=$SECONDS
    if ! docker run --rm --init --network none -v "$WORK/runs:$CONTAINER_HOME/runs" "$IMAGE_TAG" \
        python launchers/train.py --set num_iterations=2 --set meta_batch_size=2 --set episodes_per_task=2 \
        --output runs/smoke >"$WORK/train.log" 2>&1; then
        tail -40 "$WORK/train.log" >&2
        die "training in the container failed"
    fi
    tail -5 "$WORK/train.log" >&2
    log "trained in $((SECONDS - start)) s"

    # MuJoCo in the slim image (no GL libraries): one tiny HalfCheetah iteration.
    log "one tiny MuJoCo (HalfCheetah) iteration in the container"
    if ! docker run --rm --init --network none -v "$WORK/runs:$CONTAINER_HOME/runs" "$IMAGE_TAG" \
        python launchers/train.py --config launchers/configs/halfcheetah-vel.yaml --quiet \
        --set num_iterations=1 --set meta_batch_size=2 --set episodes_per_task=2 --set horizon=20 \
        --output runs/smoke-mujoco >"$WORK/train-mujoco.log" 2>&1; then
        tail -40 "$WORK/train-mujoco.log" >&2
        die "MuJoCo training in the container failed"
    fi
    [[ -s $WORK/runs/smoke-mujoco/checkpoints/latest.pt ]] || die "no MuJoCo checkpoint"
    run_dir=$WORK/runs/smoke
fi

# --- 6. what the host sees -------------------------------------------------------------------
[[ -s $run_dir/config.yaml ]] || die "no $run_dir/config.yaml"
[[ -s $run_dir/checkpoints/latest.pt ]] || die "no $run_dir/checkpoints/latest.pt"
events=$(find "$run_dir" -name 'events.out.tfevents.*' -size +0 | head -1)
[[ -n $events ]] || die "no TensorBoard event file under $run_dir"
log "run directory on the host:"
(cd "$run_dir" && find . -type f | sort | sed 's/^/    /' >&2)

# Drop the superseded layers of earlier reruns; the current image and its cache stay.
docker image prune -f >/dev/null
