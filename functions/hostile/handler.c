/* hostile — an exec function (functions/sdk/EXEC.md) that attacks its own
 * VM from inside, as root: the guest is the attacker, the VMM (uf-worker)
 * and the rest of the host must survive it (tests/faults/run.sh).
 *
 * The event is "MODE [N]"; each mode does its damage N times and, if the
 * guest still works afterwards, answers 200 "survived MODE N".  Modes that
 * break the guest's own devices usually never answer: the host sees a
 * dead clone (502) or a missed deadline (504).
 *
 *   ok          answer at once ("alive")
 *   io N        N random port reads/writes (iopl(3)), any port, any size
 *   mmio N      N random reads/writes in the virtio-mmio window (/dev/mem)
 *   rings N     N rounds: random descriptors and avail entries written into
 *               the live queues the guest's driver set up, every queue kicked
 *   virtq N     (mostly after one `rings` round) N rounds: reset the device, fill a random guest RAM
 *               page with random descriptors / rings, point the queues at it
 *               (or at random addresses), set DRIVER_OK, kick every queue
 *   vsock N     N connections to the host (CID 2) and random CIDs on random
 *               ports, kept open, junk written on those that connect
 *   console N   N KiB written to /dev/console (the 8250)
 *   logs N      N KiB written to stderr (the call's logs: capped at 64 KiB)
 *   big N       a body of N KiB (over 6 MiB: a protocol violation)
 *   mem N       allocate and touch N MiB (past the clone's RAM: OOM)
 *   spin        never answer (the deadline: 504)
 *   reboot      reboot(2): the guest resets the VM (i8042 / triple fault)
 *   all N       io, mmio, virtq and vsock, N each, in random order
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <unistd.h>

#include "uf_exec.h"

#define PAGE 4096ull

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static void rnd_fill(void *p, size_t n)
{
	uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)rnd();
}

/* --- where things are: the virtio-mmio window and guest RAM. */

static uint64_t mmio_base(void)
{
	char buf[4096];
	int fd = open("/proc/cmdline", O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 0xd0000000ull;
	buf[n] = 0;
	const char *p = strstr(buf, "virtio_mmio.device=");
	p = p ? strchr(p, '@') : NULL;
	return p ? strtoull(p + 1, NULL, 0) : 0xd0000000ull;
}

static uint64_t ram_lo = 1ull << 20, ram_hi = 64ull << 20;

static void find_ram(void)
{
	FILE *f = fopen("/proc/iomem", "r");
	char line[256];
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long long a, b;
		if (strstr(line, "System RAM") && sscanf(line, "%llx-%llx", &a, &b) == 2 &&
		    b - a > ram_hi - ram_lo) {
			ram_lo = a;
			ram_hi = b + 1;
		}
	}
	if (f)
		fclose(f);
}

static uint64_t rnd_ram_page(void)
{
	return (ram_lo + rnd() % (ram_hi - ram_lo)) & ~(PAGE - 1);
}

static int devmem = -1;

static void *map_phys(uint64_t pa)
{
	if (devmem < 0 && (devmem = open("/dev/mem", O_RDWR | O_SYNC)) < 0) {
		fprintf(stderr, "hostile: /dev/mem: %s\n", strerror(errno));
		return NULL;
	}
	void *p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, devmem, (off_t)pa);
	if (p == MAP_FAILED) {
		fprintf(stderr, "hostile: /dev/mem at 0x%llx: %s\n", (unsigned long long)pa, strerror(errno));
		return NULL;
	}
	return p;
}

/* --- the attacks.  Each returns how many operations it did. */

static unsigned attack_io(unsigned n)
{
	if (iopl(3) < 0)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		uint16_t port = (uint16_t)rnd();
		uint32_t v = (uint32_t)rnd();
		switch (rnd() % 6) {
		case 0: outb((uint8_t)v, port); break;
		case 1: outw((uint16_t)v, port); break;
		case 2: outl(v, port); break;
		case 3: (void)inb(port); break;
		case 4: (void)inw(port); break;
		default: (void)inl(port); break;
		}
	}
	return n;
}

