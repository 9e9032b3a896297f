/* vsock_itest.c — the virtio-vsock device and the agent protocol against a
 * real guest: boots the unikernelized guest with our VMM (vsock CID 3), then
 * drives the agent's echo handler from the host side.  Runs where KVM runs
 * Linux guests (tests/integration/vsock.sh via tools/kvm-run).
 *
 *   vsock-itest KERNEL INITRD [TEST...]
 *
 * Closes with "N passed, N failed".
 */
#include "proto/frame.h"
#include "tests/integration/itest.h"
#include "vmm/err.h"
#include "vmm/vm_thread.h"
#include "vmm/vsock_host.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct vmm_vm_thread vt;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int open_agent(int *fd)
{
	return itest_open_agent(&vt.vm, fd);
}

static int t_hello_and_ping(void)
{
	int fd;
	if (open_agent(&fd))
		return -1;
	int r = agent_client_ping(fd, ITEST_IO_MS);
	close(fd);
	CHECK(r == 0, "ping: %s", strerror(-r));
	return 0;
}

/* 1000 round trips, 0 B to 6 MiB, over 10 connections of 100 each. */
static int t_roundtrips_0_to_6mib(void)
{
	static const size_t fixed[] = {0, 1, 63, 64, 4095, 4096, 4097, 65535, 65536, 262144,
				       1 << 20, (6u << 20) - 1, 6u << 20};
	size_t total = 0;
	for (int c = 0; c < 10; c++) {
		int fd;
		if (open_agent(&fd))
			return -1;
		for (int i = 0; i < 100; i++) {
			int k = c * 100 + i;
			size_t len;
			if (k < (int)(sizeof(fixed) / sizeof(fixed[0])))
				len = fixed[k];
			else if (k % 97 == 0)
				len = (size_t)(rnd() % (6u << 20));
			else
				len = (size_t)(rnd() % (1u << (rnd() % 17)));  /* log-uniform to 64 KiB */
			total += len;
			if (itest_echo(fd, len, (uint64_t)k + 1)) {
				close(fd);
				return -1;
			}
		}
		close(fd);
	}
	printf("    1000 round trips, %.1f MiB each way\n", (double)total / (1 << 20));
	return 0;
}

struct conc_arg {
	int idx, rc;
	char msg[512];
};

static void *conc_worker(void *p)
{
	struct conc_arg *a = p;
	int fd;
	a->rc = -1;
	if (vsock_host_connect_wait(vt.vm.vsock, UF_AGENT_VSOCK_PORT, 10000, &fd)) {
		snprintf(a->msg, sizeof(a->msg), "connect failed");
		return NULL;
	}
	struct agent_hello h;
	if (agent_client_hello(fd, &h, ITEST_IO_MS)) {
		snprintf(a->msg, sizeof(a->msg), "hello failed");
		close(fd);
		return NULL;
	}
	uint64_t x = (uint64_t)a->idx * 7919 + 1;
	for (int i = 0; i < 40; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		size_t len = (size_t)((x >> 33) % 65536);
		if (itest_echo(fd, len, x)) {
			snprintf(a->msg, sizeof(a->msg), "%s", itest_failmsg);
			close(fd);
			return NULL;
		}
	}
	close(fd);
	a->rc = 0;
	return NULL;
}

/* 16 connections at once, interleaved by 16 host threads.  The agent
 * serves them one request at a time, polled together. */
static int t_16_concurrent_connections(void)
{
	pthread_t th[16];
	struct conc_arg a[16];
	for (int i = 0; i < 16; i++) {
		a[i] = (struct conc_arg){.idx = i};
		if (pthread_create(&th[i], NULL, conc_worker, &a[i]))
			CHECK(0, "pthread_create");
	}
	int bad = -1;
	for (int i = 0; i < 16; i++) {
		pthread_join(th[i], NULL);
		if (a[i].rc && bad < 0)
			bad = i;
	}
	CHECK(bad < 0, "connection %d: %s", bad, a[bad].msg);
	return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		b += w, n -= (size_t)w;
	}
	return 0;
}

/* The host vanishes halfway through a 1 MiB frame; the agent survives and
 * serves the next connection. */
static int t_host_closes_mid_transfer(void)
{
	int fd;
	if (open_agent(&fd))
		return -1;
	uint8_t hdr[4] = {0, 0, 0x10, 0};        /* 1 MiB frame follows */
	uint8_t *half = calloc(1, 512 << 10);
	int r = write_all(fd, hdr, 4) ? -1 : write_all(fd, half, 512 << 10);
	free(half);
	close(fd);
	CHECK(r == 0, "writing half a frame: %s", strerror(-r));
	if (open_agent(&fd))
		return -1;
	r = itest_echo(fd, 100000, 42);
	close(fd);
	return r;
}

/* The guest closes while the host is still sending: a frame declaring more
 * than the maximum gets an Error frame and the connection is closed by the
 * agent mid-transfer; the host sees the Error, then EOF or EPIPE. */
