# ferry_embed_files(OUT_C <file.c> SYMBOL_PREFIX <p> FILES a.avsc b.avsc ...)
# Generates a C file holding each input as a NUL-terminated string, so the programs
# never need their .avsc files next to the binary.
function(ferry_embed_files)
  cmake_parse_arguments(E "" "OUT_C;SYMBOL_PREFIX" "FILES" ${ARGN})
  add_custom_command(
    OUTPUT ${E_OUT_C}
    COMMAND ${CMAKE_COMMAND} -DOUT=${E_OUT_C} -DPREFIX=${E_SYMBOL_PREFIX}
            "-DFILES=${E_FILES}" -P ${PROJECT_SOURCE_DIR}/cmake/FerryEmbedRun.cmake
    DEPENDS ${E_FILES} ${PROJECT_SOURCE_DIR}/cmake/FerryEmbedRun.cmake
    COMMENT "Embedding ${E_SYMBOL_PREFIX} files"
    VERBATIM)
endfunction()