static unsigned attack_mmio(unsigned n)
{
	volatile uint8_t *w = map_phys(mmio_base());
	if (!w)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		unsigned off = (unsigned)(rnd() % PAGE);
		uint32_t v = (uint32_t)rnd();
		if (rnd() % 4 == 0)
			off &= 0x1fc;           /* the registers proper */
		switch (rnd() % 5) {
		case 0: w[off] = (uint8_t)v; break;
		case 1: *(volatile uint16_t *)(w + (off & ~1u)) = (uint16_t)v; break;
		case 2: *(volatile uint32_t *)(w + (off & ~3u)) = v; break;
		case 3: *(volatile uint64_t *)(w + (off & ~7u) % (PAGE - 8)) = rnd(); break;
		default: (void)*(volatile uint32_t *)(w + (off & ~3u)); break;
		}
	}
	munmap((void *)w, PAGE);
	return n;
}

static void reg(volatile uint8_t *w, unsigned off, uint32_t v)
{
	*(volatile uint32_t *)(w + off) = v;
}

/* An address for a queue part: mostly a page of random bytes in RAM, else
 * something wild (unaligned, past RAM, the MMIO window, above 4 GiB). */
static uint64_t queue_addr(uint64_t page)
{
	switch (rnd() % 6) {
	case 0: return rnd();
	case 1: return ram_hi - (rnd() % 64);
	case 2: return mmio_base() + (rnd() % PAGE);
	default: return page + (rnd() % 4) * 1024 + (rnd() % 4 ? 0 : rnd() % 16);
	}
}

static uint64_t reg64(volatile uint8_t *w, unsigned lo)
{
	return *(volatile uint32_t *)(w + lo) | (uint64_t)*(volatile uint32_t *)(w + lo + 4) << 32;
}

/* Scribble the live queues the guest's driver set up: random descriptors
 * in the descriptor table, a random avail index and entries, then kick.
 * The device reads them while the connection to the host is still open. */
static void scribble_live(volatile uint8_t *w)
{
	for (uint32_t q = 0; q < 3; q++) {
		reg(w, VIRTIO_MMIO_QUEUE_SEL, q);
		uint64_t part[2] = {reg64(w, VIRTIO_MMIO_QUEUE_DESC_LOW), reg64(w, VIRTIO_MMIO_QUEUE_AVAIL_LOW)};
		for (int k = 0; k < 2; k++) {
			uint8_t *p = part[k] ? map_phys(part[k] & ~(PAGE - 1)) : NULL;
			if (!p)
				continue;
			size_t off = part[k] & (PAGE - 1);
			size_t len = PAGE - off < 1024 ? PAGE - off : 1024;
			if (k == 0) {
				rnd_fill(p + off, len);
			} else {        /* avail: flags, idx, ring[] */
				uint16_t idx = (uint16_t)rnd();
				rnd_fill(p + off + 4, len - 4);
				memcpy(p + off + 2, &idx, 2);
			}
			munmap(p, PAGE);
		}
		reg(w, VIRTIO_MMIO_QUEUE_NOTIFY, q);
	}
}

static unsigned attack_rings(unsigned n)
{
	volatile uint8_t *w = map_phys(mmio_base());
	if (!w)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		scribble_live(w);
		usleep(100 * 1000);
	}
	munmap((void *)w, PAGE);
	return n;
}

