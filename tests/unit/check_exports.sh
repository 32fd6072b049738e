#!/bin/sh
# check_exports.sh LIB INCLUDE_DIR: libretryclient.so must export exactly the
# functions declared with RETRY_API in INCLUDE_DIR/*.h: nothing internal leaks
# (rt_*, helpers of librdkafka or jansson), and nothing declared is missing.
# After jansson's test/suites/api/check-exports and curl's test1119.
set -eu
lib=$1
incdir=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Defined dynamic symbols, without version suffixes and the version node.
nm -D --defined-only "$lib" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' |
    sort -u >"$tmp/exported"

# Every "RETRY_API <type> name(" declaration; a declaration may span lines,
# so drop comments and preprocessor lines (the macro's own definition) and
# join each file into one line first.
for h in "$incdir"/*.h; do
    perl -0777 -pe 's{/\*.*?\*/}{}gs; s{^[ \t]*#.*$}{}mg; s{\n}{ }g' "$h" |
        grep -o 'RETRY_API[^;(]*(' |
        sed -e 's/($//' -e 's/.*[ *]//'
done | sort -u >"$tmp/declared"

if [ ! -s "$tmp/declared" ]; then
    echo "no RETRY_API declarations found under $incdir" >&2
    exit 1
fi
if ! diff -u "$tmp/declared" "$tmp/exported" >"$tmp/diff"; then
    echo "exported symbols of $lib differ from the RETRY_API declarations" >&2
    echo "(- declared but not exported, + exported but not declared):" >&2
    cat "$tmp/diff" >&2
    exit 1
fi
echo "ok: $(wc -l <"$tmp/exported") exported symbols match the headers"
