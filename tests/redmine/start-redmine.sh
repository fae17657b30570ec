#!/usr/bin/env bash
# start-redmine.sh [KEY_FILE] -- the real Redmine the test suite runs against.
#
# Installs (if needed), configures and starts a REAL Redmine for automated tests,
# bound to 127.0.0.1:$REDMINE_PORT, and hands out an admin REST API key.
# tests/redmine_fixtures.py runs it (as root) when REDMINE_URL is not set; .ci/run too.
#
#   * Debian bookworm packages: redmine 5.0.4 + redmine-sqlite (dbconfig-common
#     creates, migrates and loads the default English data non-interactively into
#     /var/lib/dbconfig-common/sqlite3/redmine/instances/default/redmine_default)
#     plus `puma` (a 470 kB package) as the app server. No Apache, no Passenger.
#     (~100 MB on disk with --no-install-recommends; ~20 s on a fresh machine.)
#   * Puma runs with ONE thread on purpose: with several threads, concurrent
#     writes hit SQLite3::BusyException ("database is locked") -> HTTP 500.
#   * Enables the REST API, sets login_required=1 (so a bad key is a clean 401;
#     with 0 a bad key silently runs as the anonymous user), creates/keeps the
#     admin API key (or forces $REDMINE_API_KEY).
#   * Takes a baseline snapshot of the database the first time (see
#     reset-redmine.sh) and can restore it on start with REDMINE_RESET=1.
#   * Safe to run repeatedly: a server already started by this script (found by
#     the pidfile in $REDMINE_STATE_DIR and the process title "puma ... [redmine-test]")
#     is reused, never restarted: the script only re-checks the key and prints it (~0.5 s).
#
# start-redmine.sh --status prints "running" (exit 0) when a server this script started is up, else
# "stopped" (exit 3); it changes nothing.
#
# Output: the API key alone on stdout, or written to KEY_FILE (mode 600) if given.
# Everything else goes to stderr. Must run as root (apt, /etc, /var/lib).
#
# Environment (all optional):
#   REDMINE_PORT (or PORT)   port on 127.0.0.1            default 3000
#   REDMINE_API_KEY          force this admin API key      default: keep/generate
#   REDMINE_LOGIN_REQUIRED   1 or 0                        default 1
#   REDMINE_RESET            1 = restore baseline snapshot before starting
#   REDMINE_STATE_DIR        pid/log/key/baseline dir      default /var/lib/redmine-test
#   REDMINE_START_TIMEOUT    seconds to wait for HTTP      default 120
#
# Stop with stop-redmine.sh; reset data with reset-redmine.sh (same directory).
# Traps found on the way (no app server in Redmine's bundle, SQLite "database is
# locked" with several threads, login_required=0 hiding bad keys) are commented below.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PORT="${REDMINE_PORT:-${PORT:-3000}}"
STATE_DIR="${REDMINE_STATE_DIR:-/var/lib/redmine-test}"
START_TIMEOUT="${REDMINE_START_TIMEOUT:-120}"
LOGIN_REQUIRED="${REDMINE_LOGIN_REQUIRED:-1}"
WANT_KEY="${REDMINE_API_KEY:-}"
KEY_FILE="${1:-}"

REDMINE_HOME=/usr/share/redmine            # Debian's Rails.root
DB_YML=/etc/redmine/default/database.yml   # instance "default" (dbconfig-common)
PIDFILE="$STATE_DIR/server.pid"
PORTFILE="$STATE_DIR/server.port"
SERVER_LOG="$STATE_DIR/server.log"         # puma stdout/stderr; Rails log is
                                           # /var/log/redmine/default/production.log
BASELINE="$STATE_DIR/baseline.sqlite3"
KEY_CACHE="$STATE_DIR/api_key"
PUMA_TAG=redmine-test                      # shows in the process title; stop-redmine.sh checks it
BASE_URL="http://127.0.0.1:$PORT"

export RAILS_ENV=production
export REDMINE_INSTANCE=default

log() { echo "[start-redmine] $*" >&2; }
die() { echo "[start-redmine] ERROR: $*" >&2; exit 1; }

# ------------------------------------------------- helpers for our server
# Prints the PID of the server this script started, if it is still alive.
our_pid() {
  local pid
  [ -s "$PIDFILE" ] || return 0
  pid="$(cat "$PIDFILE")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
     && ps -o args= -p "$pid" | grep -q "puma.*\[$PUMA_TAG\]"; then
    echo "$pid"
  else
    rm -f "$PIDFILE" 2>/dev/null || true     # stale (crashed / killed -9 / reboot)
  fi
}
if [ "$KEY_FILE" = --status ]; then
  if [ -n "$(our_pid 2>/dev/null)" ]; then echo running; exit 0; else echo stopped; exit 3; fi
fi

[ "$(id -u)" = 0 ] || die "run as root (needs apt-get and write access to /etc/redmine, /var/lib)"
[[ "$PORT" =~ ^[0-9]+$ ]] || die "bad port: $PORT"
mkdir -p "$STATE_DIR"
chmod 700 "$STATE_DIR"

