/* config.c — flags, environment, defaults, token, artifact hashes
 * (contract in config.h). */
#include "runtimed/config.h"
#include "vmm/err.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

static int set_str(char *dst, size_t cap, const char *v, const char *what)
{
	if (strlen(v) >= cap) {
		fprintf(stderr, "runtimed: %s is too long\n", what);
		return -EINVAL;
	}
	snprintf(dst, cap, "%s", v);
	return 0;
}

static int parse_num(const char *v, uint64_t max, uint64_t *out, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-' || n > max) {
		fprintf(stderr, "runtimed: %s must be a number up to %llu, not '%s'\n", what,
			(unsigned long long)max, v);
		return -EINVAL;
	}
	*out = n;
	return 0;
}

/* The first readable file among candidates: "./x" is relative to the
 * working directory, anything else to the directory of the binary. */
static void find_near(char *out, size_t cap, const char *exe_dir, const char *const *rel)
{
	for (; *rel; rel++) {
		char p[PATH_MAX];
		bool cwd = strncmp(*rel, "./", 2) == 0;
		if ((size_t)snprintf(p, sizeof(p), "%s/%s", cwd ? "." : exe_dir, cwd ? *rel + 2 : *rel) >=
		    sizeof(p))
			continue;
		if (access(p, R_OK) == 0 && realpath(p, out) && strlen(out) < cap)
			return;
	}
	out[0] = 0;
}

static void defaults(struct rt_config *c)
{
	char exe[PATH_MAX], dir[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = 0;
	snprintf(dir, sizeof(dir), "%s", n > 0 ? dirname(exe) : ".");
	snprintf(c->listen, sizeof(c->listen), "127.0.0.1:8080");
	snprintf(c->data, sizeof(c->data), "./var");
	long nc = sysconf(_SC_NPROCESSORS_ONLN);
	c->cpus = nc > 0 ? (unsigned)nc : 1;
	c->drain_s = 30;
	c->queue_max = 256;
	c->queue_timeout_ms = 30000;
	c->slice_ms = 50;
	static const char *const kernel[] = {"../guest/vmlinux", "../../guest/vmlinux",
					     "./build/guest/vmlinux", NULL};
	static const char *const initrd[] = {"../guest/initramfs.cpio", "../../guest/initramfs.cpio",
					     "./build/guest/initramfs.cpio", NULL};
	static const char *const initrd_py[] = {"../guest/initramfs-python.cpio",
						"../../guest/initramfs-python.cpio",
						"./build/guest/initramfs-python.cpio", NULL};
	static const char *const agent[] = {"guest-agent", "../../bin/guest-agent",
					    "./build/bin/guest-agent", NULL};
	static const char *const worker[] = {"uf-worker", NULL};
	find_near(c->kernel, sizeof(c->kernel), dir, kernel);
	find_near(c->initrd, sizeof(c->initrd), dir, initrd);
	find_near(c->initrd_python, sizeof(c->initrd_python), dir, initrd_py);
	find_near(c->agent, sizeof(c->agent), dir, agent);
	find_near(c->worker, sizeof(c->worker), dir, worker);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: runtimed [--listen ADDR] [--data DIR] [--token TOKEN] [--cpus N]\n"
		   "                [--memory-mb N] [--kernel FILE] [--initrd FILE] [--initrd-python FILE]\n"
		   "                [--agent FILE] [--worker FILE] [--drain-s N] [--sched fair|off]\n"
		   "                [--max-instances N] [--queue-max N] [--queue-timeout-ms N]\n"
		   "                [--slice-ms N]\n"
		   "environment: UNIFORK_LISTEN, UNIFORK_DATA, UNIFORK_TOKEN, UNIFORK_CPUS,\n"
		   "  UNIFORK_MEMORY_MB, UNIFORK_KERNEL, UNIFORK_INITRD, UNIFORK_INITRD_PYTHON,\n"
		   "  UNIFORK_AGENT, UNIFORK_WORKER, UNIFORK_SCHED, UNIFORK_MAX_INSTANCES,\n"
		   "  UNIFORK_QUEUE_MAX, UNIFORK_QUEUE_TIMEOUT_MS, UNIFORK_SLICE_MS\n"
		   "  (a flag wins over its variable)\n");
}

