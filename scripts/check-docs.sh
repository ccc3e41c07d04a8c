#!/usr/bin/env bash
# Checks that the repository's documentation references hold:
#   1. no tracked file names a path outside the repository (the protocol reference lives in
#      docs/PROTOCOL.md; a clone has nothing next to it);
#   2. every "PROTOCOL.md <number>" reference in a tracked file names a section of
#      docs/PROTOCOL.md (a "## N." or "### N.N" heading), and every "N item K" / "N row K" /
#      "N rule K" names a numbered list item or table row of that section.
# Understood forms: "PROTOCOL.md 2.6", "(PROTOCOL.md 2.6)", "PROTOCOL.md section 13.1",
# "PROTOCOL.md 8.4–8.5", "PROTOCOL.md 5.5, 5.6, 6.6", "PROTOCOL.md 10.2, 14 row 7",
# "PROTOCOL.md 15 items 1 and 7", "[docs/PROTOCOL.md](docs/PROTOCOL.md) section 14", and a
# reference broken over two comment lines.
# Runnable from any directory. Exits non-zero with one line per problem.
set -euo pipefail

ROOT="$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)"
cd "$ROOT"
REFERENCE="docs/PROTOCOL.md"
failed=0

# 1. Paths outside the repository. The patterns are assembled so that this file does not
#    contain them.
outside="shared"
if git grep -n -I -F -e "$outside/spec" -e "$outside/research" -e "../$outside"; then
  echo "check-docs: the lines above name a path outside the repository; cite $REFERENCE instead" >&2
  failed=1
fi

# 2. Section references.
if [[ ! -f "$REFERENCE" ]]; then
  echo "check-docs: $REFERENCE is missing" >&2
  exit 1
fi
# The reference itself is read first (for its headings); its own references are checked too.
mapfile -t files < <(git grep -l -I -F -e 'PROTOCOL.md' -- . ":(exclude)$REFERENCE")

# LC_ALL=C: awk matches bytes, so the en and em dashes below behave the same under every awk.
if ! LC_ALL=C awk -v reference="$REFERENCE" '
  function problem(where, ref, msg) {
    printf "%s: \"%s\" %s\n", where, ref, msg > "/dev/stderr"
    bad = 1
  }

  # Checks one matched reference, e.g. "PROTOCOL.md 15 items 1 and 7".
  function check(where, ref,    body, quals, nums, n, i, last, ks, nk, j) {
    body = ref
    sub(/^PROTOCOL\.md\)?[ ]+/, "", body)
    sub(/^sections?[ ]+/, "", body)
    quals = ""
    if (match(body, /[ ]+(items?|rows?|rules?)[ ]+/)) {
      quals = substr(body, RSTART + RLENGTH)
      body = substr(body, 1, RSTART - 1)
    }
    gsub(/–|—|-|,| and /, " ", body)
    n = split(body, nums, " ")
    for (i = 1; i <= n; i++) {
      if (!(nums[i] in section)) {
        problem(where, ref, "names section " nums[i] ", which is not a heading of " reference)
      }
      last = nums[i]
    }
    if (quals != "" && (last in section)) {
      gsub(/,| and /, " ", quals)
      nk = split(quals, ks, " ")
      for (j = 1; j <= nk; j++) {
        if (!((last, ks[j]) in item)) {
          problem(where, ref, "names item " ks[j] " of section " last ", which has no such numbered item or table row")
        }
      }
    }
  }

  # The reference: its headings, and the numbered items / table rows of each section.
  FILENAME == reference {
    if ($0 ~ /^```/) {
      fenced = !fenced
    } else if (!fenced && $0 ~ /^## [0-9]+\. /) {
      top = $2; sub(/\.$/, "", top); subsection = ""; section[top] = 1
    } else if (!fenced && $0 ~ /^### [0-9]+\.[0-9]+ /) {
      subsection = $2; section[subsection] = 1
    } else if (!fenced && (match($0, /^[0-9]+\. /) || match($0, /^\| *[0-9]+ *\|/))) {
      k = substr($0, RSTART, RLENGTH); gsub(/[^0-9]/, "", k)
      if (top != "") item[top, k] = 1
      if (subsection != "") item[subsection, k] = 1
    }
  }

  # Every file, the reference included: keep its lines for the END pass.
  FNR == 1 { names[++nfiles] = FILENAME }
  { text[FILENAME, FNR] = $0; count[FILENAME] = FNR }

  END {
    num = "[0-9]+(\\.[0-9]+)?"
    sep = "(,[ ]*|[ ]+and[ ]+|–|—|-)"
    qual = "([ ]+(items?|rows?|rules?)[ ]+[0-9]+((,[ ]*|[ ]+and[ ]+)[0-9]+)*)?"
    pattern = "^PROTOCOL\\.md\\)?[ ]+(sections?[ ]+)?" num "(" sep num ")*" qual
    marker = "PROTOCOL.md"
    for (f = 1; f <= nfiles; f++) {
      file = names[f]
      for (l = 1; l <= count[file]; l++) {
        line = text[file, l]
        if (index(line, marker) == 0) continue
        # A reference may continue on the next line of the same comment or paragraph.
        following = (l < count[file]) ? text[file, l + 1] : ""
        sub(/^[ \t]*(\/\/[\/!]?|#+|\*+|--)?[ \t]*/, "", following)
        joined = line " " following
        # Every occurrence that starts on this line (later lines check their own).
        consumed = 0
        while ((at = index(substr(joined, consumed + 1), marker)) > 0) {
          start = consumed + at
          if (start > length(line)) break
          if (match(substr(joined, start), pattern)) {
            check(file ":" l, substr(joined, start, RLENGTH))
          }
          consumed = start + length(marker) - 1
        }
      }
    }
    exit bad
  }
' "$REFERENCE" "${files[@]}"; then
  echo "check-docs: fix the references above (section numbers are the headings of $REFERENCE)" >&2
  failed=1
fi

if ((failed)); then
  exit 1
fi
echo "check-docs: ok (references in $((${#files[@]} + 1)) files resolve in $REFERENCE; no path outside the repository)"
