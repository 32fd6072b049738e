# Unit tests of libretryclient (include/retry/, client/). Included from
# tests/CMakeLists.txt, so paths are relative to tests/.
retry_unit_test(test_call SOURCES unit/test_call.c LIBS retryclient_static Threads::Threads)
retry_unit_test(test_http SOURCES unit/test_http.c LIBS retryclient_static Threads::Threads)
retry_unit_test(test_policy SOURCES unit/test_policy.c LIBS retryclient_static Threads::Threads)
retry_unit_test(test_spool SOURCES unit/test_spool.c LIBS retryclient_static Threads::Threads)
# test_spool also checks the record codec (client/spool_record.h) directly.
target_include_directories(test_spool PRIVATE ${PROJECT_SOURCE_DIR}/client)
retry_unit_test(test_async SOURCES unit/test_async.c LIBS retryclient_static Threads::Threads)

# The shared library exports exactly the functions declared in the headers.
add_test(NAME check_exports
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/unit/check_exports.sh
          $<TARGET_FILE:retryclient> ${PROJECT_SOURCE_DIR}/include/retry)
set_tests_properties(check_exports PROPERTIES LABELS unit)
