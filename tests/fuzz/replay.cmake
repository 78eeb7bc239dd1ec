# Replay tests of the fuzz targets, in the normal and the sanitizer builds (included
# from tests/CMakeLists.txt). Each fuzz_<name>.c is compiled a second time, with
# replay_main.c instead of libFuzzer, into bin/test_fuzz_<name>, which replays
# corpus/<name> and regressions/<name>. The directories are compiled in, so the binary
# also runs with no arguments (the valgrind pass of scripts/test-sanitize.sh does that).
file(GLOB RR_FUZZ_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/fuzz_*.c)
foreach(src ${RR_FUZZ_SOURCES})
  get_filename_component(target ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" name ${target})
  add_executable(test_${target} ${src} ${CMAKE_CURRENT_LIST_DIR}/replay_main.c)
  target_compile_definitions(test_${target} PRIVATE
    RR_REPLAY_CORPUS="${CMAKE_CURRENT_LIST_DIR}/corpus/${name}"
    RR_REPLAY_REGRESSIONS="${CMAKE_CURRENT_LIST_DIR}/regressions/${name}")
  target_link_libraries(test_${target} PRIVATE reqrun_common)
  add_test(NAME test_${target} COMMAND test_${target})
  set_tests_properties(test_${target} PROPERTIES LABELS "unit;san" TIMEOUT 120)
endforeach()
