# tests/bench/lib.sh - what the benchmark scripts share. Source it.

# bench_build SRC DIR: a release build (no tests) of the tree SRC into DIR,
# set up on first use and reconfigured after.
bench_build() {
	if [ -f "$2/build.ninja" ]; then
		meson setup --reconfigure "$2" "$1" -Dbuildtype=release -Dtests=false >/dev/null
	else
		meson setup "$2" "$1" -Dbuildtype=release -Dtests=false >/dev/null
	fi
	ninja -C "$2" >/dev/null
}
