#!/usr/bin/env bash
# Writes a man page (roff) from a program's --help, so the page and the option tables behind
# --help cannot drift: the build runs this on the programs it just built (deploy/man/meson.build).
#
# usage: gen-man.sh PROGRAM SECTION SUMMARY OUT [SUBCOMMAND...]
#   PROGRAM     the built binary (its --help, and `PROGRAM SUB --help` for each SUBCOMMAND)
#   SUBCOMMAND  each gets its own section with its usage, text and options; "-" takes the list
#               from the "commands:" block of PROGRAM's --help
#
# --help's layout (common/cs_opt.c): "usage:" lines, paragraphs, then blocks such as "options:"
# or "commands:" whose entries are "  NAME  text" with continuation lines indented further.
set -euo pipefail
[ $# -ge 4 ] || { echo "usage: gen-man.sh PROGRAM SECTION SUMMARY OUT [SUBCOMMAND...]" >&2; exit 2; }
prog=$1 section=$2 summary=$3 out=$4
shift 4
name=$(basename "$prog")
version=$("$prog" --version 2>/dev/null | head -n 1 | awk '{print $2}')

# roff-escapes text: backslashes, and a line starting with . or ' must not read as a request
esc() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }

# one --help text (stdin) as man sections; $1 = the heading prefix ("" or "COMMAND ")
render() {
    awk -v prefix="$1" '
    function flush() { if (para != "") { print ".PP"; print para; para = "" } }
    function opt(line,    name, text) {
        # "  -h, --help   text" or "  plan   text": the name ends at two spaces
        sub(/^ +/, "", line)
        name = line; text = ""
        if (match(line, /  +/)) { name = substr(line, 1, RSTART - 1); text = substr(line, RSTART + RLENGTH) }
        gsub(/-/, "\\-", name)
        print ".TP"; print "\\fB" name "\\fR"
        if (text != "") print text
    }
    BEGIN { mode = "head" }
    /^usage: / || (mode == "usage" && /^ +/) {
        if (mode != "usage") { print ".SH \"" prefix "SYNOPSIS\""; print ".nf"; mode = "usage" }
        line = $0; sub(/^usage: /, "", line); sub(/^ +/, "", line); print line; next
    }
    mode == "usage" { print ".fi"; mode = "text" }
    /^[a-z][a-z ]*:$/ {
        flush(); title = toupper(substr($0, 1, length($0) - 1)); print ".SH \"" prefix title "\""
        mode = "block"; next
    }
    mode == "block" && /^  +[^ ]/ {
        if (match($0, /^      +/) && $0 !~ /^ +-/ && seen) { line = $0; sub(/^ +/, "", line); print line; next }
        opt($0); seen = 1; next
    }
    /^$/ { flush(); if (mode == "block") mode = "text"; next }
    {
        if (mode != "text" && mode != "block") { mode = "text" }
        if (mode == "block") { mode = "text" }
        if (!described) { print ".SH \"" prefix "DESCRIPTION\""; described = 1 }
        para = para (para == "" ? "" : "\n") $0
    }
    END { flush(); if (mode == "usage") print ".fi" }'
}

{
    printf '.TH %s %s "" "calsweep %s" "calsweep"\n' "$(echo "$name" | tr '[:lower:]' '[:upper:]')" "$section" "$version"
    printf '.SH NAME\n%s \\- %s\n' "$name" "$summary"
    "$prog" --help 2>&1 | esc | render ""
    subs=("$@")
    if [ "${subs[0]:-}" = "-" ]; then
        mapfile -t subs < <("$prog" --help 2>&1 | awk '/^commands:$/ {c = 1; next} c && /^  [a-z]/ {print $1} c && /^$/ {c = 0}')
    fi
    for sub in "${subs[@]}"; do
        [ "$sub" = help ] && continue
        "$prog" "$sub" --help 2>&1 | esc | render "$(echo "$sub" | tr '[:lower:]' '[:upper:]') "
    done
    printf '.SH "SEE ALSO"\ncalsweep(1), calsweepd(8), calsweep-worker(8), calsweep-run(1), calsweep-sweep(5)\n'
} >"$out.tmp"
mv "$out.tmp" "$out"
