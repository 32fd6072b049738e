/*
 * client/async.c: the async executor behind retry_async_submit()
 * (retry/async.h): a per-client pool of worker threads that share one timer
 * heap.
 *
 * Flow: the first attempt runs on the caller's thread; after a failure the
 * call (an rc_atask holding its own retry_call_state and a deep copy of the
 * policy) goes on the heap, due now. A worker pops it, judges the code with
 * the same engine as RETRY_CALL (retry_call_next() in call.c, told by
 * RC_FL_ASYNC not to sleep), and either puts it back due after the backoff
 * delay or lets the engine finish it: ship (ship.c, client.c), recover,
 * counters. Then the worker calls on_done and ctx_free.
 *
 * Waiting: the heap is ordered by due time (CLOCK_MONOTONIC, ms) and
 * submission order; idle workers wait on one condition variable until the
 * earliest task is due, so no thread sleeps per call. The heap's capacity is
 * reserved when a call is accepted, so putting a task back never allocates.
 *
 * Shutdown (rc_async_drain, from retry_client_destroy): stop accepting, run
 * what falls due before the drain deadline, end the rest at once as
 * exhausted (shipped when the policy ships), join the workers.
 */
#include <pthread.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "internal.h"

typedef struct rc_atask {
    retry_call_state st; /* the engine's state; points at the fields below */
    int rc;              /* the engine's rc: last attempt's code, then result */
    retry_err outcome;
    retry_async_fn fn;
    void *ctx;
    void (*ctx_free)(void *ctx);
    retry_async_done_fn on_done;
    void *done_arg;
    int64_t due_ms;  /* CLOCK_MONOTONIC */
    uint64_t seq;    /* FIFO among equal due times */
    int judged;      /* 0: rc holds a failure not judged yet; 1: next is an attempt */
    int drained;     /* ended by rc_async_drain */
    retry_policy policy;     /* deep copy (strings and lists in the arena) */
    retry_http_request ship; /* deep copy of policy.ship_as, when set */
    /* arena follows */
} rc_atask;

struct rc_async {
    retry_client *client;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* heap changed, or stopping */
    pthread_t *threads;
    int nthreads;  /* started */
    int started;   /* thread start was attempted */
    rc_atask **heap;
    size_t len, cap;
    int inflight; /* accepted, not completed */
    uint64_t seq;
    int stopping;
    int64_t drain_deadline_ms; /* CLOCK_MONOTONIC */
};

/* ---- deep copy of the policy ------------------------------------------ */

/* A bump allocator over the bytes that follow the task. */
typedef struct arena {
    char *p;
    size_t used, size; /* size 0: measuring only */
} arena;

static void *arena_take(arena *a, size_t n, size_t align)
{
    void *r;

    a->used = (a->used + align - 1) / align * align;
    r = a->size != 0 ? a->p + a->used : NULL;
    a->used += n;
    return r;
}

