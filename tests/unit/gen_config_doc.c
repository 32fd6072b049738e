/*
 * gen_config_doc.c: prints docs/configuration.md from the key table in
 * server/config.c (rd_config_write_markdown). check_config_doc.sh diffs its
 * output with the committed file so that the documentation cannot drift.
 */
#include <stdio.h>

#include "config.h"

int main(void) {
    rd_config_write_markdown(stdout);
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
}
