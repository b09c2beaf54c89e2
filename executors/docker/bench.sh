#!/bin/sh
# Benchmarks of the docker executor; prints figures, asserts nothing.
#  1. Image-ID check of a 2 GiB `docker save` tar (sparse on disk), both
#     layouts: what a plan pays to know a tar's image ID and tags.
#  2. Load of a 1 GiB tar through the executor vs `docker load -i` of the
#     same tar, against a private test dockerd, with peak RSS of each.
# Needs root and the packages in testenv/packages-docker.txt.
# PROVISION_BENCH_MIB=N changes the size of the load benchmark's tar.
set -eu
cd "$(dirname "$0")/../.."
go test -run '^$' -bench 'BenchmarkImageIDCheck2GiB' -benchtime 200x ./executors/docker/ | grep -E '^Benchmark|^cpu'
PROVISION_BENCH=1 go test -tags integration -count=1 -run '^TestLoadBenchmark$' -v ./executors/docker/ |
	grep -Ev '^(=== RUN|--- PASS|PASS$|ok )' || true
