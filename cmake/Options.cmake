# Build options. -Werror is off for users and on in CI (.ci/run), as in ngtcp2 and curl.
option(WARREN_WERROR "Turn warnings into errors" OFF)
option(WARREN_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(WARREN_FUZZ "Build libFuzzer targets (requires clang)" OFF)
option(WARREN_TESTS "Build the unit tests (requires cmocka)" ON)
