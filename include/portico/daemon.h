/*
 * daemon.h: running portico: workers, signals, reload, shutdown.
 */
#ifndef PORTICO_DAEMON_H
#define PORTICO_DAEMON_H

#include "portico/config.h"

/*
 * Runs the proxy in the foreground with `cfg` (which it takes over) until
 * SIGTERM or SIGINT; `path` is re-read on SIGHUP.  Returns the process exit
 * status: 0 after a clean shutdown, 1 when start-up fails (a bind error, say),
 * with the reason logged.
 */
int daemon_run(const char *path, struct config *cfg);

#endif
