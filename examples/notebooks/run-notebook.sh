#!/usr/bin/env bash
# Runs every cell of a notebook headlessly with plain dotnet-repl, the way a user's notebook host runs it, against a
# freshly packed Microsoft.ML.Apd, and fails when any cell fails.
# Usage: examples/notebooks/run-notebook.sh [notebook.ipynb]   (default apd-quickstart.ipynb)
#
# Nothing is patched or pre-seeded: the run gets a fresh, empty NuGet package folder (the notebook's
# `#r "nuget: …"` lines restore Microsoft.ML.Apd from artifacts/notebook/feed, see nuget.config here, and everything
# else from the registry) and a fresh HOME (so dotnet-interactive's resolution cache and the per-user cache start
# empty). On Linux with a libstdc++ older than GCC 13 it is Microsoft.ML.Apd itself that makes TorchSharp load.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
notebook="$(realpath "${1:-$repo/examples/notebooks/apd-quickstart.ipynb}")"
# Outside the repository: restores under it would see its central package management.
work="$(mktemp -d "${TMPDIR:-/tmp}/apd-notebook.XXXXXX")"
trap 'rm -rf "$work"' EXIT
feed="$repo/artifacts/notebook/feed"
trx="$work/$(basename "$notebook" .ipynb).trx"

echo "== Packing Microsoft.ML.Apd into $feed"
rm -rf "$feed"
dotnet pack "$repo/Microsoft.ML.Apd/Microsoft.ML.Apd.csproj" -c Release -o "$feed" --nologo -v quiet

echo "== Running $notebook with dotnet-repl (fresh package folder $work/packages, fresh HOME)"
(cd "$repo" && dotnet tool restore >/dev/null)
repl="$(find "${NUGET_PACKAGES:-$HOME/.nuget/packages}/dotnet-repl" -name dotnet-repl.dll -path '*/tools/*' | sort | tail -1)"
mkdir -p "$work/packages" "$work/home"
cd "$(dirname "$notebook")"
status=0
HOME="$work/home" DOTNET_CLI_HOME="$work/home" XDG_CACHE_HOME= DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 \
  NUGET_PACKAGES="$work/packages" \
  dotnet "$repl" --run "$notebook" --exit-after-run --output-format trx --output-path "$trx" || status=$?

if [ ! -f "$trx" ]; then echo "No results written ($trx); dotnet-repl exited with $status." >&2; exit 1; fi
counters="$(grep -o '<Counters [^>]*>' "$trx")"
total="$(sed -E 's/.* total="([0-9]+)".*/\1/' <<<"$counters")"
passed="$(sed -E 's/.* passed="([0-9]+)".*/\1/' <<<"$counters")"
echo "== $passed of $total cells passed"
if [ "$status" -ne 0 ] || [ "$total" -eq 0 ] || [ "$passed" -ne "$total" ]; then
  python3 - "$trx" <<'PY' || true
import re, sys, html
text = open(sys.argv[1]).read()
for name, body in re.findall(r'<UnitTestResult[^>]*testName="([^"]*)"[^>]*outcome="Failed".*?>(.*?)</UnitTestResult>', text, re.S):
    print("FAILED:", html.unescape(name))
    print(html.unescape(re.sub(r"<[^>]+>", "", body))[-3000:])
PY
  exit 1
fi
