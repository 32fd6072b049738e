/*
 * api.h: retryd's HTTP API on evhttp (DESIGN.md "HTTP API"). Handlers run on
 * the loop thread; anything that needs MySQL becomes a store job (workq.h)
 * and the reply is sent when the job completes. If the client disconnects
 * first, the reply is dropped (the connection's close callback detaches it).
 *
 * Errors are {"error": "<code>", "detail": "<sentence>"} with a 4xx/5xx
 * status; codes: invalid_task, invalid_request, unauthorized, not_found,
 * method_not_allowed, conflict, unavailable, internal.
 */
#ifndef RD_API_H
#define RD_API_H

#include "daemon.h"

/* Binds [http] listen. Returns 0, or -1 with a sentence in err. */
int rd_api_start(rd_daemon *d, rd_api **out, char *err, size_t errsz);
/* Stops accepting requests and frees the listener. */
void rd_api_free(rd_api *api);

#endif
