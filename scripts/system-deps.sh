#!/usr/bin/env bash
# Debian packages the test suite needs: Chromium for the dashboard's browser tests,
# npm (only where Node.js is missing) for the dashboard's hls.js, a PostgreSQL server
# on 127.0.0.1:5432 (only where none answers there) for the tests that run the State
# on PostgreSQL, and a Redis server on 127.0.0.1:6379 (only where none answers there)
# for the tests that run streams on Redis. The runtime itself needs none: ffmpeg comes
# from the imageio-ffmpeg wheel, Ray and moto from PyPI. Safe to run again: it does
# only what is missing, and never touches a PostgreSQL or Redis server that already
# answers.
set -euo pipefail

pg_answers() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_answers() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

PACKAGES=()
command -v chromium >/dev/null || PACKAGES+=(chromium)
command -v npm >/dev/null || PACKAGES+=(npm)
NEED_PG=
pg_answers || NEED_PG=1
NEED_REDIS=
redis_answers || NEED_REDIS=1
if [ ${#PACKAGES[@]} -eq 0 ] && [ -z "$NEED_PG" ] && [ -z "$NEED_REDIS" ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
    [ ${#PACKAGES[@]} -eq 0 ] || echo "run as root to install: ${PACKAGES[*]}"
    [ -z "$NEED_PG" ] || echo "run as root to install and start PostgreSQL (none answers on 127.0.0.1:5432)"
    [ -z "$NEED_REDIS" ] || echo "run as root to install and start Redis (none answers on 127.0.0.1:6379)"
    exit 0
fi

# A cluster created by this run is ours to configure; one that was already there
# (installed by someone else, only stopped) is started as it is.
FRESH_PG=
if [ -n "$NEED_PG" ]; then
    if ! command -v pg_lsclusters >/dev/null || [ -z "$(pg_lsclusters --no-header)" ]; then
        FRESH_PG=1
        PACKAGES+=(postgresql)
    fi
fi
if [ -n "$NEED_REDIS" ] && ! command -v redis-server >/dev/null; then
    PACKAGES+=(redis-server)
fi
if [ ${#PACKAGES[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
fi

# Redis: Debian's package starts it where systemd runs; elsewhere (a container) its
# init script does, or, failing that, redis-server itself with Debian's configuration
# (loopback only, port 6379).
if [ -n "$NEED_REDIS" ] && ! redis_answers; then
    service redis-server start >/dev/null 2>&1 || true
    for _ in $(seq 5); do redis_answers && break; sleep 1; done
    if ! redis_answers; then
        CONF=()
        [ ! -f /etc/redis/redis.conf ] || CONF=(/etc/redis/redis.conf)
        redis-server "${CONF[@]}" --bind 127.0.0.1 --port 6379 --daemonize yes
    fi
    for _ in $(seq 30); do
        if redis_answers; then
            echo "Redis answers on 127.0.0.1:6379"
            break
        fi
        sleep 1
    done
    if ! redis_answers; then
        echo "Redis did not answer on 127.0.0.1:6379 within 30 s" >&2
        exit 1
    fi
fi
if [ -z "$NEED_PG" ]; then exit 0; fi

# The cluster on port 5432 (Debian's package creates `<version> main` there).
read -r VERSION CLUSTER < <(pg_lsclusters --no-header | awk '$3 == 5432 { print $1, $2; exit }') || true
if [ -z "${VERSION:-}" ]; then
    echo "no PostgreSQL cluster on port 5432 (pg_lsclusters); create one with pg_createcluster" >&2
    exit 1
fi
if [ -n "$FRESH_PG" ]; then  # loopback connections as any user (postgres), no password
    sed -i -E 's#^(host\s+\S+\s+\S+\s+(127\.0\.0\.1/32|::1/128)\s+)\S+#\1trust#' \
        "/etc/postgresql/$VERSION/$CLUSTER/pg_hba.conf"
fi
if pg_ctlcluster "$VERSION" "$CLUSTER" status >/dev/null; then
    pg_ctlcluster "$VERSION" "$CLUSTER" reload
else
    pg_ctlcluster "$VERSION" "$CLUSTER" start
fi
for _ in $(seq 30); do
    if pg_isready -q -h 127.0.0.1 -p 5432; then
        echo "PostgreSQL $VERSION ($CLUSTER) answers on 127.0.0.1:5432"
        exit 0
    fi
    sleep 1
done
echo "PostgreSQL $VERSION ($CLUSTER) did not answer on 127.0.0.1:5432 within 30 s" >&2
exit 1
