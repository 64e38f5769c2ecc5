#!/usr/bin/env bash
# Runs the benchmarks behind BENCHMARKS.md; each pairs Rhizome with a
# baseline measured in the same run. Results go to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
out="bench/results/$(date -u +%Y-%m-%d).txt"
{
  echo "# $(date -u) on $(nproc) cores, $(go version)"
  go test -run XXX -bench 'Apply10k|BareSQLiteInsert10k' -benchtime 3x ./bench/
  go test -run XXX -bench 'ListFilter100k|BareSQLiteList100k' -benchtime 2000x ./bench/
  go test -run XXX -bench 'StartToReady' -benchtime 20x ./bench/
  # Pipelines (issue 4): each generates its data (a 10M-row CSV, a 5M-row
  # Postgres table) first; the baselines run inside the same benchmark.
  go test -run XXX -bench 'IngestCSV10M|PostgresStage5M' -benchtime 3x -timeout 30m ./bench/
  go test -run XXX -bench 'IngestPeakRSS' -benchtime 1x -timeout 30m ./bench/
  go test -run XXX -bench 'SchedulerOverhead' -benchtime 100x ./jobs/
  # Quality (issue 5): ten mixed checks vs one bare scan, 10M rows.
  go test -run XXX -bench 'QualityTenChecks10M' -benchtime 3x -timeout 30m ./bench/
  # Serving (issue 6): governed vs bare DuckDB, Arrow export, point query,
  # Postgres wire throughput to pgx and psql.
  go test -run XXX -bench 'Serve' -benchtime 3x -timeout 30m ./bench/
  go test -run XXX -bench 'PgwireThroughput' -benchtime 3x -timeout 30m ./bench/
} | tee "$out"
