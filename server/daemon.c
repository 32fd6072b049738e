/*
 * daemon.c: start-up, the loop, and the graceful drain (see daemon.h).
 *
 * Shutdown (SIGTERM/SIGINT), DESIGN.md: stop consuming and claiming; let
 * in-flight attempts finish for up to RD_DRAIN_TIMEOUT_MS; then abort the rest
 * and release their tasks to 'pending'; wait for those store writes; leave
 * the loop; close the consumer, which commits the stored offsets.
 */
#include "daemon.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "clock.h"
#include "dispatcher.h"
#include "httpc.h"
#include "ingest.h"
#include "node.h"
#include "log.h"
#include "notify.h"
#include "retention.h"
#include "scheduler.h"
#include "store.h"
#include "workq.h"

#ifdef RETRYD_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#define STORE_WORKERS 3

const int64_t RD_LATENESS_BOUNDS_MS[RD_LATENESS_BUCKETS] = {5,    10,   25,   50,    100,   250,
                                                            500,  1000, 2500, 5000, 10000, 30000};
#define FORCED_EXIT_EXTRA_MS 5000

static char *read_file(const char *path, char *err, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 16384;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                snprintf(err, errsz, "%s: out of memory", path);
                return NULL;
            }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n < 4096) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(err, errsz, "%s: read error", path);
        return NULL;
    }
    buf[len] = '\0';
    return buf;
}

int rd_migrate(const rd_config *cfg, char *err, size_t errsz)
{
    const char *dirs[3] = {getenv("RETRYD_SQL_DIR"), RETRYD_SQL_DIR, RETRYD_SOURCE_SQL_DIR};
    char path[1024];
    char *sql = NULL;
    char why[1200] = "";
    for (int i = 0; i < 3 && !sql; i++) {
        if (!dirs[i] || !*dirs[i]) continue;
        snprintf(path, sizeof path, "%s/schema.sql", dirs[i]);
        sql = read_file(path, why, sizeof why);
    }
    if (!sql) {
        snprintf(err, errsz, "cannot find schema.sql (set RETRYD_SQL_DIR): %s", why);
        return -1;
    }
    rd_store *s;
    int rc = rd_store_open(cfg, 1, &s, err, errsz);
    if (rc == RD_STORE_OK) {
        rc = rd_store_migrate(s, sql, err, errsz);
        rd_store_close(s);
    }
    free(sql);
    if (rc) return -1;
    LOG_NOTICE("mysql", "schema applied from %s", path);
    return 0;
}

/* systemd (Type=notify): READY/RELOADING/STOPPING/STATUS, and WATCHDOG=1
 * from a loop timer, so a stuck event loop stops the pings and systemd
 * restarts the node. No-ops without libsystemd or outside systemd. */
static void notify_systemd(const char *state)
{
#ifdef RETRYD_HAVE_SYSTEMD
    int rc = sd_notify(0, state);
    if (rc < 0) LOG_WARN("main", "sd_notify(%s): %s", state, strerror(-rc));
#else
    (void)state;
#endif
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
    notify_systemd("WATCHDOG=1");
}

/* Starts the watchdog pings when systemd asked for them (WatchdogSec=). */
static void start_watchdog(rd_daemon *d)
{
#ifdef RETRYD_HAVE_SYSTEMD
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
    d->watchdog_timer = event_new(d->base, -1, EV_PERSIST, on_watchdog, d);
    if (!d->watchdog_timer) return;
    uint64_t half = usec / 2;
    struct timeval tv = {(time_t)(half / 1000000), (suseconds_t)(half % 1000000)};
    event_add(d->watchdog_timer, &tv);
    LOG_INFO("main", "systemd watchdog: pinging every %" PRIu64 " ms", half / 1000);
#else
    (void)d;
#endif
}

