#!/usr/bin/env bash
# reset-redmine.sh -- snapshot / restore the test Redmine's SQLite database.
#
#   reset-redmine.sh                    restore the baseline taken by start-redmine.sh
#   reset-redmine.sh restore FILE       restore FILE into the live database
#   reset-redmine.sh save FILE          snapshot the live database to FILE
#
# Works while the server is running (no restart needed): both directions use
# SQLite's online backup API through the sqlite3 CLI (.backup / .restore), which
# takes the proper locks, so the running Rails process just sees the new
# content on its next query. A restore of a ~1-2 MB database takes ~10-20 ms.
#
# Typical use by the project's test suite:
#   start-redmine.sh > key; run its own rails-runner setup (custom fields, ...);
#   reset-redmine.sh save /var/lib/redmine-test/project.sqlite3   (once)
#   before each test/module: reset-redmine.sh restore /var/lib/redmine-test/project.sqlite3
#
# Caveats: ids (issues, journals, ...) restart from the snapshot's values, so
# they are reused after a reset. Attachments on disk (/var/lib/redmine/default/files)
# are not reset. Setting values are cached per process; we bump
# settings.updated_on after a restore so the server reloads them.
#
# Environment: REDMINE_STATE_DIR (default /var/lib/redmine-test), REDMINE_RAILS_ROOT
# (default /usr/share/redmine, Debian's; its config/database.yml names the database).
set -euo pipefail

STATE_DIR="${REDMINE_STATE_DIR:-/var/lib/redmine-test}"
RAILS_ROOT="${REDMINE_RAILS_ROOT:-/usr/share/redmine}"   # Debian's; config/database.yml -> /etc/redmine/default/
MODE="${1:-restore}"
FILE="${2:-$STATE_DIR/baseline.sqlite3}"

log() { echo "[reset-redmine] $*" >&2; }
die() { echo "[reset-redmine] ERROR: $*" >&2; exit 1; }

DB_YML="$RAILS_ROOT/config/database.yml"
[ -r "$DB_YML" ] || die "$DB_YML not readable (set REDMINE_RAILS_ROOT to the Redmine's Rails root)"
DB="$(ruby -ryaml -e 'c = YAML.load_file(ARGV[0])["production"]; abort("adapter is #{c["adapter"]}, snapshots need sqlite3") unless c["adapter"] == "sqlite3"; puts c["database"]' "$DB_YML")" \
  || die "$DB_YML: not a SQLite Redmine"
case "$DB" in /*) ;; *) DB="$RAILS_ROOT/$DB" ;; esac   # relative to Rails.root in a source install
[ -f "$DB" ] || die "database $DB not found (run start-redmine.sh first)"
sq() { sqlite3 -batch -cmd '.timeout 10000' "$@"; }

case "$MODE" in
  save)
    mkdir -p "$(dirname "$FILE")"
    rm -f "$FILE.tmp"
    sq "$DB" ".backup '$FILE.tmp'"
    mv -f "$FILE.tmp" "$FILE"
    log "saved $DB -> $FILE"
    ;;
  restore)
    [ -f "$FILE" ] || die "snapshot $FILE not found"
    sq "$DB" ".restore '$FILE'"
    # Make every running Redmine process drop its cached Setting values
    # (Setting.check_cache reloads when max(settings.updated_on) moved forward).
    sq "$DB" "UPDATE settings SET updated_on = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = (SELECT max(id) FROM settings)"
    log "restored $FILE -> $DB"
    ;;
  *)
    die "usage: $0 [save FILE | restore [FILE]]"
    ;;
esac