# ---------------------------------------------------------------- 1. packages
pkg_ok() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }
install_packages() {
  local p missing=()
  for p in redmine redmine-sqlite puma sqlite3 curl; do pkg_ok "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && { log "packages already installed"; return; }
  log "installing: ${missing[*]} (first install ~20 s, ~100 MB; needs the Debian mirror)"
  # --no-install-recommends: skips passenger, ghostscript, fonts (107 instead of 137 pkgs).
  # dbconfig-common runs non-interactively with its defaults: sqlite3 database,
  # migrations and default data (trackers/statuses/roles, English) are created.
  local opts=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  if ! DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1 apt-get install "${opts[@]}" "${missing[@]}" >&2; then
    log "install failed; running apt-get update and retrying"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1 apt-get install "${opts[@]}" "${missing[@]}" >&2
  fi
}
install_packages

[ -r "$DB_YML" ] || die "$DB_YML missing: the redmine package is not configured (try: dpkg-reconfigure redmine)"
DB="$(ruby -ryaml -e 'c = YAML.load_file(ARGV[0])["production"]; abort("adapter is #{c["adapter"]}, expected sqlite3") unless c["adapter"] == "sqlite3"; puts c["database"]' "$DB_YML")" \
  || die "$DB_YML is not a sqlite3 configuration (install redmine-sqlite, not -pgsql/-mysql)"

# ------------------------------------------------------- 2. app-server gem
# Redmine's Gemfile has no app server (Ruby 3.1 has no bundled webrick), so
# `rails server` fails with 'Could not find server ""'. Gemfile.local is Redmine's
# documented hook; bundler re-resolves Gemfile.lock (/var/lib/redmine/Gemfile.lock)
# locally against the Debian-installed gems, no network needed.
GEMFILE_LOCAL="$REDMINE_HOME/Gemfile.local"
if ! grep -qsE "^\s*gem ['\"]puma['\"]" "$GEMFILE_LOCAL"; then
  log "adding gem 'puma' to $GEMFILE_LOCAL"
  echo "gem 'puma' # added by start-redmine.sh (test app server)" >> "$GEMFILE_LOCAL"
fi
(cd "$REDMINE_HOME" && bundle exec ruby -e 'require "puma"' >/dev/null 2>"$STATE_DIR/bundle.err") \
  || { cat "$STATE_DIR/bundle.err" >&2; die "bundler cannot load puma"; }

# ------------------------------------------- 3. sqlite busy timeout (idempotent)
# Without `timeout`, Rails' sqlite3 adapter fails immediately with BusyException
# when a `rails runner` (seed, project setup) writes while the server writes.
if ! ruby -ryaml -e 'exit(YAML.load_file(ARGV[0])["production"].key?("timeout") ? 0 : 1)' "$DB_YML"; then
  log "adding 'timeout: 10000' to $DB_YML"
  printf '  timeout: 10000\n' >> "$DB_YML"
  ruby -ryaml -e 'exit(YAML.load_file(ARGV[0])["production"]["timeout"] == 10000 ? 0 : 1)' "$DB_YML" \
    || die "could not add timeout to $DB_YML (unexpected layout)"
fi

sq() { sqlite3 -batch -noheader -cmd '.timeout 10000' "$DB" "$@"; }

# ------------------------------------------------- 4. database present?
# dbconfig-common normally created it. If someone deleted the file, bring it
# back from our baseline snapshot if we have one, else rebuild it from scratch
# (rake db:migrate + redmine:load_default_data, ~6 s).
if [ ! -s "$DB" ] || [ -z "$(sq "select name from sqlite_master where type='table' and name='settings'")" ]; then
  mkdir -p "$(dirname "$DB")"
  if [ -s "$BASELINE" ]; then
    log "database $DB missing or empty: copying baseline snapshot"
    cp "$BASELINE" "$DB"
  else
    log "database $DB missing or empty: migrating and loading default data"
    rm -f "$DB"
    (cd "$REDMINE_HOME" && bundle exec rake db:migrate >&2 && REDMINE_LANG=en bundle exec rake redmine:load_default_data >&2)
  fi
  chown root:www-data "$DB" 2>/dev/null || true
  chmod 660 "$DB"
fi

# ------------------------------------------------- helpers (our_pid: above)
http_code() { curl -s -o /dev/null -m 10 -w '%{http_code}' "$@" || true; }
key_works() { [ "$(http_code -H "X-Redmine-API-Key: $1" "$BASE_URL/users/current.json")" = 200 ]; }

PID="$(our_pid)"
if [ -n "$PID" ]; then
  RUNNING_PORT="$(cat "$PORTFILE" 2>/dev/null || echo '?')"
  [ "$RUNNING_PORT" = "$PORT" ] || die "our Redmine already runs on port $RUNNING_PORT (pid $PID); run stop-redmine.sh first"
  log "server already running (pid $PID, port $PORT)"
fi

