/*
 * test_log.c: server/log.c. stderr is redirected to a temporary file with
 * dup2 so that the exact lines can be read back: format, escaping, JSON
 * lines, level filtering (before the arguments are evaluated) and the assert.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ctype.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

typedef struct capture {
    char path[64];
    int fd;
    int saved;
} capture;

static void capture_start(capture *c) {
    snprintf(c->path, sizeof c->path, "/tmp/test_log.XXXXXX");
    c->fd = mkstemp(c->path);
    assert_true(c->fd >= 0);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_int_equal(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
}

/* Restores stderr and returns what was written (caller frees). */
static char *capture_end(capture *c) {
    assert_int_equal(dup2(c->saved, STDERR_FILENO), STDERR_FILENO);
    close(c->saved);
    FILE *f = fopen(c->path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 16);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    close(c->fd);
    unlink(c->path);
    return buf;
}

static int reset(void **state) {
    (void)state;
    assert_int_equal(rd_log_configure("info", "text"), 0);
    return 0;
}

/* Checks "YYYY-MM-DDTHH:MM:SS.mmmZ " at the start of line; returns the rest. */
static const char *skip_timestamp(const char *line) {
    const char *pat = "dddd-dd-ddTdd:dd:dd.dddZ ";
    for (size_t i = 0; pat[i]; i++) {
        if (pat[i] == 'd')
            assert_true(isdigit((unsigned char)line[i]));
        else
            assert_int_equal(line[i], pat[i]);
    }
    return line + strlen(pat);
}

static void test_text_line(void **state) {
    (void)state;
    capture c;
    capture_start(&c);
    LOG_INFO("kafka", "consumer started on %s (%d partitions)", "retry.tasks", 3);
    char *out = capture_end(&c);
    assert_string_equal(skip_timestamp(out),
                        "level=info sub=kafka msg=\"consumer started on retry.tasks (3 partitions)\"\n");
    free(out);
}

static void test_text_escaping(void **state) {
    (void)state;
    capture c;
    capture_start(&c);
    LOG_ERROR("mysql", "say \"hi\" C:\\dir\nnext\tcol\r\x01 end");
    char *out = capture_end(&c);
    assert_string_equal(skip_timestamp(out),
                        "level=err sub=mysql msg=\"say \\\"hi\\\" C:\\\\dir\\nnext\\tcol\\r\\x01 end\"\n");
    /* one event is one line */
    assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
    free(out);
}

static void test_level_names(void **state) {
    (void)state;
    assert_int_equal(rd_log_configure("debug", NULL), 0);
    capture c;
    capture_start(&c);
    LOG_ERROR("s", "a");
    LOG_WARN("s", "b");
    LOG_NOTICE("s", "c");
    LOG_INFO("s", "d");
    LOG_DEBUG("s", "e");
    char *out = capture_end(&c);
    const char *want[] = {"level=err sub=s msg=\"a\"", "level=warning sub=s msg=\"b\"",
                          "level=notice sub=s msg=\"c\"", "level=info sub=s msg=\"d\"",
                          "level=debug sub=s msg=\"e\""};
    const char *p = out;
    for (size_t i = 0; i < 5; i++) {
        const char *rest = skip_timestamp(p);
        assert_memory_equal(rest, want[i], strlen(want[i]));
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    assert_string_equal(p, "");
    free(out);
}

static int evaluated;
static int side_effect(void) {
    evaluated++;
    return 7;
}

static void test_level_filter(void **state) {
    (void)state;
    assert_int_equal(rd_log_configure("warning", NULL), 0);
    assert_int_equal(rd_log_min_level, RD_LOG_WARNING);
    evaluated = 0;
    capture c;
    capture_start(&c);
    LOG_INFO("sched", "skipped %d", side_effect());
    LOG_DEBUG("sched", "skipped %d", side_effect());
    LOG_NOTICE("sched", "skipped %d", side_effect());
    LOG_WARN("sched", "kept %d", side_effect());
    char *out = capture_end(&c);
    assert_int_equal(evaluated, 1); /* filtered lines do not even format */
    assert_string_equal(skip_timestamp(out), "level=warning sub=sched msg=\"kept 7\"\n");
    free(out);
}

static void test_configure_errors(void **state) {
    (void)state;
    assert_int_equal(rd_log_configure("notice", "json"), 0);
    assert_int_equal(rd_log_configure("verbose", "text"), -1);
    assert_int_equal(rd_log_configure("debug", "xml"), -1);
    assert_int_equal(rd_log_min_level, RD_LOG_NOTICE); /* unchanged by failures */
    capture c;
    capture_start(&c);
    LOG_NOTICE("http", "still json");
    char *out = capture_end(&c);
    assert_int_equal(out[0], '{');
    free(out);
}

static void test_json_line(void **state) {
    (void)state;
    assert_int_equal(rd_log_configure(NULL, "json"), 0);
    capture c;
    capture_start(&c);
    LOG_INFO("kafka", "quote \" backslash \\ newline \n bad utf8 \xff end");
    char *out = capture_end(&c);
    size_t len = strlen(out);
    assert_true(len > 0 && out[len - 1] == '\n');
    assert_ptr_equal(strchr(out, '\n'), out + len - 1);
    assert_memory_equal(out, "{\"ts\":\"", 7); /* keys in documented order */
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    assert_non_null(j);
    const char *ts = json_string_value(json_object_get(j, "ts"));
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 24);
    char tsline[32];
    snprintf(tsline, sizeof tsline, "%s ", ts);
    skip_timestamp(tsline);
    assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(j, "sub")), "kafka");
    assert_string_equal(json_string_value(json_object_get(j, "msg")),
                        "quote \" backslash \\ newline \n bad utf8 ? end");
    json_decref(j);
    free(out);
}

static void test_long_message(void **state) {
    (void)state;
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    capture c;
    capture_start(&c);
    LOG_INFO("store", "%s|%s", big, "tail");
    char *out = capture_end(&c);
    const char *rest = skip_timestamp(out);
    assert_int_equal(strlen(rest), strlen("level=info sub=store msg=\"\"\n") + 4999 + 5);
    assert_non_null(strstr(rest, "x|tail\"\n"));
    free(out);
}

static void test_assert_aborts(void **state) {
    (void)state;
    char path[] = "/tmp/test_log_assert.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd, STDERR_FILENO);
        int two = 2;
        RD_ASSERT(two == 3);
        _exit(0); /* not reached */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    char buf[512] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    assert_true(n > 0);
    close(fd);
    unlink(path);
    const char *rest = skip_timestamp(buf);
    assert_non_null(strstr(rest, "level=err sub=assert msg=\"assertion failed: two == 3 at "));
    assert_non_null(strstr(rest, "test_log.c:"));
    RD_ASSERT(1 + 1 == 2); /* a true assertion does nothing */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_text_line, reset),
        cmocka_unit_test_setup(test_text_escaping, reset),
        cmocka_unit_test_setup(test_level_names, reset),
        cmocka_unit_test_setup(test_level_filter, reset),
        cmocka_unit_test_setup(test_configure_errors, reset),
        cmocka_unit_test_setup(test_json_line, reset),
        cmocka_unit_test_setup(test_long_message, reset),
        cmocka_unit_test_setup(test_assert_aborts, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
