# Warnings on every target. FERRY_WERROR (scripts/test and CI turn it on) makes them
# errors: a warning left alone today is tomorrow's bug. It is off by default so that a
# newer compiler's new warning does not stop someone from building a release.
add_compile_options(-Wall -Wextra $<$<BOOL:${FERRY_WERROR}>:-Werror> -Wshadow -Wformat=2 -Wvla
                    -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
                    # snprintf truncation is how we bound untrusted text; not a bug.
                    # (gcc only: clang has no such warning and -Werror refuses unknown ones.)
                    $<$<C_COMPILER_ID:GNU>:-Wno-format-truncation>)
add_compile_definitions(_GNU_SOURCE)

if(FERRY_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()
