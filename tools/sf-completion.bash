# shellcheck shell=bash
# Bash completion for sf, installed as $(PREFIX)/share/bash-completion/completions/sf
# (bash-completion loads it the first time `sf <TAB>` is pressed), or `source` this file.
#
# The candidates come from the binary itself: `sf __complete CWORD WORD...` gets the words
# after `sf` up to the cursor and prints groups, commands, options and option choices from
# the same tables that parse the command line, so completion never drifts from the code.
# With a server configured (flags on the line, SHAKENFIST_*, ~/.shakenfist or
# /etc/sf/shakenfist.json) it also offers instance, network, node and namespace names for
# REF arguments, giving up after 3 s per request. Exit status 2 means "a file name": bash completes those.
_sf() {
    local IFS=$'\n' out rc
    COMPREPLY=()
    out=$("${COMP_WORDS[0]}" __complete "$((COMP_CWORD - 1))" "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
    rc=$?
    if [ "$rc" -eq 2 ]; then
        compopt -o default 2>/dev/null
        return 0
    fi
    [ "$rc" -eq 0 ] && [ -n "$out" ] && COMPREPLY=($out)
    return 0
}
complete -F _sf sf
