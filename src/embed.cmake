# Turns a file into a C array: cmake -DIN=file -DOUT=out.c -DNAME=symbol -P embed.cmake
# The array ends with a NUL that NAME_len does not count, so the text is also a C string.
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUT}" "/* Generated from ${IN} by embed.cmake: do not edit. */\n#include <stddef.h>\n\nextern const char ${NAME}[];\nextern const size_t ${NAME}_len;\nconst char ${NAME}[] = {\n${bytes}0x00};\nconst size_t ${NAME}_len = sizeof(${NAME}) - 1;\n")
