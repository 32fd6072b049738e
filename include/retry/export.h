/*
 * retry/export.h: the export macro and version of libretryclient.
 *
 * Every public function is declared with RETRY_API. The library is built with
 * hidden visibility and a linker version script, so RETRY_API functions are
 * the only symbols libretryclient.so exports (tests/unit/check_exports.sh
 * checks it). Include <retry/retry.h> rather than this file.
 */
#ifndef RETRY_EXPORT_H
#define RETRY_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define RETRY_API __attribute__((visibility("default")))
#else
#define RETRY_API
#endif

#define RETRY_VERSION_MAJOR 0
#define RETRY_VERSION_MINOR 1
#define RETRY_VERSION_PATCH 0
#define RETRY_VERSION_STR "0.1.0"

#endif
