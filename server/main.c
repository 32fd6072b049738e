/*
 * main.c: retryd's command line (DESIGN.md "retryd command line and config").
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "log.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: retryd -c FILE            run in the foreground (logs to stderr)\n"
            "       retryd --migrate -c FILE  apply sql/schema.sql (idempotent) and exit\n"
            "       retryd --check-config -c FILE  validate, print the effective config\n"
            "       retryd --help-config      list every config key\n"
            "       retryd --version | --help\n"
            "Every key can be overridden by RETRYD_<SECTION>_<KEY>, e.g. RETRYD_MYSQL_PASSWORD.\n");
}

int main(int argc, char **argv)
{
    enum { OPT_MIGRATE = 1000, OPT_CHECK, OPT_HELP_CONFIG, OPT_VERSION };
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"migrate", no_argument, NULL, OPT_MIGRATE},
                                         {"check-config", no_argument, NULL, OPT_CHECK},
                                         {"help-config", no_argument, NULL, OPT_HELP_CONFIG},
                                         {"version", no_argument, NULL, OPT_VERSION},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL;
    int migrate = 0, check = 0, c;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case OPT_MIGRATE: migrate = 1; break;
        case OPT_CHECK: check = 1; break;
        case OPT_HELP_CONFIG: rd_config_print_help(stdout); return 0;
        case OPT_VERSION: printf("retryd %s\n", RETRYD_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "retryd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!path) {
        fprintf(stderr, "retryd: -c FILE is required\n");
        usage(stderr);
        return 2;
    }
    rd_config cfg;
    char err[1024];
    if (rd_config_load(path, NULL, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "retryd: config: %s\n", err);
        return 2;
    }
    if (rd_log_configure(cfg.log_level, cfg.log_format) != 0) {
        fprintf(stderr, "retryd: config: [log] level/format not understood\n");
        rd_config_free(&cfg);
        return 2;
    }
    int code = 0;
    if (check) {
        rd_config_dump(&cfg, stdout);
        printf("# config OK\n");
    } else if (migrate) {
        if (rd_migrate(&cfg, err, sizeof err) != 0) {
            LOG_ERROR("mysql", "migrate: %s", err);
            code = 1;
        }
    } else {
        code = rd_daemon_run(&cfg, path);
    }
    rd_config_free(&cfg);
    return code;
}
