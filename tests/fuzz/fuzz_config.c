/*
 * fuzz_config.c: config_load on arbitrary bytes.  Every input either loads
 * into a snapshot or yields one error line naming the file; nothing crashes
 * or leaks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "portico/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/portico-fuzz-config.XXXXXX";
	struct config *cfg;
	char *err = NULL;
	int fd;

	if ((fd = mkstemp(path)) == -1)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	cfg = config_load(path, &err);
	if (cfg != NULL) {
		config_unref(cfg);
	} else {
		/* An error always names the file it came from. */
		if (err == NULL || strncmp(err, path, strlen(path)) != 0 || strchr(err, '\n'))
			abort();
		free(err);
	}
	unlink(path);
	return 0;
}