static unsigned attack_virtq(unsigned n)
{
	volatile uint8_t *w = map_phys(mmio_base());
	if (!w)
		return 0;
	unsigned done = 0;
	if (rnd() % 4) {
		scribble_live(w);
		usleep(200 * 1000);     /* let the device thread chew on it */
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t pa = rnd_ram_page();
		uint8_t *page = map_phys(pa);
		if (page) {
			rnd_fill(page, PAGE);
			/* Some plausible descriptors: in-RAM buffers, chains,
			 * loops, indirect tables pointing back at the page. */
			for (unsigned d = 0; d < 64; d++) {
				uint8_t *e = page + 16 * d;
				uint64_t a = rnd() % 3 ? pa + rnd() % PAGE : rnd();
				memcpy(e, &a, 8);
				uint32_t len = rnd() % 2 ? (uint32_t)(rnd() % 8192) : (uint32_t)rnd();
				memcpy(e + 8, &len, 4);
				uint16_t fl = (uint16_t)(rnd() % 8), next = (uint16_t)(rnd() % 80);
				memcpy(e + 12, &fl, 2);
				memcpy(e + 14, &next, 2);
			}
			munmap(page, PAGE);
		}
		if (rnd() % 2)
			reg(w, VIRTIO_MMIO_STATUS, 0);
		reg(w, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
		/* Mostly a subset of what the device offers (so it goes live
		 * and reads the rings), now and then anything. */
		for (uint32_t sel = 0; sel < 2; sel++) {
			reg(w, VIRTIO_MMIO_DEVICE_FEATURES_SEL, sel);
			uint32_t offered = *(volatile uint32_t *)(w + VIRTIO_MMIO_DEVICE_FEATURES);
			uint32_t f = rnd() % 8 ? offered & (uint32_t)rnd() : (uint32_t)rnd();
			if (sel == 1)
				f |= 1;         /* VIRTIO_F_VERSION_1 */
			reg(w, VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
			reg(w, VIRTIO_MMIO_DRIVER_FEATURES, f);
		}
		reg(w, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
					  VIRTIO_CONFIG_S_FEATURES_OK);
		for (uint32_t q = 0; q < 4; q++) {
			reg(w, VIRTIO_MMIO_QUEUE_SEL, q);
			reg(w, VIRTIO_MMIO_QUEUE_NUM, rnd() % 4 ? 1u << (rnd() % 9) : (uint32_t)rnd());
			uint64_t a[3] = {queue_addr(pa), queue_addr(pa), queue_addr(pa)};
			reg(w, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)a[0]);
			reg(w, VIRTIO_MMIO_QUEUE_DESC_HIGH, rnd() % 8 ? 0 : (uint32_t)(a[0] >> 32));
			reg(w, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)a[1]);
			reg(w, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, rnd() % 8 ? 0 : (uint32_t)(a[1] >> 32));
			reg(w, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)a[2]);
			reg(w, VIRTIO_MMIO_QUEUE_USED_HIGH, rnd() % 8 ? 0 : (uint32_t)(a[2] >> 32));
			reg(w, VIRTIO_MMIO_QUEUE_READY, 1);
		}
		reg(w, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
					  VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
		for (unsigned k = 0; k < 8; k++)
			reg(w, VIRTIO_MMIO_QUEUE_NOTIFY, (uint32_t)(rnd() % 4));
		reg(w, VIRTIO_MMIO_INTERRUPT_ACK, (uint32_t)rnd());
		done++;
	}
	munmap((void *)w, PAGE);
	return done;
}

static unsigned attack_vsock(unsigned n)
{
	static int fds[1024];
	unsigned nfd = 0, connected = 0;
	uint8_t junk[4096];
	for (unsigned i = 0; i < n; i++) {
		int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (fd < 0)
			break;
		struct sockaddr_vm a = {.svm_family = AF_VSOCK,
					.svm_cid = rnd() % 4 ? VMADDR_CID_HOST : (unsigned)rnd(),
					.svm_port = rnd() % 2 ? (unsigned)(rnd() % 16) + 5000 : (unsigned)rnd()};
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EINPROGRESS) {
			rnd_fill(junk, sizeof(junk));
			if (write(fd, junk, 1 + rnd() % sizeof(junk)) > 0)
				connected++;
		}
		if (nfd < sizeof(fds) / sizeof(fds[0]))
			fds[nfd++] = fd;
		else
			close(fd);
	}
	for (unsigned i = 0; i < nfd; i++)
		close(fds[i]);
	fprintf(stderr, "hostile: vsock: %u sockets, %u took bytes\n", n, connected);
	return n;
}