/* One option: its flag, its variable, and how to store it. */
static int apply(struct rt_config *c, int key, const char *v)
{
	uint64_t n;
	switch (key) {
	case 'l': return set_str(c->listen, sizeof(c->listen), v, "--listen");
	case 'd': return set_str(c->data, sizeof(c->data), v, "--data");
	case 't': return set_str(c->token, sizeof(c->token), v, "--token");
	case 'k': return set_str(c->kernel, sizeof(c->kernel), v, "--kernel");
	case 'i': return set_str(c->initrd, sizeof(c->initrd), v, "--initrd");
	case 'p': return set_str(c->initrd_python, sizeof(c->initrd_python), v, "--initrd-python");
	case 'a': return set_str(c->agent, sizeof(c->agent), v, "--agent");
	case 'w': return set_str(c->worker, sizeof(c->worker), v, "--worker");
	case 'c':
		if (parse_num(v, 4096, &n, "--cpus") || n == 0)
			return -EINVAL;
		c->cpus = (unsigned)n;
		return 0;
	case 'm':
		if (parse_num(v, 1ull << 30, &n, "--memory-mb"))
			return -EINVAL;
		c->memory_mb = n;
		return 0;
	case 's':
		if (parse_num(v, 3600, &n, "--drain-s"))
			return -EINVAL;
		c->drain_s = (unsigned)n;
		return 0;
	case 'S':
		if (strcmp(v, "fair") && strcmp(v, "off")) {
			fprintf(stderr, "runtimed: --sched must be fair or off, not '%s'\n", v);
			return -EINVAL;
		}
		c->sched_off = strcmp(v, "off") == 0;
		return 0;
	case 'I':
		if (parse_num(v, 1u << 20, &n, "--max-instances"))
			return -EINVAL;
		c->max_instances = (unsigned)n;
		return 0;
	case 'Q':
		if (parse_num(v, 1u << 20, &n, "--queue-max"))
			return -EINVAL;
		c->queue_max = (unsigned)n;
		return 0;
	case 'T':
		if (parse_num(v, 3600000, &n, "--queue-timeout-ms") || n == 0) {
			fprintf(stderr, "runtimed: --queue-timeout-ms must be at least 1\n");
			return -EINVAL;
		}
		c->queue_timeout_ms = (unsigned)n;
		return 0;
	case 'L':
		if (parse_num(v, 3600000, &n, "--slice-ms"))
			return -EINVAL;
		c->slice_ms = (unsigned)n;
		return 0;
	}
	return -EINVAL;
}

