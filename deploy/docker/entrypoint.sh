#!/bin/sh
# Entrypoint of the xmatch image: sets the container up like the systemd units do, then
# execs `xmatch ARGS…`. tini (PID 1) forwards SIGTERM and SIGHUP to xmatch, so the
# daemon's grace period and pipeline reload work as on a host.
set -eu

# Everything xmatch writes (store, zones, reports) is for the xmatch user alone, as with
# UMask=0077 in the systemd units; the key and the secure zone are 0600/0700 regardless.
umask 077

ws="${XMATCH_WORKSPACE:-/var/lib/xmatch}"
export XMATCH_WORKSPACE="$ws"

# XMATCH_STORE_PASSWORD_FILE (this image's, not xmatch's): a file holding the PostgreSQL
# password, e.g. a compose secret. It is passed on as PGPASSWORD, which xmatch's PostgreSQL
# client uses when XMATCH_STORE_URL carries no password. So the password is in no URL,
# compose file or `docker inspect` output, only in the secret and xmatch's own environment.
if [ -n "${XMATCH_STORE_PASSWORD_FILE:-}" ]; then
    if [ ! -r "$XMATCH_STORE_PASSWORD_FILE" ]; then
        echo "xmatch-entrypoint: XMATCH_STORE_PASSWORD_FILE=$XMATCH_STORE_PASSWORD_FILE is missing or not readable by uid $(id -u)" >&2
        exit 2
    fi
    # $(…) drops the trailing newline an editor leaves in the file.
    PGPASSWORD="$(cat "$XMATCH_STORE_PASSWORD_FILE")"
    export PGPASSWORD
    unset XMATCH_STORE_PASSWORD_FILE
fi

# First start on an empty volume: create the workspace (key, store, zones, the shipped
# pipelines). Only before `serve` and `run`: `init` itself, `tokenize` and `--help` need
# none. `init` never overwrites an existing key or store, so a volume into which an
# existing key/xmatch.key and key/xmatch.key.id were copied keeps that key.
case "${1:-}" in
serve | run)
    if [ ! -f "$ws/xmatch.toml" ]; then
        echo "xmatch-entrypoint: $ws has no xmatch.toml: creating the workspace (xmatch init)" >&2
        xmatch init "$ws"
        echo "xmatch-entrypoint: back up $ws/key/xmatch.key and xmatch.key.id now, offline:" \
            "without them no later token matches the ones in this store" >&2
    fi
    ;;
esac

exec xmatch "$@"
