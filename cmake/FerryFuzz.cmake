# FERRY_FUZZ: the libFuzzer build (tests/fuzz/run makes it in build-fuzz/). Everything,
# libferry included, gets libFuzzer's coverage instrumentation plus ASan and UBSan, so a
# bug deep in a parser is both found and reported; tests/fuzz links each target with the
# libFuzzer runtime. clang only: gcc has no libFuzzer. Without FERRY_FUZZ this file does
# nothing, and tests/fuzz still builds every target as a plain corpus-replay test.
if(FERRY_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "FERRY_FUZZ=ON needs clang: cmake -S . -B build-fuzz -G Ninja "
                        "-DCMAKE_C_COMPILER=clang -DFERRY_FUZZ=ON")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()
