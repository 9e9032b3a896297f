/* main.c — runtimed: configuration (config.h), then the daemon (daemon.h)
 * on the default libuv loop until a SIGTERM/SIGINT has drained it. */
#include "runtimed/daemon.h"
#include "vmm/err.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

/* Every client connection is an fd: the gateway admits up to 1024 of them
 * (more are answered 503), so the common soft limit of 1024 would run out
 * first and libuv would close the surplus without a word (seen with 2000
 * concurrent calls, tests/burst).  Raise the soft limit to the hard one. */
static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		perror("runtimed: raising the open-file limit");
}

int main(int argc, char **argv)
{
	static struct rt_daemon d;
	setvbuf(stdout, NULL, _IOLBF, 0);
	int r = rt_config_parse(&d.cfg, argc, argv);
	if (r)
		return r > 0 ? 0 : 2;
	if (rt_config_prepare(&d.cfg)) {
		fprintf(stderr, "runtimed: %s\n", vmm_strerror());
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	uv_loop_t *loop = uv_default_loop();
	int status = 0;
	if (rt_daemon_start(&d, loop)) {
		fprintf(stderr, "runtimed: %s\n", vmm_strerror());
		status = 1;
	}
	uv_run(loop, UV_RUN_DEFAULT);
	if (uv_loop_close(loop))
		fprintf(stderr, "runtimed: handles left open at exit\n");
	if (!status)
		fprintf(stderr, "runtimed: stopped\n");
	return status;
}
