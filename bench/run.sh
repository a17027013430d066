#!/usr/bin/env bash
# Load benchmark of hit-counter against a do-nothing Poem server, on loopback only.
#
#   bench/run.sh [SECONDS]      # SECONDS per wrk run, default 10
#
# Builds the release binary and examples/baseline.rs, serves a fresh SQLite file from a
# temp dir, drives it with wrk (2 threads, 64 and 256 connections), then preloads
# 1,000,000 visitors and 10,000,000 hits and reruns the returning-visitor and polling
# scenarios. Prints one Markdown table and writes it to bench/results.md.
#
# Needs: cargo, wrk, curl, sqlite3 (Debian: apt-get install wrk curl sqlite3).
set -euo pipefail

DURATION="${1:-10}"
THREADS=2
CONNECTIONS=(64 256)
COOKIES=1000
QR_URL='https%3A%2F%2Fexample.org%2F'

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
LUA="$BENCH/wrk.lua"
SERVER_BIN="$ROOT/target/release/hit-counter"
BASELINE_BIN="$ROOT/target/release/examples/baseline"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hit-counter-bench.XXXXXX")"
DB="$WORK/hits.db"
SERVER_PID=""
BASELINE_PID=""

# Figures per row, keyed by row id; ROWS keeps the order rows were measured in.
declare -A LABEL CONNS RPS P50 P99 NON2XX SOCKERR RSS NOTE
ROWS=()

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Kill whatever we started, also when a step fails or the user presses Ctrl-C.
cleanup() {
    local pid
    for pid in "$SERVER_PID" "$BASELINE_PID"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check_tools() {
    local tool missing=0
    for tool in cargo wrk curl sqlite3; do
        command -v "$tool" >/dev/null || { log "missing: $tool"; missing=1; }
    done
    if ((missing)); then
        die "install the missing tools first, e.g. 'sudo apt-get install wrk curl sqlite3' (Debian/Ubuntu) and Rust from https://rustup.rs"
    fi
    [[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "SECONDS must be a positive integer, not '$DURATION'"
}

build() {
    log "building release binary and baseline"
    (cd "$ROOT" && cargo build --release --quiet --bin hit-counter --example baseline)
}

# A loopback port nobody listens on. Another process could take it before we bind;
# start_* then fails loudly rather than measuring the wrong server.
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

# Polls URL until it answers 2xx, or gives up after ~10 s or when PID has died.
wait_ready() {
    local url="$1" pid="$2" i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || die "server (pid $pid) exited at start; see log above"
        if curl -fsS -o /dev/null "$url" 2>/dev/null; then
            return
        fi
        sleep 0.1
    done
    die "$url did not answer within 10 s"
}

start_server() {
    SERVER_PORT="$(free_port)"
    SERVER_URL="http://127.0.0.1:$SERVER_PORT"
    # warn: the benchmark measures serving, not writing one log line per request.
    RUST_LOG=warn "$SERVER_BIN" --host 127.0.0.1 --port "$SERVER_PORT" --sqlite-path "$DB" \
        >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    wait_ready "$SERVER_URL/status" "$SERVER_PID"
    log "hit-counter pid $SERVER_PID on $SERVER_URL"
}

# SIGTERM is a graceful stop: the writer thread commits what is queued, then exits.
stop_server() {
    kill "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
}

start_baseline() {
    BASELINE_PORT="$(free_port)"
    BASELINE_URL="http://127.0.0.1:$BASELINE_PORT"
    "$BASELINE_BIN" 127.0.0.1 "$BASELINE_PORT" >>"$WORK/baseline.log" 2>&1 &
    BASELINE_PID=$!
    wait_ready "$BASELINE_URL/" "$BASELINE_PID"
    log "baseline pid $BASELINE_PID on $BASELINE_URL"
}

stop_baseline() {
    kill "$BASELINE_PID"
    wait "$BASELINE_PID" || true
    BASELINE_PID=""
}

# Peak resident memory (VmHWM) of PID in MiB. It is a high-water mark: it never goes
# down, so each row shows the peak of the process so far, not of that scenario alone.
peak_rss_mib() {
    awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

# One GET / per visitor without a cookie; keeps the signed `hc_visitor=...` each got.
# A single curl runs all requests (a config file with one URL per line), which is far
# quicker than a thousand curl processes. curl sends no cookies unless told to.
collect_cookies() {
    local config="$WORK/cookies.curl" i
    : >"$config"
    for ((i = 0; i < COOKIES; i++)); do
        printf 'url = "%s/"\noutput = "/dev/null"\n' "$SERVER_URL" >>"$config"
    done
    curl -sS --fail -K "$config" -D "$WORK/cookies.headers"
    grep -i '^set-cookie: hc_visitor=' "$WORK/cookies.headers" |
        sed -E 's/^[Ss]et-[Cc]ookie: (hc_visitor=[^;]*).*/\1/' | tr -d '\r' >"$WORK/cookies.txt"
    local got
    got=$(wc -l <"$WORK/cookies.txt")
    ((got == COOKIES)) || die "expected $COOKIES visitor cookies, got $got"
    log "collected $got visitor cookies"
}

# For each cookie, the `?v=` version its counter fragment shows right now, so a poll
# is answered 204 while the numbers stay as they are, as for a phone in a quiet room.
# Must run right before each polling run: the version includes the active count.
# Writes the wrk requests file "GET<TAB>/counter?v=...<TAB>cookie" to $1.
collect_poll_requests() {
    local out="$1" config="$WORK/versions.curl" cookie
    : >"$config"
    # `next` separates transfers, so each gets only its own Cookie header.
    while IFS= read -r cookie; do
        [[ -s "$config" ]] && echo next >>"$config"
        printf 'url = "%s/counter"\nheader = "Cookie: %s"\n' "$SERVER_URL" "$cookie" >>"$config"
    done <"$WORK/cookies.txt"
    curl -sS --fail -K "$config" | grep -o 'hx-get="/counter?v=[^"]*"' |
        sed -E 's/^hx-get="(.*)"$/\1/' >"$WORK/versions.txt"
    (($(wc -l <"$WORK/versions.txt") == COOKIES)) || die "could not read every cookie's counter version"
    paste "$WORK/versions.txt" "$WORK/cookies.txt" | sed 's/^/GET\t/' >"$out"
}

# Writes the requests files that do not depend on the moment they are used.
write_request_files() {
    printf 'GET\t/\t\n' >"$WORK/new.req"
    sed 's|^|GET\t/\t|' "$WORK/cookies.txt" >"$WORK/returning.req"
    printf 'POST\t/hit\t%s\n' "$(head -n 1 "$WORK/cookies.txt")" >"$WORK/tabs.req"
    printf 'GET\t/qr.png?url=%s\t\n' "$QR_URL" >"$WORK/qr.req"
}

# run_wrk ROW LABEL PID BASE_URL REQUESTS_FILE CONNS [count]
# Runs wrk against BASE_URL, then records its figures and PID's peak RSS under ROW.
run_wrk() {
    local row="$1" label="$2" pid="$3" url="$4" requests="$5" conns="$6" count="${7:-}"
    local out="$WORK/wrk-$row.txt" line
    log "$label, $conns connections, ${DURATION}s"
    WRK_COUNT_STATUS=$([[ "$count" == count ]] && echo 1 || echo 0) \
        wrk -t"$THREADS" -c"$conns" -d"${DURATION}s" -s "$LUA" "$url" -- "$requests" >"$out" 2>&1 ||
        { cat "$out" >&2; die "wrk failed"; }
    line=$(grep '^BENCH ' "$out") || { cat "$out" >&2; die "wrk printed no BENCH line"; }

    # Turn "BENCH k=v k=v ..." into shell variables w_k (all values are integers).
    local field w_requests w_duration_us w_p50_us w_p99_us w_non2xx3xx w_connect w_read w_write w_timeout w_n200 w_n204 w_nother
    for field in ${line#BENCH }; do
        printf -v "w_${field%%=*}" '%s' "${field#*=}"
    done

    ROWS+=("$row")
    LABEL[$row]="$label"
    CONNS[$row]="$conns"
    RPS[$row]=$(awk -v n="$w_requests" -v us="$w_duration_us" 'BEGIN { printf "%.0f", n / (us / 1e6) }')
    P50[$row]=$(awk -v us="$w_p50_us" 'BEGIN { printf "%.2f", us / 1000 }')
    P99[$row]=$(awk -v us="$w_p99_us" 'BEGIN { printf "%.2f", us / 1000 }')
    NON2XX[$row]="$w_non2xx3xx"
    SOCKERR[$row]=$((w_connect + w_read + w_write + w_timeout))
    RSS[$row]=$(peak_rss_mib "$pid")
    NOTE[$row]=""
    if [[ "$count" == count ]]; then
        local answered=$((w_n200 + w_n204 + w_nother))
        NOTE[$row]=$(awk -v a="$w_n204" -v b="$w_n200" -v c="$w_nother" -v t="$answered" \
            'BEGIN { if (t == 0) t = 1; printf "204: %.1f %%, 200: %.1f %%, other: %d", 100 * a / t, 100 * b / t, c }')
    fi
    log "  ${RPS[$row]} req/s, p50 ${P50[$row]} ms, p99 ${P99[$row]} ms, non-2xx/3xx ${NON2XX[$row]}, socket errors ${SOCKERR[$row]}, VmHWM ${RSS[$row]} MiB ${NOTE[$row]}"
}

# Adds to the note of ROW.
note() {
    NOTE[$1]="${NOTE[$1]:+${NOTE[$1]}; }$2"
}

active_visitors() {
    sqlite3 "$DB" "SELECT COUNT(*) FROM visitors WHERE last_seen > strftime('%s','now') - 300"
}

# Writes 1,000,000 visitors with 10 hits each straight into the (stopped) server's file.
# Their ids are 32 lowercase hex digits like real ones; they were last seen 30 days ago,
# so they are not "active". Totals grow by the same amounts, so the store stays
# consistent, and 10,000 old minutes of 1,000 hits each go into hits_per_minute.
preload() {
    log "preloading 1,000,000 visitors and 10,000,000 hits"
    local started=$SECONDS
    sqlite3 "$DB" >/dev/null <<'SQL'
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;      -- bulk load of a copy; the server's own setting is FULL
PRAGMA cache_size = -262144;   -- 256 MiB for the load only
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000)
INSERT INTO visitors (id, hits, first_seen, last_seen)
SELECT printf('%032x', i), 10, strftime('%s', 'now') - 40 * 86400,
       strftime('%s', 'now') - 30 * 86400
FROM n;
WITH RECURSIVE m(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM m WHERE i < 9999)
INSERT INTO hits_per_minute (minute, hits)
SELECT (strftime('%s', 'now') / 60 - 45 * 1440 + i) * 60, 1000 FROM m
WHERE true
ON CONFLICT (minute) DO UPDATE SET hits = hits + excluded.hits;
UPDATE totals SET hits = hits + 10000000, visitors = visitors + 1000000 WHERE id = 1;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
    log "preload took $((SECONDS - started)) s; file is $(du -h "$DB" | cut -f1)"
}

machine() {
    local cpu
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    printf -- '- Machine: %s CPUs (nproc), %s, Linux %s\n' "$(nproc)" "${cpu:-unknown CPU}" "$(uname -r)"
    printf -- '- Date: %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
    printf -- '- Load average before / after: %s / %s\n' "$LOAD_BEFORE" "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf -- '- Durability: SQLite WAL, synchronous=FULL (fsync of the WAL on every commit), group commit by one writer thread; a hit is answered after its commit\n'
    printf -- '- Load: wrk %s, %s threads, %s s per run, client and server on the same machine over 127.0.0.1\n' \
        "$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')" "$THREADS" "$DURATION"
}

# ratio ROW: ROW's req/s as a share of the baseline's at the same connection count.
ratio() {
    local row="$1" base="baseline-${CONNS[$1]}"
    awk -v a="${RPS[$row]}" -v b="${RPS[$base]}" 'BEGIN { printf "%.0f %%", 100 * a / b }'
}

table() {
    echo "# hit-counter benchmark"
    echo
    machine
    echo
    echo "| scenario | conns | req/s | vs baseline | p50 ms | p99 ms | non-2xx/3xx | socket errors | peak RSS MiB | notes |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    local row
    for row in "${ROWS[@]}"; do
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
            "${LABEL[$row]}" "${CONNS[$row]}" "${RPS[$row]}" "$(ratio "$row")" "${P50[$row]}" \
            "${P99[$row]}" "${NON2XX[$row]}" "${SOCKERR[$row]}" "${RSS[$row]}" "${NOTE[$row]}"
    done
    echo
    echo "Peak RSS is the process's VmHWM read after each run: a high-water mark since the"
    echo "process started (the server restarts only for the preloaded rows)."
    echo "Runs are in the order shown. New visitors (1) run last among the empty-store rows:"
    echo "each of them stays \"active\" for five minutes, which would change what the other"
    echo "scenarios measure; row 4 after 1 shows polling while they are active."
    echo
    targets
}

# Verdicts for the targets the benchmark is meant to show.
targets() {
    echo "## Targets"
    echo
    local row c share verdict goal
    for row in "${ROWS[@]}"; do
        [[ "$row" =~ ^s([1-5])-([0-9]+)$ ]] || continue
        c="${BASH_REMATCH[1]}"
        share=$(awk -v a="${RPS[$row]}" -v b="${RPS[baseline-${CONNS[$row]}]}" 'BEGIN { printf "%.0f", 100 * a / b }')
        case "$c" in
        1 | 2 | 3) goal=40 ;;
        4) goal=70 ;;
        *) continue ;;
        esac
        verdict=MISSED
        ((share >= goal)) && verdict=met
        echo "- ${LABEL[$row]}, ${CONNS[$row]} conns: ${share} % of baseline (target ≥ ${goal} %): $verdict"
    done
    for row in "${ROWS[@]}"; do
        [[ "${CONNS[$row]}" == 256 && "$row" != baseline* ]] || continue
        verdict=$(awk -v p="${P99[$row]}" 'BEGIN { print (p < 25 ? "met" : "MISSED") }')
        echo "- p99 at 256 conns, ${LABEL[$row]}: ${P99[$row]} ms (target < 25 ms): $verdict"
    done
    for row in "${ROWS[@]}"; do
        [[ "$row" =~ ^(s[24])-([0-9]+)-10m$ ]] || continue
        local empty="${BASH_REMATCH[1]}-${BASH_REMATCH[2]}"
        awk -v a="${RPS[$row]}" -v b="${RPS[$empty]}" -v l="${LABEL[$empty]}" -v c="${CONNS[$row]}" 'BEGIN {
            d = 100 * (a - b) / b
            printf "- %s, %s conns, 10M hits preloaded: %+.0f %% req/s vs empty store (target: at most 10 %% slower): %s\n",
                l, c, d, (d >= -10 ? "met" : "MISSED")
        }'
    done
    local max
    max=$(for row in "${ROWS[@]}"; do [[ "$row" == baseline* ]] || echo "${RSS[$row]}"; done | sort -g | tail -n 1)
    awk -v m="$max" 'BEGIN { printf "- peak RSS of hit-counter: %s MiB (target < 64 MiB): %s\n", m, (m < 64 ? "met" : "MISSED") }'
}

