#!/bin/sh
# check_config_doc.sh [--update] GEN DOC
# Fails when DOC (docs/configuration.md) differs from what GEN (the
# gen_config_doc program, built from server/config.c's key table) prints.
# With --update, rewrites DOC instead.
set -eu
update=0
if [ "${1:-}" = "--update" ]; then
    update=1
    shift
fi
if [ $# -ne 2 ]; then
    echo "usage: $0 [--update] GEN DOC" >&2
    exit 2
fi
gen=$1
doc=$2
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
"$gen" >"$tmp"
if [ "$update" -eq 1 ]; then
    cp "$tmp" "$doc"
    echo "wrote $doc"
    exit 0
fi
if ! diff -u "$doc" "$tmp"; then
    echo "$doc is out of date: run $0 --update $gen $doc" >&2
    exit 1
fi