static const char *arena_str(arena *a, const char *s)
{
    size_t n;
    char *d;

    if (s == NULL)
        return NULL;
    n = strlen(s) + 1;
    d = arena_take(a, n, 1);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static const int *arena_ints(arena *a, const int *v, size_t n)
{
    int *d;

    if (v == NULL || n == 0)
        return v;
    d = arena_take(a, n * sizeof *v, alignof(int));
    if (d != NULL)
        memcpy(d, v, n * sizeof *v);
    return d;
}

/* Copies everything *src points to that retry/async.h says is copied.
 * Pointers that are NULL with a non-zero count stay so, for
 * retry_call_begin() to reject. */
static void copy_policy(arena *a, retry_policy *dst, retry_http_request *ship,
                        const retry_policy *src)
{
    *dst = *src;
    dst->retry_on = arena_ints(a, src->retry_on, src->retry_on_count);
    dst->stop_on = arena_ints(a, src->stop_on, src->stop_on_count);
    dst->scene = arena_str(a, src->scene);
    dst->callback_url = arena_str(a, src->callback_url);
    if (src->ship_as != NULL) {
        const retry_http_request *r = src->ship_as;

        *ship = *r;
        ship->method = arena_str(a, r->method);
        ship->url = arena_str(a, r->url);
        if (r->headers != NULL && r->header_count > 0) {
            const char **h = arena_take(a, r->header_count * sizeof *h, alignof(const char *));
            size_t i;

            for (i = 0; i < r->header_count; i++) {
                const char *v = arena_str(a, r->headers[i]);
                if (h != NULL)
                    h[i] = v;
            }
            ship->headers = h;
        }
        if (r->body != NULL) {
            size_t n = r->body_len != 0 ? r->body_len : strlen(r->body);
            char *b = arena_take(a, n + 1, 1);

            if (b != NULL) {
                memcpy(b, r->body, n);
                b[n] = '\0';
            }
            ship->body = b;
            ship->body_len = n;
        }
        ship->success_status = arena_ints(a, r->success_status, r->success_status_count);
        ship->idempotency_key = arena_str(a, r->idempotency_key);
        dst->ship_as = ship;
    }
}

static rc_atask *task_new(const retry_policy *policy)
{
    size_t head = (sizeof(rc_atask) + alignof(max_align_t) - 1) / alignof(max_align_t) *
                  alignof(max_align_t);
    retry_policy pol;
    retry_http_request ship;
    arena a = {NULL, 0, 0};
    rc_atask *t;

    if (policy == NULL) /* the engine's own default policy is used */
        return calloc(1, sizeof(rc_atask));
    copy_policy(&a, &pol, &ship, policy); /* measure */
    t = calloc(1, head + a.used);
    if (t == NULL)
        return NULL;
    a.p = (char *)t + head;
    a.size = a.used;
    a.used = 0;
    copy_policy(&a, &t->policy, &t->ship, policy);
    return t;
}

/* ---- the heap (caller holds mu) --------------------------------------- */

static int task_before(const rc_atask *x, const rc_atask *y)
{
    return x->due_ms < y->due_ms || (x->due_ms == y->due_ms && x->seq < y->seq);
}

static void heap_push(struct rc_async *a, rc_atask *t)
{
    size_t i = a->len++;

    t->seq = a->seq++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!task_before(t, a->heap[parent]))
            break;
        a->heap[i] = a->heap[parent];
        i = parent;
    }
    a->heap[i] = t;
}

static rc_atask *heap_pop(struct rc_async *a)
{
    rc_atask *top = a->heap[0], *last = a->heap[--a->len];
    size_t i = 0;

    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l >= a->len)
            break;
        m = l;
        if (l + 1 < a->len && task_before(a->heap[l + 1], a->heap[l]))
            m = l + 1;
        if (!task_before(a->heap[m], last))
            break;
        a->heap[i] = a->heap[m];
        i = m;
    }
    if (a->len > 0)
        a->heap[i] = last;
    return top;
}

/* ---- running tasks (no lock held) ------------------------------------- */