static void on_shutdown_tick(evutil_socket_t fd, short what, void *arg)
{
    rd_daemon *d = arg;
    int64_t now = rt_mono_ms();
    int inflight = rd_dispatcher_inflight(d->disp);
    int busy = rd_scheduler_busy(d->sched) || inflight > 0 || rd_workq_pending(d->wq) > 0 ||
               rd_notify_pending(d->notify) > 0;
    if (!busy) {
        LOG_NOTICE("main", "drained; exiting");
        event_base_loopexit(d->base, NULL);
        return;
    }
    if (now >= d->shutdown_deadline_mono_ms && rd_httpc_running(d->httpc) > 0) {
        LOG_WARN("main", "drain timeout: aborting %d attempt(s) and releasing their tasks",
                 inflight);
        rd_dispatcher_abort_all(d->disp);
    }
    if (now >= d->shutdown_deadline_mono_ms + FORCED_EXIT_EXTRA_MS) {
        LOG_ERROR("main", "shutdown still busy after %d ms (%d in flight, %d store jobs, %d "
                  "notifications); exiting anyway: tasks still 'running' are taken over "
                  "when their lease expires",
                  RD_DRAIN_TIMEOUT_MS + FORCED_EXIT_EXTRA_MS, inflight,
                  rd_workq_pending(d->wq), rd_notify_pending(d->notify));
        event_base_loopexit(d->base, NULL);
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    rd_daemon *d = arg;
    if (atomic_exchange(&d->stopping, 1)) {
        LOG_WARN("main", "signal %d again: still draining", (int)sig);
        return;
    }
    LOG_NOTICE("main", "signal %d: stopping ingest and claims, draining %d attempt(s)", (int)sig,
               rd_dispatcher_inflight(d->disp));
    notify_systemd("STOPPING=1");
    rd_ingest_request_stop(d->ingest);
    rd_scheduler_stop(d->sched);
    rd_retention_stop(d->retention);
    d->shutdown_deadline_mono_ms = rt_mono_ms() + RD_DRAIN_TIMEOUT_MS;
    d->shutdown_timer = event_new(d->base, -1, EV_PERSIST, on_shutdown_tick, d);
    struct timeval tv = {0, 50 * 1000};
    if (d->shutdown_timer) event_add(d->shutdown_timer, &tv);
    else event_base_loopexit(d->base, NULL);
}

/* SIGHUP: load the file again and swap the config in whole. Work in flight
 * keeps going; what changes applies to what starts after the swap. */
static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    rd_daemon *d = arg;
    if (!d->config_path) return;
    notify_systemd("RELOADING=1");
    rd_config *next = calloc(1, sizeof *next);
    rd_config **grown = next ? realloc(d->reloaded, (d->nreloaded + 1) * sizeof *grown) : NULL;
    if (!next || !grown) {
        free(next);
        LOG_ERROR("main", "SIGHUP: out of memory; keeping the running config");
        return;
    }
    d->reloaded = grown;
    char err[1024], kept[1024];
    if (rd_config_reload(d->cfg, d->config_path, NULL, next, kept, sizeof kept, err,
                         sizeof err) != 0) {
        free(next);
        LOG_ERROR("main", "SIGHUP: config not reloaded, keeping the running one: %s", err);
        notify_systemd("READY=1");
        return;
    }
    if (rd_log_configure(next->log_level, NULL) != 0)
        LOG_WARN("main", "SIGHUP: [log] level '%s' not understood", next->log_level);
    d->reloaded[d->nreloaded++] = next;
    atomic_store(&d->cfg, next);
    LOG_NOTICE("main", "SIGHUP: config reloaded from %s (%zu scene section(s))%s%s",
               d->config_path, next->nscenes,
               kept[0] ? "; changed but kept until a restart: " : "", kept);
    notify_systemd("READY=1");
}

