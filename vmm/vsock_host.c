/* vsock_host.c — vsock host side: device loop/thread, sockets, buffering, API. */
#include "vmm/vsock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_vsock.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vmm/err.h"

#define TAG_WAKE        (1ull << 63)
#define TAG_KICK        ((1ull << 63) | 1)
#define MAX_CONNS_LIMIT 4096
#define MIN_BUF         4096u
#define MAX_BUF         (16u << 20)

uint64_t vsock__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void wake(struct vsock *v)
{
	uint64_t one = 1;
	(void)!write(v->wake_fd, &one, sizeof(one));
}

/* --- connection slots and their sockets. */

struct vsock_conn *vsock__conn_new(struct vsock *v, uint32_t host_port, uint32_t guest_port)
{
	struct vsock_conn *c = NULL;
	int sv[2], sz = (int)v->cfg.conn_buf_bytes;

	for (uint32_t i = 0; i < v->cfg.max_conns && v->nconns < v->cfg.max_conns; i++)
		if (v->conns[i].state == VC_FREE) {
			c = &v->conns[i];
			break;
		}
	if (!c) {
		v->stats.conn_limit++;
		return NULL;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return NULL;
	(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	(void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	uint32_t slot = c->slot, gen = c->gen + 1;
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
		.data.u64 = (uint64_t)gen << 32 | slot,
	};
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 || epoll_ctl(v->epfd, EPOLL_CTL_ADD, sv[0], &ev) < 0) {
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	memset(c, 0, sizeof(*c));
	c->slot = slot;
	c->gen = gen;
	c->state = VC_ESTABLISHED;      /* callers set the real state */
	c->host_port = host_port;
	c->guest_port = guest_port;
	c->fd = sv[0];
	c->user_fd = sv[1];
	c->readable = c->writable = true;       /* ET: try first, EAGAIN clears */
	c->buf_alloc = v->cfg.conn_buf_bytes;
	v->nconns++;
	v->stats.conns_opened++;
	return c;
}

static void ring_free(struct vsock *v, struct vsock_conn *c)
{
	if (c->buf) {
		free(c->buf);
		c->buf = NULL;
		v->buf_bytes -= c->buf_alloc;
	}
	c->head = c->len = 0;
}

void vsock__conn_close_fd(struct vsock *v, struct vsock_conn *c)
{
	if (c->fd >= 0) {
		(void)epoll_ctl(v->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	if (c->user_fd >= 0)
		close(c->user_fd);
	c->fd = c->user_fd = -1;
	ring_free(v, c);
}

void vsock__conn_free(struct vsock *v, struct vsock_conn *c)
{
	vsock__conn_close_fd(v, c);
	uint32_t slot = c->slot, gen = c->gen + 1;  /* stale epoll events miss */
	memset(c, 0, sizeof(*c));
	c->slot = slot;
	c->gen = gen;
	c->state = VC_FREE;
	c->fd = c->user_fd = -1;
	v->nconns--;
	v->stats.conns_closed++;
}

ssize_t vsock__conn_read(struct vsock_conn *c, const struct iovec *iov, int n)
{
	ssize_t r;

	do
		r = readv(c->fd, iov, n);
	while (r < 0 && errno == EINTR);
	if (r > 0)
		return r;
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		c->readable = false;
		return -EAGAIN;
	}
	/* EOF (or a hard error, treated alike): did the peer close entirely? */
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	c->host_eof = true;
	if (r < 0 || (poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR))))
		c->host_gone = true;
	return 0;
}

static ssize_t send_iov(struct vsock_conn *c, struct iovec *iov, int n)
{
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
	ssize_t w;

	do
		w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	if (w >= 0)
		return w;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		c->writable = false;
	else
		c->host_gone = true;    /* EPIPE: the caller closed its end */
	return 0;
}

int vsock__conn_from_guest(struct vsock *v, struct vsock_conn *c, const struct virtq_elem *e, size_t off, uint32_t len)
{
	uint32_t done = 0;

	if (c->len == 0 && c->writable && c->fd >= 0 && !c->host_gone) {
		struct iovec iov[16];
		size_t total;
		int n = virtq_elem_slice(e, false, off, len, iov, 16, &total);
		done = (uint32_t)send_iov(c, iov, n);
		c->fwd_cnt += done;
	}
	if (c->host_gone) {
		c->fwd_cnt += len - done;
		return 0;
	}
	if (done == len)
		return 0;
	if (!c->buf) {
		if (v->buf_bytes + c->buf_alloc > v->cfg.max_buf_bytes) {
			v->stats.buf_limit++;
			return -ENOBUFS;
		}
		if (!(c->buf = malloc(c->buf_alloc)))
			return -ENOMEM;
		v->buf_bytes += c->buf_alloc;
	}
	uint32_t rest = len - done, tail = (c->head + c->len) % c->buf_alloc;
	uint32_t first = rest < c->buf_alloc - tail ? rest : c->buf_alloc - tail;
	virtq_elem_read(e, off + done, c->buf + tail, first);
	virtq_elem_read(e, off + done + first, c->buf, rest - first);
	c->len += rest;
	return 0;
}

void vsock__conn_flush(struct vsock *v, struct vsock_conn *c)
{
	while (c->len && c->writable && !c->host_gone && c->fd >= 0) {
		uint32_t first = c->len < c->buf_alloc - c->head ? c->len : c->buf_alloc - c->head;
		struct iovec iov[2] = {
			{ c->buf + c->head, first },
			{ c->buf, c->len - first },
		};
		ssize_t w = send_iov(c, iov, c->len > first ? 2 : 1);
		if (w <= 0)
			break;
		c->head = (uint32_t)((c->head + (uint64_t)w) % c->buf_alloc);
		c->len -= (uint32_t)w;
		c->fwd_cnt += (uint32_t)w;
	}
	if (c->host_gone && c->len) {           /* nobody will read it */
		c->fwd_cnt += c->len;
		c->len = 0;
	}
	if (!c->len)
		ring_free(v, c);
	if (!c->len && (c->guest_shut & VIRTIO_VSOCK_SHUTDOWN_SEND) && !c->fd_wr_shut && c->fd >= 0) {
		(void)shutdown(c->fd, SHUT_WR);
		c->fd_wr_shut = true;
	}
}

void vsock__conn_shut_rd(struct vsock_conn *c)
{
	if (c->fd >= 0 && !c->host_eof)
		(void)shutdown(c->fd, SHUT_RD);
	c->host_eof = true;
}

const struct vsock_listener *vsock__listener(const struct vsock *v, uint32_t port)
{
	for (int i = 0; i < VSOCK_MAX_LISTENERS; i++)
		if (v->listeners[i].fn && v->listeners[i].port == port)
			return &v->listeners[i];
	return NULL;
}

/* --- lifetime and the loop. */

static int config(struct vsock_host_config *out, const struct vsock_host_config *in)
{
	struct vsock_host_config c = in ? *in : (struct vsock_host_config){ 0 };
	if (!c.max_conns)          c.max_conns = 64;
	if (!c.conn_buf_bytes)     c.conn_buf_bytes = 256u << 10;
	if (!c.connect_timeout_ms) c.connect_timeout_ms = 2000;
	if (!c.close_timeout_ms)   c.close_timeout_ms = 2000;
	if (!c.max_buf_bytes)
		c.max_buf_bytes = c.conn_buf_bytes > (1u << 20) ? c.conn_buf_bytes : 1u << 20;
	if (c.max_conns > MAX_CONNS_LIMIT || c.conn_buf_bytes < MIN_BUF || c.conn_buf_bytes > MAX_BUF ||
	    c.max_buf_bytes < c.conn_buf_bytes)
		return -EINVAL;
	*out = c;
	return 0;
}

static int epoll_add(struct vsock *v, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };
	return epoll_ctl(v->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int vsock_host_create(struct vsock **out, const struct vmm_mem *mem, uint64_t mmio_base, int gsi,
		      int vmfd, uint64_t guest_cid, const struct vsock_host_config *cfg)
{
	pthread_condattr_t ca;
	struct vsock *v;
	int r;

	*out = NULL;
	if (guest_cid < 3 || guest_cid >= 0xffffffffull)
		return vmm_err(-EINVAL, "vsock: guest CID %llu out of range", (unsigned long long)guest_cid);
	v = calloc(1, sizeof(*v));
	if (!v)
		return vmm_err(-ENOMEM, "vsock: out of memory");
	v->epfd = v->wake_fd = -1;
	v->guest_cid = guest_cid;
	r = config(&v->cfg, cfg);
	if (r < 0) {
		vmm_err(r, "vsock: bad configuration");
		goto err_free;
	}
	v->conns = calloc(v->cfg.max_conns, sizeof(*v->conns));
	if (!v->conns) {
		r = vmm_err(-ENOMEM, "vsock: out of memory");
		goto err_free;
	}
	for (uint32_t i = 0; i < v->cfg.max_conns; i++) {
		v->conns[i].slot = i;
		v->conns[i].fd = v->conns[i].user_fd = -1;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	r = -pthread_cond_init(&v->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (r < 0)
		goto err_free_conns;
	v->epfd = epoll_create1(EPOLL_CLOEXEC);
	v->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (v->epfd < 0 || v->wake_fd < 0) {
		r = vmm_errno(-errno, "vsock: epoll/eventfd");
		goto err_close;
	}
	r = vsock__dev_init(v, mem, mmio_base, gsi, vmfd);
	if (r < 0)
		goto err_close;
	r = epoll_add(v, v->wake_fd, TAG_WAKE);
	for (uint16_t q = 0; q < VSOCK_NUM_QUEUES && !r; q++)
		r = epoll_add(v, virtio_mmio_kick_fd(&v->mmio, q), TAG_KICK);
	if (r < 0) {
		vmm_errno(r, "vsock: epoll_ctl");
		goto err_mmio;
	}
	*out = v;
	return 0;

err_mmio:
	virtio_mmio_release(&v->mmio);
err_close:
	if (v->epfd >= 0)
		close(v->epfd);
	if (v->wake_fd >= 0)
		close(v->wake_fd);
	pthread_cond_destroy(&v->cond);
err_free_conns:
	free(v->conns);
err_free:
	free(v);
	return r;
}

struct virtio_mmio_dev *vsock_host_mmio(struct vsock *v)
{
	return &v->mmio;
}

int vsock_host_fd(const struct vsock *v)
{
	return v->epfd;
}

int vsock_host_poll(struct vsock *v, int timeout_ms)
{
	struct epoll_event ev[32];
	bool kicked = false;
	uint64_t dl = __atomic_load_n(&v->next_deadline, __ATOMIC_RELAXED);

	if (dl) {
		uint64_t now = vsock__now_ns();
		int ms = dl <= now ? 0 : (int)((dl - now + 999999) / 1000000);
		if (timeout_ms < 0 || ms < timeout_ms)
			timeout_ms = ms;
	}
	int n = epoll_wait(v->epfd, ev, 32, timeout_ms);
	if (n < 0 && errno != EINTR)
		return -errno;
	virtio_mmio_lock(&v->mmio);
	for (int i = 0; i < n; i++) {
		uint64_t tag = ev[i].data.u64;
		if (tag == TAG_WAKE) {
			uint64_t x;
			(void)!read(v->wake_fd, &x, sizeof(x));
		} else if (tag == TAG_KICK) {
			kicked = true;
		} else {
			uint32_t slot = (uint32_t)tag, gen = (uint32_t)(tag >> 32);
			struct vsock_conn *c = slot < v->cfg.max_conns ? &v->conns[slot] : NULL;
			if (c && c->state != VC_FREE && c->gen == gen)
				vsock__conn_event(v, c, ev[i].events);
		}
	}
	if (kicked)
		virtio_mmio_process_locked(&v->mmio);
	__atomic_store_n(&v->next_deadline, vsock__timers(v, vsock__now_ns()), __ATOMIC_RELAXED);
	vsock__fill_rx(v);
	virtio_mmio_unlock(&v->mmio);
	return n < 0 ? 0 : n;
}

static void *device_thread(void *arg)
{
	struct vsock *v = arg;
	while (!__atomic_load_n(&v->stop, __ATOMIC_ACQUIRE))
		(void)vsock_host_poll(v, -1);
	return NULL;
}

int vsock_host_start(struct vsock *v)
{
	sigset_t all, old;

	if (v->thread_on)
		return -EALREADY;
	/* The device thread takes no signals: they belong to the vCPU threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int r = pthread_create(&v->thread, NULL, device_thread, v);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return vmm_err(-r, "vsock: pthread_create");
	pthread_setname_np(v->thread, "uf-vsock");
	v->thread_on = true;
	return 0;
}

void vsock_host_stop(struct vsock *v)
{
	if (!v->thread_on)
		return;
	__atomic_store_n(&v->stop, true, __ATOMIC_RELEASE);
	wake(v);
	pthread_join(v->thread, NULL);
	v->thread_on = false;
	v->stop = false;
}

void vsock_host_release(struct vsock *v)
{
	if (!v)
		return;
	vsock_host_stop(v);
	virtio_mmio_lock(&v->mmio);
	vsock__drop_all(v);
	virtio_mmio_unlock(&v->mmio);
	virtio_mmio_release(&v->mmio);
	close(v->epfd);
	close(v->wake_fd);
	pthread_cond_destroy(&v->cond);
	free(v->conns);
	free(v);
}

/* --- the daemon's API. */

int vsock_host_connect(struct vsock *v, uint32_t guest_port, int *fd_out)
{
	struct vsock_conn *c;

	*fd_out = -1;
	virtio_mmio_lock(&v->mmio);
	int r = vsock__connect(v, guest_port, &c);
	if (r == 0) {
		*fd_out = c->user_fd;
		c->user_fd = -1;
	}
	virtio_mmio_unlock(&v->mmio);
	wake(v);
	return r;
}

int vsock_host_connect_wait(struct vsock *v, uint32_t guest_port, int timeout_ms, int *fd_out)
{
	struct vsock_conn *c;
	struct timespec ts;
	int result = 1, fd;         /* 1 = pending; the device writes 0 or -errno */

	*fd_out = -1;
	if (timeout_ms < 0)         /* the device's connect timeout decides */
		timeout_ms = (int)v->cfg.connect_timeout_ms + 1000;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	virtio_mmio_lock(&v->mmio);
	int r = vsock__connect(v, guest_port, &c);
	if (r < 0) {
		virtio_mmio_unlock(&v->mmio);
		return r;
	}
	fd = c->user_fd;
	c->user_fd = -1;
	c->waiter = &result;
	wake(v);
	while (result == 1)
		if (pthread_cond_timedwait(&v->cond, &v->mmio.lock, &ts) == ETIMEDOUT)
			break;
	if (result == 1) {          /* our deadline; c is still ours (not freed) */
		c->waiter = NULL;
		vsock__conn_reset(v, c);
		result = -ETIMEDOUT;
	}
	virtio_mmio_unlock(&v->mmio);
	wake(v);
	if (result < 0) {
		close(fd);
		return result;
	}
	*fd_out = fd;
	return 0;
}

int vsock_host_listen(struct vsock *v, uint32_t host_port, vsock_accept_fn fn, void *arg)
{
	int r = -ENOSPC;

	if (!fn || host_port == 0xffffffffu)
		return -EINVAL;
	virtio_mmio_lock(&v->mmio);
	if (vsock__listener(v, host_port))
		r = -EADDRINUSE;
	for (int i = 0; i < VSOCK_MAX_LISTENERS && r == -ENOSPC; i++)
		if (!v->listeners[i].fn) {
			v->listeners[i] = (struct vsock_listener){ host_port, fn, arg };
			r = 0;
		}
	virtio_mmio_unlock(&v->mmio);
	return r;
}

int vsock_host_unlisten(struct vsock *v, uint32_t host_port)
{
	int r = -ENOENT;
	virtio_mmio_lock(&v->mmio);
	struct vsock_listener *l = (struct vsock_listener *)vsock__listener(v, host_port);
	if (l) {
		memset(l, 0, sizeof(*l));
		r = 0;
	}
	virtio_mmio_unlock(&v->mmio);
	return r;
}

void vsock_host_transport_reset(struct vsock *v)
{
	virtio_mmio_lock(&v->mmio);
	vsock__transport_reset(v);
	virtio_mmio_unlock(&v->mmio);
	wake(v);
}

void vsock_host_stats(struct vsock *v, struct vsock_stats *out)
{
	virtio_mmio_lock(&v->mmio);
	*out = v->stats;
	virtio_mmio_unlock(&v->mmio);
}

uint32_t vsock_host_nconns(struct vsock *v)
{
	virtio_mmio_lock(&v->mmio);
	uint32_t n = v->nconns;
	virtio_mmio_unlock(&v->mmio);
	return n;
}