static void schedule(struct rc_async *a, rc_atask *t, int64_t due_ms)
{
    t->due_ms = due_ms;
    pthread_mutex_lock(&a->mu);
    heap_push(a, t); /* capacity was reserved when the call was accepted */
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void release(struct rc_async *a)
{
    pthread_mutex_lock(&a->mu);
    a->inflight--;
    pthread_mutex_unlock(&a->mu);
}

/* Releases the queue slot (first, so that on_done may submit again even
 * into a full queue), reports the outcome, frees ctx and the task. */
static void complete(struct rc_async *a, rc_atask *t)
{
    retry_async_result res;

    memset(&res, 0, sizeof res);
    res.rc = t->rc;
    res.outcome = t->outcome;
    res.attempts = t->st.attempt_;
    res.shipped = (t->st.flags_ & RC_FL_SHIPPED) != 0;
    res.recovered = (t->st.flags_ & RC_FL_RECOVERED) != 0;
    res.drained = t->drained;
    release(a);
    if (t->on_done != NULL)
        t->on_done(t->done_arg, t->ctx, &res);
    if (t->ctx_free != NULL)
        t->ctx_free(t->ctx);
    free(t);
}

/* One step of a task on a worker: make the due attempt (unless the failure
 * in rc is still to be judged), judge it, then reschedule or complete.
 * With cut, the call is ended now as exhausted. A retry already granted
 * (judged) ends through rc_call_finish_exhausted(), so the failure is not
 * judged again: should_retry is asked once per failure and on_failure fires
 * once. A failure not judged yet (cut right after submit) is judged with no
 * attempts left, so it ships and recovers as for a real exhaustion (or
 * stops, when the policy says the code is not retryable). */
static void run_task(struct rc_async *a, rc_atask *t, int cut)
{
    retry_call_state *st = &t->st;

    if (cut) {
        t->drained = 1;
        rc_log(a->client, RETRY_LOG_NOTICE,
               "scene %s: client destroyed, ending async call after %d attempt(s)",
               t->policy.scene != NULL ? t->policy.scene : "-", st->attempt_);
        if (t->judged) {
            rc_call_finish_exhausted(st);
            complete(a, t);
            return;
        }
        st->max_attempts_ = st->attempt_;
    } else if (t->judged) {
        /* on_attempt fires now, when the attempt really starts. */
        rc_call_attempt(st);
        t->rc = t->fn(t->ctx);
    }
    if (retry_call_next(st)) {
        /* Another attempt: retry_call_next() computed its delay and, with
         * RC_FL_ASYNC, left the waiting and the attempt to us. */
        int64_t delay = st->prev_delay_ms_ > 0 ? st->prev_delay_ms_ : 0;
        t->judged = 1;
        schedule(a, t, rt_mono_ms() + delay);
        return;
    }
    complete(a, t);
}

static void abs_time(struct timespec *ts, int64_t mono_ms)
{
    ts->tv_sec = (time_t)(mono_ms / 1000);
    ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

static void *worker_main(void *arg)
{
    struct rc_async *a = arg;

    pthread_mutex_lock(&a->mu);
    for (;;) {
        if (a->len > 0) {
            rc_atask *top = a->heap[0];
            int64_t now = rt_mono_ms();
            int64_t wake = top->due_ms;
            int cut = 0;

            if (a->stopping && (top->due_ms > a->drain_deadline_ms || now >= a->drain_deadline_ms))
                cut = 1;
            if (cut || top->due_ms <= now) {
                heap_pop(a);
                pthread_mutex_unlock(&a->mu);
                run_task(a, top, cut);
                pthread_mutex_lock(&a->mu);
                continue;
            }
            if (a->stopping && a->drain_deadline_ms < wake)
                wake = a->drain_deadline_ms;
            {
                struct timespec ts;
                abs_time(&ts, wake);
                pthread_cond_timedwait(&a->cv, &a->mu, &ts);
            }
        } else if (a->stopping) {
            break;
        } else {
            pthread_cond_wait(&a->cv, &a->mu);
        }
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- the pool --------------------------------------------------------- */

static struct rc_async *async_new(retry_client *c)
{
    struct rc_async *a = calloc(1, sizeof *a);
    pthread_condattr_t ca;

    if (a == NULL)
        return NULL;
    a->client = c;
    if (pthread_mutex_init(&a->mu, NULL) != 0) {
        free(a);
        return NULL;
    }
    if (pthread_condattr_init(&ca) != 0) {
        pthread_mutex_destroy(&a->mu);
        free(a);
        return NULL;
    }
    /* Due times are CLOCK_MONOTONIC, so a wall clock step changes nothing. */
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&a->cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        pthread_mutex_destroy(&a->mu);
        free(a);
        return NULL;
    }
    pthread_condattr_destroy(&ca);
    return a;
}

static void async_free(struct rc_async *a)
{
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a->threads);
    free(a->heap);
    free(a);
}

/* The client's pool, created on first use. Publishing with a CAS keeps
 * retry_client_new() free of async state for clients that never use it. */
static struct rc_async *async_get(retry_client *c)
{
    struct rc_async *a = atomic_load_explicit(&c->async, memory_order_acquire);
    struct rc_async *expected = NULL;

    if (a != NULL)
        return a;
    a = async_new(c);
    if (a == NULL)
        return NULL;
    if (!atomic_compare_exchange_strong_explicit(&c->async, &expected, a, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        async_free(a);
        return expected;
    }
    return a;
}

/* Starts the workers (caller holds mu, once per client); thread creation
 * failures are logged (under the lock: this happens once). Returns the
 * number started. */
static int start_workers(struct rc_async *a)
{
    int n = a->client->async_workers > 0 ? a->client->async_workers : 1;
    int i;

    a->started = 1;
    a->threads = calloc((size_t)n, sizeof *a->threads);
    if (a->threads == NULL)
        return 0;
    for (i = 0; i < n; i++) {
        int e = pthread_create(&a->threads[a->nthreads], NULL, worker_main, a);
        if (e != 0) {
            rc_log(a->client, RETRY_LOG_ERR, "async: cannot start worker thread %d of %d: %s",
                   i + 1, n, strerror(e));
            break;
        }
        a->nthreads++;
    }
    return a->nthreads;
}

/* Takes a queue slot for a new call and makes sure a heap slot is there for
 * it (caller holds nothing). */
static retry_err reserve(struct rc_async *a)
{
    retry_client *c = a->client;
    retry_err e = RETRY_OK;
    const char *why = NULL;
    int max = c->async_queue_max > 0 ? c->async_queue_max : 1;
    int pending;

    pthread_mutex_lock(&a->mu);
    pending = a->inflight;
    if (a->stopping) {
        why = "the client is being destroyed";
        e = RETRY_ERR_INVALID_ARG;
        goto out;
    }
    if (a->inflight >= max) {
        why = "async_queue_max calls are pending";
        e = RETRY_ERR_QUEUE_FULL;
        goto out;
    }
    if (a->cap < (size_t)a->inflight + 1) {
        size_t cap = a->cap != 0 ? a->cap * 2 : 64;
        rc_atask **h;

        if (cap > (size_t)max)
            cap = (size_t)max;
        h = realloc(a->heap, cap * sizeof *h);
        if (h == NULL) {
            why = "out of memory growing the queue";
            e = RETRY_ERR_NOMEM;
            goto out;
        }
        a->heap = h;
        a->cap = cap;
    }
    if (!a->started)
        start_workers(a);
    if (a->nthreads == 0) {
        why = "no worker thread could be started";
        e = RETRY_ERR_INTERNAL;
        goto out;
    }
    a->inflight++;
out:
    pthread_mutex_unlock(&a->mu);
    /* Logged outside the lock: log_cb may be slow. */
    if (why != NULL)
        rc_log(c, e == RETRY_ERR_QUEUE_FULL ? RETRY_LOG_WARNING : RETRY_LOG_ERR,
               "async call rejected (%d pending): %s", pending, why);
    return e;
}

RETRY_API retry_err retry_async_submit(retry_client *client, const retry_policy *policy,
                                       retry_async_fn fn, void *ctx, void (*ctx_free)(void *ctx),
                                       retry_async_done_fn on_done, void *done_arg)
{
    struct rc_async *a;
    rc_atask *t;
    retry_err e;

    if (client == NULL || fn == NULL) {
        rc_log(client, RETRY_LOG_ERR, "retry_async_submit: client and fn must not be NULL");
        return RETRY_ERR_INVALID_ARG;
    }
    a = async_get(client);
    t = a != NULL ? task_new(policy) : NULL;
    if (t == NULL) {
        rc_log(client, RETRY_LOG_ERR, "async call rejected: out of memory");
        return RETRY_ERR_NOMEM;
    }
    t->fn = fn;
    t->ctx = ctx;
    t->ctx_free = ctx_free;
    t->on_done = on_done;
    t->done_arg = done_arg;
    t->outcome = RETRY_OK;
    retry_call_begin(&t->st, client, policy != NULL ? &t->policy : NULL, &t->rc, &t->outcome);
    t->st.flags_ |= RC_FL_ASYNC; /* after begin, which clears the state */
    if (t->outcome != RETRY_OK) {
        /* begin only writes the outcome when the call cannot start: an
         * invalid policy, or one that ships and whose task cannot be built.
         * The engine logged why. */
        e = t->outcome;
        free(t);
        return e;
    }
    e = reserve(a);
    if (e != RETRY_OK) {
        free(t);
        return e;
    }
    if (!retry_call_next(&t->st)) {
        /* Cannot happen after a begin that left the outcome alone; kept so
         * that a rejection never runs fn. */
        e = t->outcome != RETRY_OK ? t->outcome : RETRY_ERR_INTERNAL;
        free(t);
        release(a);
        return e;
    }
    t->rc = fn(ctx);
    if (t->rc == 0) {
        retry_call_next(&t->st); /* success: counters and log */
        complete(a, t);
        return RETRY_OK;
    }
    t->judged = 0;
    schedule(a, t, rt_mono_ms());
    return RETRY_PENDING;
}

RETRY_API int retry_async_pending(const retry_client *client)
{
    struct rc_async *a;
    int n;

    if (client == NULL)
        return 0;
    /* C11's atomic_load takes a non-const pointer; the field is only read. */
    a = atomic_load_explicit(&((retry_client *)client)->async, memory_order_acquire);
    if (a == NULL)
        return 0;
    pthread_mutex_lock(&a->mu);
    n = a->inflight;
    pthread_mutex_unlock(&a->mu);
    return n;
}

void rc_async_drain(retry_client *c)
{
    struct rc_async *a = atomic_load_explicit(&c->async, memory_order_acquire);
    int i, left;

    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    a->stopping = 1;
    a->drain_deadline_ms = rt_mono_ms() + c->flush_timeout_ms;
    left = a->inflight;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    if (left > 0)
        rc_log(c, RETRY_LOG_INFO,
               "async: draining %d pending call(s) for up to %d ms; the rest end as exhausted",
               left, c->flush_timeout_ms);
    for (i = 0; i < a->nthreads; i++)
        pthread_join(a->threads[i], NULL);
    /* Every worker left with an empty heap, and destroy does not race with
     * submit, so nothing is in flight any more. */
    atomic_store_explicit(&c->async, NULL, memory_order_release);
    async_free(a);
}
