# Warnings are errors on every target: a warning left alone today is tomorrow's bug.
add_compile_options(-Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla
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
