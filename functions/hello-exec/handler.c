/* hello-exec — an exec function (functions/sdk/EXEC.md): a C program the
 * agent starts before the snapshot; it greets whoever each request names.
 * (The guest has no shell, so exec handlers are ELF programs.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uf_exec.h"

int main(void)
{
	const char *g = getenv("GREETING");
	char greeting[64];
	snprintf(greeting, sizeof greeting, "%s", g ? g : "hello");
	if (uf_exec_ready() < 0)
		return 1;
	uint8_t *ev;
	size_t len;
	unsigned calls = 0;
	int rc;
	while ((rc = uf_exec_read(&ev, &len)) > 0) {
		char body[512];
		int n = snprintf(body, sizeof body, "%s, %.*s!\n", greeting,
				 len ? (int)(len > 400 ? 400 : len) : 5, len ? (const char *)ev : "world");
		fprintf(stderr, "hello-exec: call %u, %zu bytes\n", ++calls, len);
		free(ev);
		if (uf_exec_respond(200, body, (size_t)n) < 0)
			return 1;
	}
	return rc < 0 ? 1 : 0;
}
