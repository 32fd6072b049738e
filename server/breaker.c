/*
 * breaker.c: per-scene circuit breakers (see breaker.h). Scenes are kept in a
 * small list: a node sees tens or hundreds of scenes, and each lookup is one
 * short string comparison per scene.
 */
#include "breaker.h"

#include <stdlib.h>
#include <string.h>

typedef enum { CLOSED, OPEN, HALF_OPEN } state;

typedef struct scene_breaker {
    struct scene_breaker *next;
    char *scene;
    state st;
    int64_t open_until;
    int probe_running;
    unsigned char *ring;     /* 1 = failed, window entries */
    int ring_size;
    int count, pos, failed;  /* results held, next slot, failures among them */
} scene_breaker;

struct rd_breakers {
    scene_breaker *head;
};

rd_breakers *rd_breakers_new(void)
{
    return calloc(1, sizeof(rd_breakers));
}

void rd_breakers_free(rd_breakers *b)
{
    if (!b) return;
    while (b->head) {
        scene_breaker *s = b->head;
        b->head = s->next;
        free(s->scene);
        free(s->ring);
        free(s);
    }
    free(b);
}

static void clear_ring(scene_breaker *s)
{
    s->count = s->pos = s->failed = 0;
}

/* The scene's breaker, created closed; NULL when out of memory (then the
 * scene simply runs without a breaker). The ring follows `window` changes. */
static scene_breaker *get(rd_breakers *b, const char *scene, int window)
{
    scene_breaker *s = b->head;
    while (s && strcmp(s->scene, scene) != 0) s = s->next;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return NULL;
        s->scene = strdup(scene);
        if (!s->scene) {
            free(s);
            return NULL;
        }
        s->next = b->head;
        b->head = s;
    }
    if (s->ring_size != window) {
        unsigned char *ring = calloc((size_t)window, 1);
        if (!ring) return NULL;
        free(s->ring);
        s->ring = ring;
        s->ring_size = window;
        clear_ring(s);
    }
    return s;
}

int rd_breaker_allow(rd_breakers *b, const rd_breaker_conf *conf, const char *scene,
                     int64_t now_ms, int64_t *retry_at_ms)
{
    if (conf->failure_ratio <= 0) return 1;
    scene_breaker *s = get(b, scene, conf->window);
    if (!s || s->st == CLOSED) return 1;
    if (s->st == OPEN && now_ms >= s->open_until) {
        s->st = HALF_OPEN;
        s->probe_running = 0;
    }
    if (s->st == HALF_OPEN && !s->probe_running) {
        s->probe_running = 1;
        return 1;
    }
    /* Open, or a probe is out: look again when the probe should be back. */
    *retry_at_ms = s->st == OPEN ? s->open_until : now_ms + conf->cooldown_ms / 10 + 1;
    return 0;
}

int rd_breaker_record(rd_breakers *b, const rd_breaker_conf *conf, const char *scene,
                      int failed, int64_t now_ms, int64_t *open_until_ms, double *ratio)
{
    if (conf->failure_ratio <= 0) return 0;
    scene_breaker *s = get(b, scene, conf->window);
    if (!s) return 0;
    if (s->st == HALF_OPEN) {
        s->probe_running = 0;
        if (failed) {
            s->st = OPEN;
            s->open_until = now_ms + conf->cooldown_ms;
        } else {
            s->st = CLOSED;
            clear_ring(s);
        }
        return 0;
    }
    if (s->st == OPEN) return 0; /* an attempt started before it opened */
    if (s->count == s->ring_size) s->failed -= s->ring[s->pos];
    else s->count++;
    s->ring[s->pos] = failed ? 1 : 0;
    s->failed += s->ring[s->pos];
    s->pos = (s->pos + 1) % s->ring_size;
    int min = conf->min_attempts < s->ring_size ? conf->min_attempts : s->ring_size;
    double r = (double)s->failed / (double)s->count;
    if (s->count >= min && r >= conf->failure_ratio) {
        s->st = OPEN;
        s->open_until = now_ms + conf->cooldown_ms;
        *open_until_ms = s->open_until;
        *ratio = r;
        return 1;
    }
    return 0;
}

int rd_breakers_open(const rd_breakers *b, int64_t now_ms)
{
    int n = 0;
    for (const scene_breaker *s = b->head; s; s = s->next) n += s->st != CLOSED;
    (void)now_ms;
    return n;
}
