/* transport_serial.c — the agent protocol over a virtio-serial port: find
 * and open the port, wait for a host without spinning, serve one session
 * at a time (contracts and driver facts in transport_serial.h). */
#include "guest-agent/transport_serial.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto/frame.h"

/* Ports exist but none carries the wanted name yet: how long to wait for
 * the name before taking the first port (names follow the port on the
 * control queue within milliseconds). */
#define NAME_GRACE_MS   2000
/* Discarding after a protocol violation ends when the host disconnects or
 * sends nothing for this long. */
#define DRAIN_QUIET_MS  1000
/* While waiting for a host: recheck this often even without a SIGIO (a
 * safety net; the SIGIO is what wakes us). */
#define HOST_RECHECK_MS 1000

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void say(int quiet, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int quiet, const char *fmt, ...)
{
	if (quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	fputs("agent: virtio-serial: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* "vport<dev>p<port>" -> 0 with the two numbers, else -1 (so a port
 * name is at most 26 characters: the %.40s below never truncate). */
static int port_numbers(const char *d, unsigned *dev, unsigned *port)
{
	int used = 0;
	if (sscanf(d, "vport%up%u%n", dev, port, &used) != 2 || d[used] != '\0')
		return -1;
	return 0;
}

/* Read a port's sysfs name ("" when it has none yet). */
static void port_name(const char *d, char *out, size_t len)
{
	char path[256];
	out[0] = '\0';
	snprintf(path, sizeof path, "%s/%.40s/name", AGENT_SERIAL_SYSFS, d);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	if (!fgets(out, (int)len, f))
		out[0] = '\0';
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
}

/* One look at sysfs: the named port in `named`, the first port in `first`
 * (empty strings when absent).  Returns the number of ports seen. */
static int scan_ports(const char *want, char *named, char *first, size_t len)
{
	named[0] = first[0] = '\0';
	DIR *dir = opendir(AGENT_SERIAL_SYSFS);
	if (!dir)
		return 0;
	unsigned bd = 0, bp = 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(dir))) {
		unsigned dv, pt;
		if (port_numbers(e->d_name, &dv, &pt) < 0)
			continue;
		n++;
		if (!first[0] || dv < bd || (dv == bd && pt < bp)) {
			snprintf(first, len, "%.40s", e->d_name);
			bd = dv, bp = pt;
		}
		char nm[128];
		port_name(e->d_name, nm, sizeof nm);
		if (!named[0] && strcmp(nm, want) == 0)
			snprintf(named, len, "%.40s", e->d_name);
	}
	closedir(dir);
	return n;
}

int agent_serial_open(const char *name, int timeout_ms)
{
	int64_t start = now_ms(), first_seen = -1;
	int backoff = 1, last_err = ENODEV;

	if (!name)
		return -EINVAL;
	for (;;) {
		char named[64], first[64];
		int n = scan_ports(name, named, first, sizeof named);
		int64_t t = now_ms();
		if (n > 0 && first_seen < 0)
			first_seen = t;
		const char *pick = named[0] ? named
				 : (n > 0 && t - first_seen >= NAME_GRACE_MS) ? first : NULL;
		if (pick) {
			char dev[96];
			snprintf(dev, sizeof dev, "/dev/%.40s", pick);
			int fd = open(dev, O_RDWR | O_CLOEXEC | O_NOCTTY);
			if (fd >= 0) {
				if (!named[0])
					fprintf(stderr, "agent: virtio-serial: no port named %s, using %s\n",
						name, dev);
				return fd;
			}
			/* ENOENT: devtmpfs has not created the node yet. */
			last_err = errno;
			if (errno != ENOENT)
				return -errno;
		}
		if (t - start >= timeout_ms)
			return -last_err;
		sleep_ms(backoff);
		if (backoff < 16)
			backoff *= 2;
	}
}

/* Is a host connected to the port?  1, 0, or -errno (-ENODEV: the port
 * was unplugged).  POLLHUP means the host side is closed. */
