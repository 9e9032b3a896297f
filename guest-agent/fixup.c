/* fixup.c — the system effects of a post-clone Fixup (agent_fixup_system in
 * server.h): every clone of a snapshot wakes with the same RNG state and a
 * stale wall clock, so the host sends fresh entropy and the time.  Kept apart
 * from the server so tests inject fakes instead of touching the host. */
#include "guest-agent/server.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <linux/random.h>

#include "proto/agent_msg.h"

static int urandom_ioctl(unsigned long req, void *arg)
{
	int fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = ioctl(fd, req, arg) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

/* Mix the bytes into the input pool and credit them: the host drew them
 * from its own getrandom(), so they are worth their full size. */
static int sys_add_entropy(void *ctx, const uint8_t *buf, size_t len)
{
	union {
		struct rand_pool_info info;
		uint8_t raw[sizeof(struct rand_pool_info) + UF_AGENT_ENTROPY_MAX];
	} req;

	if (len == 0 || len > UF_AGENT_ENTROPY_MAX)
		return -EINVAL;
	memset(&req, 0, sizeof req);
	req.info.entropy_count = (int)(len * 8);
	req.info.buf_size = (int)len;
	memcpy(req.raw + sizeof(struct rand_pool_info), buf, len);
	return urandom_ioctl(RNDADDENTROPY, &req);
}

/* Make the CRNG take the new input now rather than at its next scheduled
 * reseed, so the very next getrandom() in this clone differs from its
 * siblings'. */
static int sys_reseed(void *ctx)
{
	return urandom_ioctl(RNDRESEEDCRNG, NULL);
}

static int sys_set_clock(void *ctx, int64_t realtime_ns)
{
	if (realtime_ns <= 0)
		return -EINVAL;
	struct timespec ts = {
		.tv_sec = (time_t)(realtime_ns / 1000000000),
		.tv_nsec = (long)(realtime_ns % 1000000000),
	};
	return clock_settime(CLOCK_REALTIME, &ts) < 0 ? -errno : 0;
}

const struct agent_fixup_ops agent_fixup_system = {
	.add_entropy = sys_add_entropy,
	.reseed = sys_reseed,
	.set_clock = sys_set_clock,
	.ctx = NULL,
};
