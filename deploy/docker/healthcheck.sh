#!/bin/bash
# Docker HEALTHCHECK of the xmatch image: `GET /healthz` must answer 200.
# The slim image has neither curl nor wget; rather than add curl and its libraries for one
# request on loopback, this uses bash's /dev/tcp (bash is part of every Debian image).
# XMATCH_HEALTH_ADDR (host:port, default 127.0.0.1:9464) follows a changed --listen port.
set -u
addr="${XMATCH_HEALTH_ADDR:-127.0.0.1:9464}"
host="${addr%:*}"
port="${addr##*:}"

# A refused connection fails at once; a daemon that accepts but never answers is caught by
# read's timeout (and by HEALTHCHECK --timeout).
if ! { exec 3<>"/dev/tcp/$host/$port"; } 2>/dev/null; then
    echo "healthz: no listener on $addr"
    exit 1
fi
printf 'GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$addr" >&3
if ! IFS= read -r -t 4 status <&3; then
    echo "healthz: no answer from $addr"
    exit 1
fi
status="${status%$'\r'}"
case "$status" in
"HTTP/1."[01]" 200"*)
    echo "healthz: $status"
    exit 0
    ;;
*)
    echo "healthz: $status"
    exit 1
    ;;
esac