static int host_connected(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 0) < 0)
		return errno == EINTR ? 0 : -errno;
	if (p.revents & POLLNVAL)
		return -EBADF;
	return !(p.revents & POLLHUP);
}

/* With O_NONBLOCK set and no host: read what an earlier host left behind
 * (reads return it, then 0).  Returns 0 or -errno. */
static int discard_stale(int fd)
{
	static char buf[4096];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n > 0)
			continue;
		if (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;   /* empty (0: no host; EAGAIN: one just arrived) */
		if (errno != EINTR)
			return -errno;
	}
}

/* Block until a host is connected.  The driver's read and poll do not
 * wait while the host side is closed, so: O_ASYNC makes the driver send
 * SIGIO (blocked here, collected with sigtimedwait) on every host
 * connection change and data arrival, and each wake-up re-checks. */
static int wait_host(int fd)
{
	int rc = host_connected(fd);
	if (rc != 0)
		return rc < 0 ? rc : 0;

	sigset_t sio;
	sigemptyset(&sio);
	sigaddset(&sio, SIGIO);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (fcntl(fd, F_SETOWN, getpid()) < 0 || fcntl(fd, F_SETFL, fl | O_ASYNC | O_NONBLOCK) < 0) {
		rc = -errno;
		(void)fcntl(fd, F_SETFL, fl);
		return rc;
	}
	for (;;) {
		rc = discard_stale(fd);
		if (rc == 0)
			rc = host_connected(fd);
		if (rc != 0)
			break;
		struct timespec tmo = { HOST_RECHECK_MS / 1000, (HOST_RECHECK_MS % 1000) * 1000000L };
		if (sigtimedwait(&sio, NULL, &tmo) < 0 && errno != EAGAIN && errno != EINTR) {
			rc = -errno;
			break;
		}
	}
	int err = fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
	/* Collect the SIGIOs that queued up meanwhile. */
	struct timespec zero = { 0, 0 };
	while (sigtimedwait(&sio, NULL, &zero) == SIGIO)
		;
	if (rc < 0)
		return rc;
	return err;
}

/* After a violation the stream has lost its frame boundaries: discard what
 * the host still sends until it disconnects or goes quiet.  0 or -errno. */
static int drain(int fd)
{
	static char buf[4096];
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int n = poll(&p, 1, DRAIN_QUIET_MS);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;               /* quiet: take it as resynchronised */
		ssize_t r = read(fd, buf, sizeof buf);
		if (r == 0)
			return 0;               /* the host disconnected */
		if (r < 0 && errno != EINTR && errno != EAGAIN)
			return -errno;
	}
}

int agent_serial_run(int fd, const struct agent_handler *h)
{
	struct agent_server_opts o = { .handler = h };
	return agent_serial_run_opts(fd, &o);
}

int agent_serial_run_opts(int fd, const struct agent_server_opts *opts)
{
	if (fd < 0 || !opts || !opts->handler)
		return -EINVAL;
	sigset_t sio;
	sigemptyset(&sio);
	sigaddset(&sio, SIGIO);
	if (sigprocmask(SIG_BLOCK, &sio, NULL) < 0)
		return -errno;

	for (;;) {
		int rc = wait_host(fd);
		if (rc < 0) {
			say(opts->quiet, "waiting for a host: %s", strerror(-rc));
			return rc;
		}
		rc = agent_server_serve_fd(fd, opts);
		if (rc >= 0)
			return rc;                  /* Shutdown */
		switch (rc) {
		case UF_FRAME_CLOSED:               /* the host left between frames */
			continue;
		case -EPIPE:                        /* ... or inside one */
			say(opts->quiet, "host left mid-frame");
			continue;
		case -EINVAL:
		case -ENOMEM:
		case -ENODEV:                       /* port unplugged */
		case -EBADF:
			return rc;
		default:                            /* violation, Error, failed reply */
			say(opts->quiet, "session ended: %s; discarding until the host leaves",
			    strerror(-rc));
			rc = drain(fd);
			if (rc == -ENODEV || rc == -EBADF)
				return rc;
			continue;
		}
	}
}
