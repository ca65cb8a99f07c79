#!/bin/bash
# Counts the instructions the server executes while it ingests a benchmark's data and
# flushes it (its first run, until the shutdown flush ends), under valgrind's callgrind.
#
# Why: CPU time on a shared 2-core VM moves by ±10% between runs of the same binary, so it
# cannot tell a 3% change; the instruction count is repeatable to about 0.2%. It is a proxy
# (cache misses and the kernel's share are not in it): confirm with the benchmark's own CPU
# figures before claiming a speed-up.
#
# Usage: bench/scripts/callgrind-server.sh SERVER_BIN [sightline-bench logs options...]
#   e.g. bench/scripts/callgrind-server.sh target/release/sightline --lines 200000
# Needs valgrind (apt-get install valgrind) and target/release/sightline-bench. Prints the
# total and leaves the profile in $OUT_DIR (default: a temporary directory) for
# `callgrind_annotate`.
set -euo pipefail
server=$(realpath "$1")
shift
out_dir=${OUT_DIR:-$(mktemp -d)}
wrapper="$out_dir/server-under-callgrind"
cat > "$wrapper" <<W
#!/bin/bash
# The first 'serve' runs under callgrind; the restart and any other command run as they are.
if [ "\$1" = serve ] && mkdir "$out_dir/first-serve" 2>/dev/null; then
  exec valgrind --tool=callgrind --callgrind-out-file="$out_dir/callgrind.out" "$server" "\$@"
fi
exec "$server" "\$@"
W
chmod +x "$wrapper"
target/release/sightline-bench logs --server-bin "$wrapper" --work-dir "$out_dir" --query-runs 1 "$@" \
  > "$out_dir/bench.txt"
total=$(grep -h '^summary:' "$out_dir"/callgrind.out* | awk '{s += $2} END {printf "%.0f", s}')
echo "server instructions (ingest and shutdown flush): $total"
echo "profile: $out_dir/callgrind.out (callgrind_annotate); bench report: $out_dir/bench.txt"