static unsigned write_kib(int fd, unsigned kib, char c)
{
	char buf[1024];
	memset(buf, c, sizeof(buf));
	buf[sizeof(buf) - 1] = '\n';
	unsigned i;
	for (i = 0; i < kib; i++)
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			break;
	return i;
}

static unsigned attack_mem(unsigned mib)
{
	unsigned i;
	for (i = 0; i < mib; i++) {
		char *p = malloc(1 << 20);
		if (!p)
			break;
		memset(p, (int)i | 1, 1 << 20);     /* touched: really used */
	}
	return i;                               /* leaked on purpose */
}

static int serve(const char *ev, size_t len)
{
	char mode[16] = "";
	unsigned n = 100;
	char text[64];
	snprintf(text, sizeof(text), "%.*s", (int)(len < 63 ? len : 63), ev);
	if (sscanf(text, "%15s %u", mode, &n) < 1)
		return uf_exec_respond(400, "usage: MODE [N]\n", 16);

	unsigned done = 0;
	char *big = NULL;
	if (!strcmp(mode, "ok")) {
		return uf_exec_respond(200, "alive\n", 6);
	} else if (!strcmp(mode, "io")) {
		done = attack_io(n);
	} else if (!strcmp(mode, "mmio")) {
		done = attack_mmio(n);
	} else if (!strcmp(mode, "rings")) {
		done = attack_rings(n);
	} else if (!strcmp(mode, "virtq")) {
		done = attack_virtq(n);
	} else if (!strcmp(mode, "vsock")) {
		done = attack_vsock(n);
	} else if (!strcmp(mode, "console")) {
		int fd = open("/dev/console", O_WRONLY | O_NOCTTY);
		done = fd >= 0 ? write_kib(fd, n, 'c') : 0;
		if (fd >= 0)
			close(fd);
	} else if (!strcmp(mode, "logs")) {
		done = write_kib(2, n, 'l');
	} else if (!strcmp(mode, "mem")) {
		done = attack_mem(n);
	} else if (!strcmp(mode, "big")) {
		if (!(big = malloc((size_t)n << 10)))
			return uf_exec_respond(500, "no memory\n", 10);
		memset(big, 'b', (size_t)n << 10);
		int r = uf_exec_respond(200, big, (size_t)n << 10);
		free(big);
		return r;
	} else if (!strcmp(mode, "spin")) {
		for (;;)
			pause();
	} else if (!strcmp(mode, "reboot")) {
		sync();
		reboot(RB_AUTOBOOT);
		return uf_exec_respond(500, "reboot failed\n", 14);
	} else if (!strcmp(mode, "all")) {
		for (unsigned k = 0; k < 4; k++) {
			switch ((rnd() + k) % 4) {
			case 0: done += attack_io(n); break;
			case 1: done += attack_mmio(n); break;
			case 2: done += attack_virtq(n); break;
			default: done += attack_vsock(n); break;
			}
		}
	} else {
		return uf_exec_respond(400, "unknown mode\n", 13);
	}
	char body[96];
	int m = snprintf(body, sizeof(body), "survived %s %u (%u done)\n", mode, n, done);
	return uf_exec_respond(200, body, (size_t)m);
}

int main(void)
{
	/* Fresh per clone: reseeded at every call from the kernel's pool,
	 * which the agent reseeds in each clone. */
	if (uf_exec_ready() < 0)
		return 1;
	find_ram();
	uint8_t *ev;
	size_t len;
	int rc;
	while ((rc = uf_exec_read(&ev, &len)) > 0) {
		if (getrandom(&rng_state, sizeof(rng_state), 0) != sizeof(rng_state) || !rng_state)
			rng_state = 0x9e3779b97f4a7c15ull;
		int r = serve((const char *)ev, len);
		free(ev);
		if (r < 0)
			return 1;
	}
	return rc < 0 ? 1 : 0;
}