int rt_config_parse(struct rt_config *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{"listen", required_argument, 0, 'l'}, {"data", required_argument, 0, 'd'},
		{"token", required_argument, 0, 't'},  {"cpus", required_argument, 0, 'c'},
		{"memory-mb", required_argument, 0, 'm'}, {"kernel", required_argument, 0, 'k'},
		{"initrd", required_argument, 0, 'i'}, {"initrd-python", required_argument, 0, 'p'},
		{"agent", required_argument, 0, 'a'},  {"worker", required_argument, 0, 'w'},
		{"drain-s", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'},
		{"sched", required_argument, 0, 'S'}, {"max-instances", required_argument, 0, 'I'},
		{"queue-max", required_argument, 0, 'Q'},
		{"queue-timeout-ms", required_argument, 0, 'T'},
		{"slice-ms", required_argument, 0, 'L'},
		{0, 0, 0, 0},
	};
	static const struct { int key; const char *var; } envs[] = {
		{'l', "UNIFORK_LISTEN"}, {'d', "UNIFORK_DATA"}, {'t', "UNIFORK_TOKEN"},
		{'c', "UNIFORK_CPUS"}, {'m', "UNIFORK_MEMORY_MB"}, {'k', "UNIFORK_KERNEL"},
		{'i', "UNIFORK_INITRD"}, {'p', "UNIFORK_INITRD_PYTHON"}, {'a', "UNIFORK_AGENT"},
		{'w', "UNIFORK_WORKER"}, {'S', "UNIFORK_SCHED"}, {'I', "UNIFORK_MAX_INSTANCES"},
		{'Q', "UNIFORK_QUEUE_MAX"}, {'T', "UNIFORK_QUEUE_TIMEOUT_MS"},
		{'L', "UNIFORK_SLICE_MS"},
	};
	memset(c, 0, sizeof(*c));
	defaults(c);
	for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
		const char *v = getenv(envs[i].var);
		if (v && *v && apply(c, envs[i].key, v))
			return -EINVAL;
	}
	int k;
	optind = 1;
	while ((k = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (k == 'h') {
			usage(stdout);
			return 1;
		}
		if (k == '?' || apply(c, k, optarg)) {
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	if (!c->kernel[0] || !c->initrd[0] || !c->worker[0]) {
		fprintf(stderr, "runtimed: %s not found (build it with make, or pass %s)\n",
			!c->kernel[0] ? "the guest kernel" : !c->initrd[0] ? "the initramfs" : "uf-worker",
			!c->kernel[0] ? "--kernel" : !c->initrd[0] ? "--initrd" : "--worker");
		return -EINVAL;
	}
	return 0;
}

/* Read DATA/token, or write a fresh one there (0600, O_EXCL). */
static int load_token(struct rt_config *c)
{
	char path[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/token", c->data);
	FILE *f = fopen(path, "re");
	if (f) {
		char *ok = fgets(c->token, sizeof(c->token), f);
		fclose(f);
		c->token[strcspn(c->token, "\r\n")] = 0;
		if (ok && c->token[0])
			return 0;
		return vmm_err(-EINVAL, "%s is empty: remove it to have a new token made", path);
	}
	if (errno != ENOENT)
		return vmm_errno(-errno, "read %s", path);
	uint8_t rnd[RT_TOKEN_BYTES];
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return vmm_errno(-errno, "getrandom");
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(c->token + 2 * i, 3, "%02x", rnd[i]);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return vmm_errno(-errno, "create %s", path);
	size_t len = strlen(c->token);
	int r = 0;
	if (write(fd, c->token, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) < 0)
		r = vmm_errno(-errno, "write %s", path);
	close(fd);
	return r;
}

static int hash(const char *path, uint8_t out[SNAP_SHA256_LEN])
{
	memset(out, 0, SNAP_SHA256_LEN);
	return path[0] ? snap_sha256_file(path, out) : 0;
}

int rt_config_prepare(struct rt_config *c)
{
	char abs[PATH_MAX];
	if (mkdir(c->data, 0700) < 0 && errno != EEXIST)
		return vmm_errno(-errno, "create the data directory %s", c->data);
	if (!realpath(c->data, abs))
		return vmm_errno(-errno, "data directory %s", c->data);
	snprintf(c->data, sizeof(c->data), "%s", abs);
	if (!c->token[0]) {
		int r = load_token(c);
		if (r)
			return r;
	}
	int r;
	if ((r = hash(c->kernel, c->origin.kernel)) || (r = hash(c->initrd, c->origin.initrd)) ||
	    (r = hash(c->agent, c->origin.agent)))
		return r;
	c->origin_python = c->origin;
	if (c->initrd_python[0] && (r = hash(c->initrd_python, c->origin_python.initrd)))
		return r;
	return 0;
}

const char *rt_config_initrd(const struct rt_config *c, const char *runtime)
{
	if (strcmp(runtime, "python") == 0 && c->initrd_python[0])
		return c->initrd_python;
	return c->initrd;
}

const struct snap_origin *rt_config_origin(const struct rt_config *c, const char *runtime)
{
	if (strcmp(runtime, "python") == 0 && c->initrd_python[0])
		return &c->origin_python;
	return &c->origin;
}

void rt_config_origin_arg(const struct snap_origin *o, char *out, size_t cap)
{
	char k[2 * SNAP_SHA256_LEN + 1], i[2 * SNAP_SHA256_LEN + 1], a[2 * SNAP_SHA256_LEN + 1];
	snap_hex(o->kernel, SNAP_SHA256_LEN, k);
	snap_hex(o->initrd, SNAP_SHA256_LEN, i);
	snap_hex(o->agent, SNAP_SHA256_LEN, a);
	snprintf(out, cap, "%s:%s:%s", snap_hash_known(o->kernel) ? k : "",
		 snap_hash_known(o->initrd) ? i : "", snap_hash_known(o->agent) ? a : "");
}
