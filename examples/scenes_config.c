/*
 * scenes_config.c: scene policies from code and from a client config file,
 * a listener, and the environment overrides. Call sites only name their
 * scene; how they retry is decided in one place.
 *
 *   $ ./scenes_config examples/scenes.ini
 *   inventory.reserve  4 attempts, delay 20 ms, jitter none
 *   payment.notify     5 attempts, delay 100 ms, jitter decorrelated_v2
 *   [listener] payment.notify attempt 1 failed with 503, next in 115 ms
 *   [listener] payment.notify attempt 2 failed with 503, next in 136 ms
 *   payment.notify: rc=0 outcome=RETRY_OK after 3 calls
 *
 *   $ RETRY_CLIENT_SCENE_PAYMENT_NOTIFY_MAX_ATTEMPTS=2 ./scenes_config examples/scenes.ini
 *   ...
 *   [listener] payment.notify attempt 2 failed with 503: RETRY_ERR_EXHAUSTED
 *   payment.notify: rc=503 outcome=RETRY_ERR_EXHAUSTED after 2 calls
 *
 *   $ RETRY_CLIENT_ENABLED=false ./scenes_config examples/scenes.ini
 *   ...
 *   payment.notify: rc=503 outcome=RETRY_ERR_EXHAUSTED after 1 calls
 *
 *   $ ./scenes_config bad.ini
 *   retry: bad.ini:2: [scene:x] max_attempts must be a whole number in [1, 1000000], not "0"
 *
 * (delays vary from run to run: the jitter is seeded from the clock).
 */
#include <stdio.h>

#include <retry/retry.h>

/* Stands in for a remote call: 0 is success, anything else an error code. */
static int notify_payment(int *calls)
{
    return ++*calls <= 2 ? 503 : 0;
}

static void on_failure(void *ctx, const retry_event *ev)
{
    (void)ctx;
    if (ev->delay_ms >= 0)
        printf("[listener] %s attempt %d failed with %d, next in %lld ms\n", ev->scene,
               ev->attempt, ev->code, (long long)ev->delay_ms);
    else
        printf("[listener] %s attempt %d failed with %d: %s\n", ev->scene, ev->attempt,
               ev->code, retry_err_name((int)ev->outcome));
}

static void show(retry_client *client, const char *scene)
{
    static const char *const jitters[] = {"none", "full", "equal", "decorrelated",
                                          "decorrelated_v2"};
    retry_policy call = RETRY_POLICY_DEFAULT, eff;

    call.scene = scene;
    if (retry_policy_resolve(client, &call, &eff) == RETRY_OK)
        printf("%-18s %d attempts, delay %lld ms, jitter %s\n", scene, eff.max_attempts,
               (long long)eff.delay_ms, jitters[eff.jitter]);
}

int main(int argc, char **argv)
{
    retry_client_conf conf = RETRY_CLIENT_CONF_DEFAULT;
    retry_listener listener = {NULL, on_failure, NULL, NULL, NULL};
    retry_policy inventory = RETRY_POLICY_DEFAULT, call = RETRY_POLICY_DEFAULT;
    retry_client *client = NULL;
    char errstr[512];
    retry_err outcome;
    int rc, calls = 0;

    conf.group = "example-app";
    conf.config_path = argc > 1 ? argv[1] : NULL; /* or RETRY_CLIENT_CONFIG_PATH */
    conf.listeners = &listener;
    conf.listener_count = 1;
    if (retry_client_new(&conf, &client, errstr, sizeof errstr) != RETRY_OK) {
        fprintf(stderr, "retry: %s\n", errstr); /* e.g. scenes.ini:17: [scene:...] ... */
        return 1;
    }

    /* A scene from code; keys of a [scene:inventory.reserve] section would
     * win over these. */
    inventory.max_attempts = 4;
    inventory.delay_ms = 20;
    if (retry_scene_register(client, "inventory.reserve", &inventory) != RETRY_OK) {
        retry_client_destroy(client);
        return 1;
    }
    show(client, "inventory.reserve");
    show(client, "payment.notify");

    /* The call site only names its scene. */
    call.scene = "payment.notify";
    RETRY_CALL_EX(rc, outcome, client, &call, notify_payment(&calls));
    printf("payment.notify: rc=%d outcome=%s after %d calls\n", rc, retry_err_name((int)outcome),
           calls);
    retry_client_destroy(client);
    return rc == 0 ? 0 : 1;
}
