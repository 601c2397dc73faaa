#!/usr/bin/env bash
# test_install.sh BUILD_DIR SOURCE_DIR TMP TOK_DIR "CONSUMER_FLAGS" — the library as a user gets it:
# `cmake --install` into a fresh prefix; libpi0.so exports exactly the functions of pi0.h (nm -D)
# and keeps its dependencies private; examples/robot_loop.c built with
# `cc ... $(pkg-config --cflags --libs pi0)` and with a CMake project using find_package(pi0)
# (shared and static), each run on a generated demo model and compared with `pi0 infer`.
# CONSUMER_FLAGS: extra compiler flags for the consumer (the sanitizers, in the sanitizer build).
set -u
BUILD=$1 SRC=$(cd "$2" && pwd) TMP=$3 TOK=$(cd "$4" && pwd) XFLAGS=$5
rm -rf "$TMP" && mkdir -p "$TMP"
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
P="$TMP/prefix"
# A bytecode cache in the source (as running the binding from python/ leaves one) is not installed.
/usr/bin/python3 -c "import py_compile, sys; py_compile.compile(sys.argv[1], doraise=True)" "$SRC/python/pi0/__init__.py"
cmake --install "$BUILD" --prefix "$P" >"$TMP/install.log" 2>&1 || { cat "$TMP/install.log"; echo "FAIL: cmake --install"; exit 1; }
junk=$(find "$P" -name __pycache__ -o -name '*.pyc')
[ -z "$junk" ] && ok || bad "cmake --install copied bytecode caches: $junk"
PC=$(find "$P" -name pi0.pc | head -n 1)
LIB=$(dirname "$(dirname "$PC")")
echo "installed under $P:"; (cd "$P" && find . -type f -o -type l | sort | sed 's/^/  /')
for f in "$P/include/pi0.h" "$LIB/libpi0.a" "$LIB/libpi0.so" "$LIB/libpi0.so.0" "$LIB/cmake/pi0/pi0Config.cmake" \
         "$LIB/cmake/pi0/pi0ConfigVersion.cmake" "$LIB/cmake/pi0/pi0Targets.cmake" "$P/bin/pi0" "$PC"; do
  [ -e "$f" ] && ok || bad "not installed: $f"
done
readelf -d "$LIB/libpi0.so" | grep -q "SONAME.*\[libpi0.so.0\]" && ok || bad "SONAME is not libpi0.so.0"
# The Python binding installed beside the library finds that library (no PI0_LIBRARY). Not in the
# sanitizer build: loading its libpi0.so into python3 needs the runtimes preloaded (test_python).
if [ -z "$XFLAGS" ]; then
  got=$(env -u PI0_LIBRARY PYTHONPATH="$LIB/python3/dist-packages" /usr/bin/python3 -c 'import pi0; print(pi0.library_path())' 2>&1)
  case "$got" in "$LIB/libpi0.so"*) ok; echo "python3 -c 'import pi0' from the prefix: $got" ;;
    *) bad "the installed Python binding loads '$got', not $LIB/libpi0.so*" ;; esac
fi

# Exported symbols: every pi0_* function declared in pi0.h, nothing else.
nm -D --defined-only "$LIB/libpi0.so" | awk '{print $NF}' | sort >"$TMP/exported.txt"
sed 's#/\*.*\*/##; s#^ *\*.*##' "$P/include/pi0.h" | grep -oE '\bpi0_[a-z0-9_]+\(' | tr -d '(' | sort -u >"$TMP/declared.txt"
echo "nm -D --defined-only libpi0.so: $(wc -l <"$TMP/exported.txt") symbols, $(grep -vc '^pi0_' "$TMP/exported.txt") not pi0_*"
grep -v '^pi0_' "$TMP/exported.txt" && bad "libpi0.so exports symbols outside pi0_*" || ok
cmp -s "$TMP/exported.txt" "$TMP/declared.txt" && ok \
  || bad "exports differ from pi0.h's functions: $(diff "$TMP/declared.txt" "$TMP/exported.txt" | grep '^[<>]' | tr '\n' ' ')"

# pkg-config: one -lpi0, the private dependencies only for --static.
export PKG_CONFIG_PATH="$LIB/pkgconfig"
flags=$(pkg-config --cflags --libs pi0) && ok || bad "pkg-config pi0"
echo "pkg-config --cflags --libs pi0: $flags"
echo "pkg-config --static --libs pi0: $(pkg-config --static --libs pi0)"
case " $flags " in *" -lpi0 "*) ok ;; *) bad "pkg-config --libs lacks -lpi0" ;; esac
case "$flags" in *cjson*|*dnnl*|*gomp*|*stb*) bad "private dependencies leak into pkg-config --libs: $flags" ;; *) ok ;; esac

