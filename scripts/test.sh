#!/usr/bin/env bash
# The one test command (`make test`, and what .ci/run calls): installs the
# Debian packages the tests need when they are missing, then runs every
# check. Tests start their own services (an ephemeral Postgres in a temp
# dir, see internal/testenv); nothing shared is used.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
# pgwire's TestJDBC runs the PostgreSQL JDBC driver (a JDK runs its check
# program from source).
command -v javac >/dev/null 2>&1 || missing+=(default-jdk-headless)
[ -f /usr/share/java/postgresql.jar ] || missing+=(libpostgresql-jdbc-java)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

export GOBIN="$PWD/.bin"
if [ ! -x "$GOBIN/staticcheck" ]; then
  echo "test.sh: installing staticcheck"
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi

echo "== gofmt"
unformatted=$(find . -name '*.go' -not -path './.bin/*' -not -path './.git/*' -print0 | xargs -0 gofmt -l)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
echo "== go vet"
go vet ./...
echo "== staticcheck"
"$GOBIN/staticcheck" ./...
echo "== go test -race"
go test -race -count=1 -timeout 25m "$@" ./...