main() {
    check_tools
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    log "load average before: $LOAD_BEFORE; $(nproc) CPUs"
    build

    # 6. Baseline first: the yardstick for every other row. Measured twice: as every
    # scenario is, and with wrk counting statuses, as the polling scenario is.
    start_baseline
    printf 'GET\t/\t\n' >"$WORK/baseline.req"
    local c
    for c in "${CONNECTIONS[@]}"; do
        run_wrk "baseline-$c" "6. baseline (do-nothing Poem)" "$BASELINE_PID" "$BASELINE_URL" "$WORK/baseline.req" "$c"
    done
    for c in "${CONNECTIONS[@]}"; do
        run_wrk "baselinecount-$c" "6. baseline, wrk counting statuses" "$BASELINE_PID" "$BASELINE_URL" "$WORK/baseline.req" "$c" count
    done
    stop_baseline

    start_server
    collect_cookies
    write_request_files
    # A copy of the store as it is now (signing key and the 1,000 cookie visitors, and
    # nothing else) for the preloaded runs; .backup is consistent while the server runs.
    sqlite3 "$DB" ".backup '$WORK/snapshot.db'"

    for c in "${CONNECTIONS[@]}"; do
        run_wrk "s2-$c" "2. returning visitors (GET / × 1,000 cookies)" "$SERVER_PID" "$SERVER_URL" "$WORK/returning.req" "$c"
    done
    for c in "${CONNECTIONS[@]}"; do
        run_wrk "s3-$c" "3. one visitor, many tabs (POST /hit)" "$SERVER_PID" "$SERVER_URL" "$WORK/tabs.req" "$c"
    done
    for c in "${CONNECTIONS[@]}"; do
        collect_poll_requests "$WORK/poll.req"
        run_wrk "s4-$c" "4. polling (GET /counter?v= × 1,000 cookies)" "$SERVER_PID" "$SERVER_URL" "$WORK/poll.req" "$c" count
        note "s4-$c" "$(active_visitors) active"
    done
    for c in "${CONNECTIONS[@]}"; do
        run_wrk "s5-$c" "5. QR code (GET /qr.png)" "$SERVER_PID" "$SERVER_URL" "$WORK/qr.req" "$c"
    done
    for c in "${CONNECTIONS[@]}"; do
        run_wrk "s1-$c" "1. new visitors (GET / no cookie)" "$SERVER_PID" "$SERVER_URL" "$WORK/new.req" "$c"
    done
    # Polling again while the visitors just made by scenario 1 count as active.
    for c in "${CONNECTIONS[@]}"; do
        collect_poll_requests "$WORK/poll.req"
        run_wrk "s4after1-$c" "4. polling, right after 1" "$SERVER_PID" "$SERVER_URL" "$WORK/poll.req" "$c" count
        note "s4after1-$c" "$(active_visitors) active"
    done
    stop_server

    # Cost must not grow with data: the snapshot plus 10M hits, same cookies.
    rm -f "$DB" "$DB-wal" "$DB-shm"
    mv "$WORK/snapshot.db" "$DB"
    preload
    start_server
    for c in "${CONNECTIONS[@]}"; do
        run_wrk "s2-$c-10m" "2. returning visitors, 10M hits stored" "$SERVER_PID" "$SERVER_URL" "$WORK/returning.req" "$c"
    done
    for c in "${CONNECTIONS[@]}"; do
        collect_poll_requests "$WORK/poll.req"
        run_wrk "s4-$c-10m" "4. polling, 10M hits stored" "$SERVER_PID" "$SERVER_URL" "$WORK/poll.req" "$c" count
        note "s4-$c-10m" "$(active_visitors) active"
    done
    stop_server

    table | tee "$BENCH/results.md"
}

main
