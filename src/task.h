/*
 * task.h: the retry task and its wire format v1 codec (see DESIGN.md,
 * "Wire format v1"). Used by the client to build the message it ships, and by
 * retryd to validate what it ingests (Kafka and POST /api/v1/tasks) and to
 * read the stored payload when it dispatches.
 *
 * Pure code over jansson: no I/O. All strings in rt_task are heap-owned by the
 * struct and released by rt_task_free().
 *
 * Decoding rules beyond the table in DESIGN.md:
 * - Unknown keys (at the top level and inside target, policy, callback and
 *   error) are ignored, so that a newer producer can add optional fields
 *   without older retryd nodes poisoning its messages.
 * - A JSON null is not "absent": it is a wrong type and rejected.
 * - Duplicate keys, \u0000 in strings, invalid UTF-8 and integers beyond
 *   int64 are invalid JSON; input longer than RT_TASK_MAX_BYTES is rejected
 *   before parsing.
 * - Error sentences have one shape: "field '<dotted.path>': <what is wrong>",
 *   with "[i]" for array items (e.g. "field 'owners[2]': ..."), and
 *   "field '<path>': required" for a missing required field. Fields are
 *   checked in the table's order and the first problem is reported.
 * - target.type "dispatch" (docs/wire-format.md): url, args (any JSON value),
 *   timeout_ms and success_status; method, headers and body are refused.
 *   args is kept as compact JSON text; a JSON null is the same as absent.
 * Encoding is canonical: keys in the table's order, target.method (http) and
 * target.timeout_ms always written, target.args written unless null, every
 * real written with the fewest digits that read back exactly for all reals
 * of the message, fields equal to their "absent" value
 * (see rt_task_init) omitted, policy fields written iff their RT_POL_* bit is
 * set, callback.on omitted when it holds all three events.
 */
#ifndef RT_TASK_H
#define RT_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "backoff.h"

#define RT_WIRE_VERSION 1
#define RT_GROUP_MAX 64
#define RT_SCENE_MAX 128
#define RT_IDEMPOTENCY_KEY_MAX 191
#define RT_MAX_STATUS_LIST 32
#define RT_TASK_MAX_BYTES (1024 * 1024) /* largest accepted message */
#define RT_URL_MAX 2048                 /* target.url and callback.url, bytes */
#define RT_TRACE_ID_MAX 128
#define RT_MAX_OWNERS 32
#define RT_TIMEOUT_MS_DEFAULT 10000

typedef struct rt_header {
    char *name;
    char *value;
} rt_header;

/* target.type. A dispatch target (docs/wire-format.md) asks retryd to POST a
 * fixed JSON body holding args to the client library's dispatch endpoint at
 * url; it has no method, headers or body of its own. */
typedef enum rt_target_type {
    RT_TARGET_HTTP = 0,      /* "http" (rt_task_init's value) */
    RT_TARGET_DISPATCH = 1   /* "dispatch" */
} rt_target_type;

/* The target of a task. For RT_TARGET_DISPATCH, method stays "POST",
 * headers and body are empty, and args holds target.args. */
typedef struct rt_http_target {
    char method[8];          /* GET POST PUT PATCH DELETE */
    char *url;               /* http:// or https:// */
    rt_header *headers;
    size_t nheaders;
    char *body;              /* may be NULL */
    int64_t timeout_ms;      /* default 10000 */
    int success_status[RT_MAX_STATUS_LIST]; /* empty = any 2xx */
    size_t nsuccess_status;
    rt_target_type type;     /* default RT_TARGET_HTTP */
    char *args;              /* dispatch: target.args as compact JSON text
                              * (any JSON value); NULL = absent = null */
} rt_http_target;

/* Bits of rt_policy.set: which fields the message carried. Absent fields come
 * from retryd's scene or default config. */
enum {
    RT_POL_MAX_ATTEMPTS = 1 << 0,
    RT_POL_BACKOFF = 1 << 1,
    RT_POL_INITIAL_DELAY = 1 << 2,
    RT_POL_MULTIPLIER = 1 << 3,
    RT_POL_MAX_DELAY = 1 << 4,
    RT_POL_JITTER = 1 << 5,
    RT_POL_STOP_ON_STATUS = 1 << 6,
    RT_POL_DEADLINE = 1 << 7,
    RT_POL_LEVELS = 1 << 8
};

typedef struct rt_policy {
    unsigned set;                 /* RT_POL_* bits */
    int max_attempts;             /* 1..1000 */
    rt_backoff_kind backoff;
    int64_t initial_delay_ms;
    double multiplier;
    int64_t max_delay_ms;
    rt_jitter_kind jitter;
    int stop_on_status[RT_MAX_STATUS_LIST];
    size_t nstop_on_status;
    int64_t deadline;             /* ms since epoch */
    int64_t levels[RT_MAX_LEVELS];/* wire: "levels": [1000, 5000, ...] (ms) */
    size_t nlevels;
} rt_policy;

enum {
    RT_EVENT_SUCCEEDED = 1 << 0,
    RT_EVENT_EXHAUSTED = 1 << 1,
    RT_EVENT_STOPPED = 1 << 2
};

typedef struct rt_task {
    int v;                        /* always RT_WIRE_VERSION after decode */
    char *group;
    char *scene;
    char *idempotency_key;
    rt_http_target target;        /* target.type "http" or "dispatch" */
    rt_policy policy;             /* policy.set == 0 when absent */
    char *callback_url;           /* NULL when no callback */
    unsigned callback_on;         /* RT_EVENT_* bits; default all three */
    int has_error;
    int error_code;
    char *error_message;
    int local_attempts;           /* -1 when absent */
    int64_t created_at;           /* ms since epoch, 0 when absent */
    int priority;                 /* default 0 */
    char *trace_id;               /* NULL when absent */
    char **owners;
    size_t nowners;
} rt_task;

/* Sets every field to its "absent" value (NULLs, local_attempts -1, callback_on
 * all events, target.timeout_ms 10000, method "POST"). */
void rt_task_init(rt_task *t);

/* Decodes and validates one message. `buf` need not be NUL-terminated.
 * Returns 0 and fills *out (caller frees with rt_task_free), or -1 and writes
 * one sentence naming the offending field into err (e.g. "field 'group': must
 * match [A-Za-z0-9._-]{1,64}"); *out is then left freed/initialised. */
int rt_task_decode(const char *buf, size_t len, rt_task *out, char *err, size_t errsz);

/* Validates a filled task with the same rules as decode. 0 or -1 + err. */
int rt_task_validate(const rt_task *t, char *err, size_t errsz);

/* Encodes to compact JSON (wire format v1, keys in the table's order; absent
 * optional fields omitted). Returns a malloc'd NUL-terminated string, or NULL
 * on allocation failure or an invalid task (err says which). */
char *rt_task_encode(const rt_task *t, char *err, size_t errsz);

void rt_task_free(rt_task *t);

/* Compact JSON text of any jansson value (json_t *), keys in their order,
 * every real with the fewest digits that read back exactly for all reals of
 * the value (jansson uses one precision per dump). This is how target.args
 * is kept, and how the dispatch endpoint hands args to a handler, so both
 * see the same text. malloc'd; NULL when out of memory. */
struct json_t;
char *rt_json_dumps_exact(const struct json_t *v);

/* Event names: "succeeded", "exhausted", "stopped". */
const char *rt_event_name(unsigned event_bit);

#endif
