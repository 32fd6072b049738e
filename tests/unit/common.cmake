# Unit tests for src/ (retrycommon): backoff maths, the wire format v1 codec
# (data-driven cases under tests/data/codec), and the idempotency digest.
retry_unit_test(test_backoff SOURCES unit/test_backoff.c LIBS retrycommon)
retry_unit_test(test_task SOURCES unit/test_task.c LIBS retrycommon PkgConfig::JANSSON)
retry_unit_test(test_digest SOURCES unit/test_digest.c LIBS retrycommon PkgConfig::LIBCRYPTO)
retry_unit_test(test_utf8 SOURCES unit/test_utf8.c LIBS retrycommon)
retry_unit_test(test_jsonptr SOURCES unit/test_jsonptr.c LIBS retrycommon)