static int t_guest_closes_mid_transfer(void)
{
	int fd;
	if (open_agent(&fd))
		return -1;
	uint8_t hdr[4] = {0, 0, 0, 0x40};        /* 1 GiB: over UF_FRAME_MAX */
	int r = write_all(fd, hdr, 4);
	CHECK(r == 0, "header: %s", strerror(-r));
	uint8_t *junk = calloc(1, 1 << 20);
	int wr = 0;
	for (int i = 0; i < 64 && wr == 0; i++)   /* keep sending until refused */
		wr = write_all(fd, junk, 1 << 20);
	free(junk);
	uf_env *env = NULL;
	r = uf_msg_recv(fd, &env, ITEST_IO_MS);
	int got_error = r == 0 && env->msg_case == UFAGENT__ENVELOPE__MSG_ERROR;
	uf_msg_free(env);
	close(fd);
	CHECK(wr != 0, "the agent kept taking 64 MiB of an oversized frame");
	CHECK(got_error, "expected an Error frame before the close (recv: %d)", r);
	if (open_agent(&fd))
		return -1;
	r = itest_echo(fd, 4096, 7);
	close(fd);
	return r;
}

/* A 6 MiB echo read back slowly: the guest must stall on credit (the device
 * buffers at most one connection window), and every byte arrives once. */
static int t_slow_reader_credit_stall(void)
{
	int fd;
	if (open_agent(&fd))
		return -1;
	size_t len = 6u << 20;
	uint8_t *ev = malloc(len);
	itest_fill(ev, len, 99);
	uf_env env = UFAGENT__ENVELOPE__INIT;
	Ufagent__Invoke inv = UFAGENT__INVOKE__INIT;
	inv.call_id = "slow";
	inv.event.data = ev;
	inv.event.len = len;
	uf_msg_wrap(&env, UFAGENT__ENVELOPE__MSG_INVOKE, &inv);
	int r = uf_msg_send(fd, &env, ITEST_IO_MS);
	if (r) {
		free(ev);
		close(fd);
		CHECK(0, "send: %s", strerror(-r));
	}
	/* Read the reply 16 KiB at a time with pauses. */
	size_t cap = len + 65536, got = 0;
	uint8_t *raw = malloc(cap);
	struct timespec pause = {0, 2 * 1000 * 1000};
	uint32_t flen = 0;
	while (got < 4 || got < 4 + (size_t)flen) {
		ssize_t n = read(fd, raw + got, (cap - got) < 16384 ? cap - got : 16384);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got >= 4)
			memcpy(&flen, raw, 4);
		nanosleep(&pause, NULL);
	}
	close(fd);
	uf_env *res = NULL;
	int dr = got >= 4 && got == 4 + (size_t)flen ? uf_msg_decode(raw + 4, flen, &res, NULL) : -1;
	int ok = dr == 0 && res->msg_case == UFAGENT__ENVELOPE__MSG_RESULT &&
		 res->result->body.len == len && memcmp(res->result->body.data, ev, len) == 0;
	uf_msg_free(res);
	free(raw);
	free(ev);
	CHECK(ok, "slow read of a 6 MiB echo: %zu bytes, decode %d, or content differs", got, dr);
	struct vsock_stats st;
	vsock_host_stats(vt.vm.vsock, &st);
	CHECK(st.credit_violations == 0, "guest exceeded its credit %llu times",
	      (unsigned long long)st.credit_violations);
	return 0;
}

static int t_device_counters_clean(void)
{
	struct vsock_stats st;
	vsock_host_stats(vt.vm.vsock, &st);
	printf("    device: %llu packets from the guest, %llu to it, %llu connections\n",
	       (unsigned long long)st.tx_pkts, (unsigned long long)st.rx_pkts,
	       (unsigned long long)st.conns_opened);
	CHECK(st.ring_errors == 0 && st.drop_short == 0 && st.drop_bad_cid == 0 &&
	      st.drop_bad_type == 0 && st.drop_bad_op == 0 && st.drop_bad_len == 0 &&
	      st.rx_bad_buf == 0 && st.credit_violations == 0,
	      "a well-behaved guest tripped the device's hostile-input counters");
	return 0;
}

/* Last: Shutdown makes the guest power off with the status we asked for. */
static int t_shutdown_powers_off(void)
{
	int fd;
	if (open_agent(&fd))
		return -1;
	int r = agent_client_shutdown(fd, 42, ITEST_IO_MS);
	close(fd);
	CHECK(r == 0, "shutdown: %s", strerror(-r));
	r = vmm_vm_thread_join(&vt, 60ull * 1000000000ull);
	CHECK(r == 0, "guest still running 60 s after Shutdown");
	CHECK(vt.exit.kind == VMM_EXIT_STATUS && vt.exit.status == 42, "guest exit: %s", vt.exit.detail);
	return 0;
}

static const struct itest_case cases[] = {
	{"hello_and_ping", t_hello_and_ping},
	{"roundtrips_0_to_6mib", t_roundtrips_0_to_6mib},
	{"16_concurrent_connections", t_16_concurrent_connections},
	{"host_closes_mid_transfer", t_host_closes_mid_transfer},
	{"guest_closes_mid_transfer", t_guest_closes_mid_transfer},
	{"slow_reader_credit_stall", t_slow_reader_credit_stall},
	{"device_counters_clean", t_device_counters_clean},
	{"shutdown_powers_off", t_shutdown_powers_off},
};

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: vsock-itest KERNEL INITRD [TEST...]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct vmm_vm_config cfg = {.mem_size = 256ull << 20, .console_fd = STDERR_FILENO,
				    .vsock_cid = 3};
	if (vmm_vm_thread_start(&vt, &cfg, argv[1], argv[2], ITEST_CMDLINE, 120ull * 1000000000ull)) {
		fprintf(stderr, "vsock-itest: %s\n", vmm_strerror());
		printf("0 passed, 1 failed\n");
		return 1;
	}
	int rc = itest_main(argc, argv, 3, cases, sizeof(cases) / sizeof(cases[0]));
	vmm_vm_thread_release(&vt);
	return rc;
}
