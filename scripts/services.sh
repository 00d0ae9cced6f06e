#!/usr/bin/env bash
# Make sure the servers the test suite talks to are up: PostgreSQL on
# 127.0.0.1:5432 (database "test") and Redis on 127.0.0.1:6379. Each is started
# if it is installed but stopped; if it still cannot be reached, this fails
# (the tests would fail anyway: an unreachable server is never a skip).
set -euo pipefail

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
postgres_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }

if ! redis_up; then
    if command -v redis-server >/dev/null; then
        echo "services: starting Redis on 127.0.0.1:6379"
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
        for _ in $(seq 50); do redis_up && break; sleep 0.1; done
    fi
    redis_up || { echo "services: Redis is not reachable on 127.0.0.1:6379" >&2; exit 1; }
fi

if ! postgres_up; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        version=$(ls /etc/postgresql | sort -V | tail -n 1)
        echo "services: starting PostgreSQL $version"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
        for _ in $(seq 100); do postgres_up && break; sleep 0.1; done
    fi
    postgres_up || { echo "services: PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }
fi

# The database the tests use; creating it is harmless if it exists.
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null
fi
echo "services: Redis and PostgreSQL are up"
