/*
 * daemon.c: placeholder until the data path lands.
 */
#include "portico/daemon.h"

int
daemon_run(const char *path, struct config *cfg)
{
	(void)path;
	config_unref(cfg);
	log_error("the proxy is not built yet");
	return 1;
}