int rd_daemon_run(rd_config *cfg, const char *config_path)
{
    rd_daemon *d = calloc(1, sizeof *d);
    if (!d) {
        LOG_ERROR("main", "out of memory");
        return 1;
    }
    char err[1024];
    int code = 1;
    atomic_init(&d->cfg, cfg);
    d->config_path = config_path;
    atomic_store(&d->m.kafka_ok, 1); /* until the consumer says otherwise */
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        LOG_ERROR("main", "evthread_use_pthreads failed");
        goto out;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        LOG_ERROR("main", "curl_global_init failed");
        goto out;
    }
    d->base = event_base_new();
    if (!d->base) {
        LOG_ERROR("main", "event_base_new failed");
        goto out;
    }
    if (rd_workq_new(d, STORE_WORKERS, &d->wq, err, sizeof err) != 0) {
        LOG_ERROR("main", "%s", err);
        goto out;
    }
    d->httpc = rd_httpc_new(d->base);
    d->notify = rd_notify_new(d);
    d->disp = rd_dispatcher_new(d);
    if (!d->httpc || !d->notify || !d->disp) {
        LOG_ERROR("main", "out of memory");
        goto out;
    }
    if (rd_api_start(d, &d->api, err, sizeof err) != 0) {
        LOG_ERROR("http", "%s", err);
        goto out;
    }
    d->sched = rd_scheduler_new(d);
    if (!d->sched) {
        LOG_ERROR("main", "out of memory");
        goto out;
    }
    d->retention = rd_retention_new(d); /* NULL: retention is off */
    if (rd_ingest_start(d, &d->ingest, err, sizeof err) != 0) {
        LOG_ERROR("kafka", "%s", err);
        goto out;
    }
    if (rd_node_start(d, &d->node, err, sizeof err) != 0) {
        LOG_ERROR("main", "%s", err);
        goto out;
    }
    d->sig_term = evsignal_new(d->base, SIGTERM, on_signal, d);
    d->sig_int = evsignal_new(d->base, SIGINT, on_signal, d);
    d->sig_hup = evsignal_new(d->base, SIGHUP, on_sighup, d);
    if (!d->sig_term || !d->sig_int || !d->sig_hup || evsignal_add(d->sig_term, NULL) ||
        evsignal_add(d->sig_int, NULL) || evsignal_add(d->sig_hup, NULL)) {
        LOG_ERROR("main", "cannot install signal handlers");
        goto out;
    }
    LOG_NOTICE("main", "retryd %s node %s started", RETRYD_VERSION, cfg->node_id);
    {
        char status[512];
        snprintf(status, sizeof status, "READY=1\nSTATUS=node %s: consuming %s, API on %s",
                 cfg->node_id, cfg->kafka_topic, cfg->http_listen);
        notify_systemd(status);
    }
    start_watchdog(d);
    if (event_base_dispatch(d->base) < 0) {
        LOG_ERROR("main", "event loop failed");
        goto out;
    }
    code = 0;
out:
    if (d->ingest) {
        rd_ingest_request_stop(d->ingest);
        rd_ingest_stop(d->ingest);
    }
    if (d->disp && rd_dispatcher_inflight(d->disp) > 0) rd_dispatcher_abort_all(d->disp);
    rd_api_free(d->api);
    rd_node_stop(d->node); /* queues the 'stopped' mark; rd_workq_free runs it */
    rd_workq_free(d->wq);
    rd_node_free(d->node);
    rd_notify_free(d->notify);
    rd_scheduler_free(d->sched);
    rd_retention_free(d->retention);
    rd_dispatcher_free(d->disp);
    rd_httpc_free(d->httpc);
    if (d->health_timer) event_free(d->health_timer);
    if (d->shutdown_timer) event_free(d->shutdown_timer);
    if (d->sig_term) event_free(d->sig_term);
    if (d->sig_int) event_free(d->sig_int);
    if (d->sig_hup) event_free(d->sig_hup);
    if (d->watchdog_timer) event_free(d->watchdog_timer);
    if (d->base) event_base_free(d->base);
    curl_global_cleanup();
    libevent_global_shutdown();
    if (code == 0) LOG_NOTICE("main", "stopped");
    for (size_t i = 0; i < d->nreloaded; i++) {
        rd_config_free(d->reloaded[i]);
        free(d->reloaded[i]);
    }
    free(d->reloaded);
    free(d);
    return code;
}
