# haproxy-config.sh — sourced by the bench scripts: HAProxy as they run it against the echo
# upstream (HTTP/2 on both sides, one thread).
#
#   haproxy_config LISTEN_PORT UPSTREAM_PORT [BACKEND_LINE]   (e.g. "http-reuse always")
haproxy_config() {
  cat <<CFG
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:$1 proto h2
  default_backend be
backend be
  ${3:-}
  server s1 127.0.0.1:$2 proto h2
CFG
}
