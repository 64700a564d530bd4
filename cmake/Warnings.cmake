# Picky warnings, in the spirit of ngtcp2's PickyWarningsC.cmake.
# Left out: -Wswitch-enum (forbids a default case), -Wcast-align (noisy on x86 with cmsg macros),
# -Wconversion/-Wsign-conversion (noisy against libuv/ngtcp2 size types; -Wsign-compare is kept).
set(WARREN_WARNINGS
  -Wall -Wextra -Wformat=2 -Wformat-security -Wshadow -Wmissing-prototypes
  -Wstrict-prototypes -Wvla -Wpointer-arith -Wwrite-strings -Wundef
  -Wmissing-declarations -Wnull-dereference -Wdouble-promotion -Wimplicit-fallthrough
  -Wno-unused-parameter)
if(WARREN_WERROR)
  list(APPEND WARREN_WARNINGS -Werror)
endif()
add_compile_options(${WARREN_WARNINGS})
add_compile_definitions(_GNU_SOURCE)