# The example, as the README builds it.
# shellcheck disable=SC2086
cc $XFLAGS "$SRC/examples/robot_loop.c" $flags -o "$TMP/robot_loop" && ok || bad "cc robot_loop.c \$(pkg-config ...)"
readelf -d "$TMP/robot_loop" | grep NEEDED | grep -E "cjson|dnnl|gomp|stb" && bad "the example links libpi0's private dependencies" || ok

# Run it on a demo model and compare with pi0 infer (same seed-0 noise): identical actions.
M="$TMP/model"
"$P/bin/pi0" gen-model --config demo --dtype bf16 --seed 4 --out "$M" 2>/dev/null && ok || bad "installed pi0 gen-model"
"$P/bin/pi0" gen-image --out "$TMP/frame.png" && ok || bad "installed pi0 gen-image"
ARGS=("$M" "$TOK/tokenizer.json" "$TMP/frame.png" "pick up the red block" 0.1 -0.2 0.3 0.05 0.5 -0.6 1.0)
run_example() { # run_example BINARY OUT
  LD_LIBRARY_PATH="$LIB" "$1" "${ARGS[@]}" >"$2" 2>"$2.err" && [ "$(wc -l <"$2")" -eq 50 ] && ok \
    || bad "$1: $(cat "$2.err")"
}
infer_csv() { # infer_csv OUT: pi0 infer's float64 actions rounded to float, as the example prints them
  "$P/bin/pi0" infer --model "$M" --tokenizer "$TOK/tokenizer.json" --image base_0_rgb="$TMP/frame.png" \
    --prompt "pick up the red block" --state 0.1,-0.2,0.3,0.05,0.5,-0.6,1.0 --action-dims 7 --format csv 2>/dev/null \
    | tail -n +2 | /usr/bin/python3 -c 'import sys, numpy as np
for line in sys.stdin: print(",".join("%.9g" % np.float32(float(x)) for x in line.split(",")))' >"$1"
}
run_example "$TMP/robot_loop" "$TMP/example.csv"
infer_csv "$TMP/infer.csv"
cmp -s "$TMP/example.csv" "$TMP/infer.csv" && ok || bad "robot_loop and pi0 infer differ: $(diff "$TMP/example.csv" "$TMP/infer.csv" | head -4)"
echo "robot_loop (pkg-config, libpi0.so): $(head -n 1 "$TMP/example.csv") ... identical to pi0 infer: $(cmp -s "$TMP/example.csv" "$TMP/infer.csv" && echo yes || echo NO)"

# With norm stats beside the model: state normalized, actions unnormalized, both the same way.
cat >"$M/norm_stats.json" <<'J'
{"norm_stats": {"state": {"mean": [0,1,2,3,4,5,6], "std": [1,2,3,4,5,6,7]},
                "actions": {"mean": [10,20,30,40,50,60,70], "std": [2,2,2,2,2,2,2]}}}
J
run_example "$TMP/robot_loop" "$TMP/example_ns.csv"
infer_csv "$TMP/infer_ns.csv"
cmp -s "$TMP/example_ns.csv" "$TMP/infer_ns.csv" && ok || bad "with norm stats, robot_loop and pi0 infer differ"
cmp -s "$TMP/example_ns.csv" "$TMP/example.csv" && bad "norm stats made no difference" || ok
rm "$M/norm_stats.json"

# A CMake project: find_package(pi0), pi0::pi0 (shared) and pi0::pi0_static.
mkdir -p "$TMP/cmake_user"
cat >"$TMP/cmake_user/CMakeLists.txt" <<C
cmake_minimum_required(VERSION 3.18)
project(pi0_user C)
find_package(pi0 0.1 REQUIRED)
add_executable(loop_shared "$SRC/examples/robot_loop.c")
target_link_libraries(loop_shared PRIVATE pi0::pi0)
add_executable(loop_static "$SRC/examples/robot_loop.c")
target_link_libraries(loop_static PRIVATE pi0::pi0_static)
C
if cmake -S "$TMP/cmake_user" -B "$TMP/cmake_user/build" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_C_FLAGS="$XFLAGS" \
     >"$TMP/cmake_user.log" 2>&1 && cmake --build "$TMP/cmake_user/build" >>"$TMP/cmake_user.log" 2>&1; then ok
else bad "find_package(pi0) project: $(tail -n 20 "$TMP/cmake_user.log")"; fi
for target in pi0:shared pi0_static:static; do
  kind=${target#*:}
  run_example "$TMP/cmake_user/build/loop_$kind" "$TMP/cmake_$kind.csv"
  cmp -s "$TMP/cmake_$kind.csv" "$TMP/infer.csv" && ok || bad "find_package(pi0): pi0::${target%:*} differs from pi0 infer"
done
readelf -d "$TMP/cmake_user/build/loop_static" | grep -q "libpi0.so" && bad "loop_static links libpi0.so" || ok
echo "install: $pass passed, $fail failed"
[ $fail -eq 0 ]
