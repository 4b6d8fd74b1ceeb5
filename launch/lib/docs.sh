# Sourced by integration.sh: every Swift example in README.md and docs/ type-checks against the
# release build's modules (scripts/doc_snippets.py says how a block names what it leaves out),
# so an API change that breaks an example a user copies fails here, not in the user's hands.

run_docs_tests() {
    echo "== docs: every Swift example in README.md and docs/ compiles against this build"
    local d="$work/snippets" bin name mode where status failed_here=0
    bin=$(swift build -c release --show-bin-path)
    local flags=(-typecheck -I "$bin/Modules")
    local map
    for map in Sources/CBLAS/module.modulemap Sources/CMPI/module.modulemap Sources/CZlib/module.modulemap \
               "$bin/CEmberProducts.build/module.modulemap" "$bin/CEmberSupport.build/module.modulemap"; do
        flags+=(-Xcc "-fmodule-map-file=$map")
    done
    flags+=(-Xcc -ISources/CEmberProducts/include -Xcc -ISources/CEmberSupport/include)
    for map in $(pkg-config --cflags-only-I ompi-c); do flags+=(-Xcc "$map"); done
    python3 scripts/doc_snippets.py "$d" > "$d.list" || { fail "docs: the Swift examples could be extracted" "$d.list"; return; }
    while read -r name mode where; do
        [ "$mode" = skip ] && { echo "  skip  $where"; continue; }
        swiftc "${flags[@]}" $([ "$mode" = library ] && echo -parse-as-library) "$d/$name" > "$d/$name.log" 2>&1
        status=$?
        [ $status -eq 0 ] || failed_here=$((failed_here + 1))
        [ $status -eq 0 ] || fail "docs: the Swift example at $where compiles" "$d/$name.log"
    done < "$d.list"
    local total
    total=$(grep -vc " skip " "$d.list")
    [ "$failed_here" -eq 0 ] && pass "docs: all $total Swift examples in README.md and docs/ compile against this build"
}
