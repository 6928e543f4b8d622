#!/bin/bash
# The container's command: gunicorn on a unix socket behind nginx, which listens on RNNLM_BIND
# (HOST:PORT or unix:PATH, as the HEALTHCHECK asks; service/deploy/nginx.conf says why). If either exits,
# the other is stopped and the container exits with that status; SIGTERM (docker stop) is passed
# to both, gunicorn finishing its requests.
set -u
cd "$(dirname "$0")/../.."
printf 'listen %s backlog=4096;\n' "${RNNLM_BIND:?RNNLM_BIND must name the address to serve on}" \
    > /tmp/rnnlm-nginx-listen.conf
RNNLM_BIND=unix:/tmp/rnnlm-gunicorn.sock gunicorn -c service/gunicorn.conf.py service.wsgi:app &
gunicorn_pid=$!
nginx -e stderr -c "$PWD/service/deploy/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
trap 'kill -TERM "$gunicorn_pid" "$nginx_pid" 2>/dev/null' TERM INT
wait -n
status=$?
kill -TERM "$gunicorn_pid" "$nginx_pid" 2>/dev/null
wait
exit "$status"