# ------------------------------------------------- 5. optional reset
if [ "${REDMINE_RESET:-0}" = 1 ]; then
  if [ -f "$BASELINE" ]; then
    log "REDMINE_RESET=1: restoring baseline snapshot"
    "$HERE/reset-redmine.sh" restore "$BASELINE" >&2
  else
    log "REDMINE_RESET=1 but no baseline yet; nothing to restore"
  fi
fi

# ------------------------------------------------- 6. seed (only if needed)
# Cheap check straight in SQLite (ms) so we only pay for `rails runner` (~2.5 s)
# when something is missing: REST API flag, login_required, admin API token.
REST="$(sq "select value from settings where name='rest_api_enabled'")"
LOGIN="$(sq "select value from settings where name='login_required'")"
DBKEY="$(sq "select t.value from tokens t join users u on u.id = t.user_id where u.login = 'admin' and t.action = 'api' order by t.id desc limit 1")"
WANT_LOGIN=$([ "$LOGIN_REQUIRED" = 0 ] && echo 0 || echo 1)
if [ "$REST" = 1 ] && [ "${LOGIN:-0}" = "$WANT_LOGIN" ] && [ -n "$DBKEY" ] \
   && { [ -z "$WANT_KEY" ] || [ "$WANT_KEY" = "$DBKEY" ]; }; then
  KEY="$DBKEY"
  log "seed already applied"
else
  log "seeding (REST API, login_required=$WANT_LOGIN, admin API key) via rails runner"
  rm -f "$STATE_DIR/api_key.new"
  (cd "$REDMINE_HOME" && SEED_KEY_FILE="$STATE_DIR/api_key.new" REDMINE_LOGIN_REQUIRED="$WANT_LOGIN" \
     REDMINE_API_KEY="$WANT_KEY" bin/rails runner "$HERE/seed.rb" >&2)
  KEY="$(cat "$STATE_DIR/api_key.new")"
  rm -f "$STATE_DIR/api_key.new"
fi
[ -n "$KEY" ] || die "no API key obtained"
printf '%s\n' "$KEY" > "$KEY_CACHE"; chmod 600 "$KEY_CACHE"

# ------------------------------------------------- 7. baseline snapshot
# Online-consistent copy via SQLite's backup API (safe while the server runs).
if [ ! -f "$BASELINE" ]; then
  log "creating baseline snapshot $BASELINE"
  sq ".backup '$BASELINE'"
fi

# ------------------------------------------------- 8. start puma
if [ -z "$PID" ]; then
  if [ "$(http_code "$BASE_URL/")" != 000 ]; then
    die "something else is already listening on 127.0.0.1:$PORT"
  fi
  log "starting puma on $BASE_URL (log: $SERVER_LOG)"
  # setsid: own session, so the server survives the calling shell and is not
  # hit by its Ctrl-C/SIGHUP. `bundle exec` execs, so normally $! is puma's own
  # PID; `-w` keeps $! alive as long as puma in the rare case setsid must fork.
  # Puma writes $PIDFILE itself (early in boot) and deletes it on a clean stop.
  # -t 1:1 = one thread: SQLite + several Rails threads => "database is locked".
  echo "=== $(date -u +%FT%TZ) start port $PORT" >> "$SERVER_LOG"
  rm -f "$PIDFILE"
  (cd "$REDMINE_HOME" && exec setsid -w bundle exec puma -e production -t 1:1 \
      -b "tcp://127.0.0.1:$PORT" --tag "$PUMA_TAG" --pidfile "$PIDFILE" config.ru \
      >> "$SERVER_LOG" 2>&1 < /dev/null) &
  PID=$!
  echo "$PORT" > "$PORTFILE"

  # /login answers 200 whether or not login_required is on ('/' redirects then).
  deadline=$(( $(date +%s) + START_TIMEOUT ))
  until [ "$(http_code "$BASE_URL/login")" = 200 ]; do
    if ! kill -0 "$PID" 2>/dev/null; then
      tail -n 40 "$SERVER_LOG" >&2
      rm -f "$PIDFILE"
      die "puma exited during startup (see $SERVER_LOG)"
    fi
    [ "$(date +%s)" -lt "$deadline" ] || { tail -n 40 "$SERVER_LOG" >&2; die "not ready after ${START_TIMEOUT}s (pid $PID still running; stop-redmine.sh)"; }
    sleep 0.2
  done
  [ -s "$PIDFILE" ] || echo "$PID" > "$PIDFILE"
  PID="$(our_pid)"
  [ -n "$PID" ] || die "server answers but its pidfile $PIDFILE is not usable"
  log "ready (pid $PID)"
fi

# ------------------------------------------------- 9. verify + hand out key
key_works "$KEY" || die "server is up but GET /users/current.json with the admin key is not 200"
log "Redmine $BASE_URL ready; admin API key verified"
if [ -n "$KEY_FILE" ]; then
  mkdir -p "$(dirname "$KEY_FILE")"
  (umask 077; printf '%s\n' "$KEY" > "$KEY_FILE")
  log "API key written to $KEY_FILE"
else
  printf '%s\n' "$KEY"
fi
