# retryd unit tests (server/). Each test compiles the server sources it needs
# directly, because retryd_core needs every server module to link.

retry_unit_test(test_config
  SOURCES unit/test_config.c ../server/config.c ../server/log.c
  LIBS retrycommon PkgConfig::INIH)
target_include_directories(test_config PRIVATE ${PROJECT_SOURCE_DIR}/server)
target_compile_definitions(test_config PRIVATE
  RD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

retry_unit_test(test_log
  SOURCES unit/test_log.c ../server/log.c
  LIBS PkgConfig::JANSSON)
target_include_directories(test_log PRIVATE ${PROJECT_SOURCE_DIR}/server)

# docs/configuration.md is generated from the key table in server/config.c;
# check_config_doc fails when the committed file differs from what the table
# says. Regenerate with: tests/unit/check_config_doc.sh --update <gen> docs/configuration.md
add_executable(gen_config_doc unit/gen_config_doc.c ../server/config.c)
target_include_directories(gen_config_doc PRIVATE
  ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/server)
target_link_libraries(gen_config_doc PRIVATE retrycommon PkgConfig::INIH)
add_test(NAME check_config_doc
  COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/unit/check_config_doc.sh
          $<TARGET_FILE:gen_config_doc> ${PROJECT_SOURCE_DIR}/docs/configuration.md)
set_tests_properties(check_config_doc PROPERTIES LABELS unit)

retry_unit_test(test_decide
  SOURCES unit/test_decide.c ../server/decide.c
  LIBS retrycommon)
target_include_directories(test_decide PRIVATE ${PROJECT_SOURCE_DIR}/server)

retry_unit_test(test_breaker
  SOURCES unit/test_breaker.c ../server/breaker.c
  LIBS retrycommon)
target_include_directories(test_breaker PRIVATE ${PROJECT_SOURCE_DIR}/server)
