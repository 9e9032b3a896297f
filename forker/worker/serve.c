/* serve.c — `uf-worker serve`: open the function's template, start the
 * pool, say Ready, then read runtimed's frames until Drain or EOF
 * (contract in worker.h and proto/worker.proto).
 *
 *   uf-worker serve --fd N --template DIR [--origin KHEX:IHEX:AHEX]
 *                   [--timeout-ms N] [--min-warm N] [--max-instances N]
 *                   [--idle-timeout-s N]
 */
#include "forker/worker/jail_worker.h"
#include "forker/worker/worker.h"
#include "vmm/err.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* How long Ready waits for the first min_warm clones. */
#define WARM_AT_START_MS 60000

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > UINT32_MAX || s[0] == '-')
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	return s[2 * n] == 0 || s[2 * n] == ':' ? 0 : -EINVAL;
}

int worker_parse_origin(const char *s, struct snap_origin *o)
{
	memset(o, 0, sizeof(*o));
	uint8_t *parts[3] = {o->kernel, o->initrd, o->agent};
	for (int i = 0; i < 3; i++) {
		const char *end = strchr(s, ':');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		if (len && (len != 2 * SNAP_SHA256_LEN || unhex(s, parts[i], SNAP_SHA256_LEN)))
			return -EINVAL;
		if (!end)
			return i == 2 ? 0 : -EINVAL;
		s = end + 1;
	}
	return -EINVAL;
}

static void send_stats(struct worker_serve *s, uint64_t nonce)
{
	struct wpool_stats st;
	wpool_stats(&s->pool, &st);
	Ufworker__PoolConfig pc = UFWORKER__POOL_CONFIG__INIT;
	pc.min_warm = st.knobs.min_warm;
	pc.max_instances = st.knobs.max_instances;
	pc.idle_timeout_s = st.knobs.idle_timeout_s;
	Ufworker__Stats m = UFWORKER__STATS__INIT;
	m.nonce = nonce;
	m.live = st.live;
	m.warm = st.warm;
	m.busy = st.busy;
	m.invocations = atomic_load(&s->invocations);
	m.clone_starts = st.clone_starts;
	m.warm_starts = st.warm_starts;
	m.clone_failures = st.clone_failures;
	m.timeouts = atomic_load(&s->timeouts);
	m.crashes = atomic_load(&s->crashes);
	m.expired = st.expired;
	m.pool = &pc;
	uf_wmsg w = UFWORKER__WORKER_MSG__INIT;
	uf_wmsg_wrap(&w, UFWORKER__WORKER_MSG__MSG_STATS, &m);
	int r = worker_send(s, &w);
	if (r)
		fprintf(stderr, "uf-worker: stats not sent: %s\n", strerror(-r));
}

/* Preempt: park the call's vCPU and say so; Preempted{not_paused} when it
 * could not be (not running yet, over, stopped, slow to park). */
static void preempt(struct worker_serve *s, const char *call_id)
{
	Ufworker__Preempted p = UFWORKER__PREEMPTED__INIT;
	p.call_id = (char *)call_id;
	int r = wwatch_pause(&s->watch, call_id, &p.ran_us);
	p.not_paused = r != 0;
	if (r == -ETIMEDOUT)
		fprintf(stderr, "uf-worker: %s: vCPU did not park: %s\n", call_id, vmm_strerror());
	uf_wmsg m = UFWORKER__WORKER_MSG__INIT;
	uf_wmsg_wrap(&m, UFWORKER__WORKER_MSG__MSG_PREEMPTED, &p);
	if ((r = worker_send(s, &m)))
		fprintf(stderr, "uf-worker: preempted not sent: %s\n", strerror(-r));
}

static void drain(struct worker_serve *s)
{
	atomic_store(&s->draining, true);
	wwatch_resume_all(&s->watch);
	wpool_wait_idle(&s->pool);
	while (atomic_load(&s->threads))
		usleep(1000);
	wpool_release(&s->pool);
	wwatch_stop(&s->watch);
	worker_tmpl_close(&s->tmpl);
}

/* Serve frames until Drain (0) or until runtimed goes away (-errno). */
static int serve_loop(struct worker_serve *s)
{
	for (;;) {
		uf_wmsg *m;
		int r = uf_wmsg_recv(s->sock, &m, -1);
		if (r == UF_FRAME_CLOSED)
			return -EPIPE;
		if (r) {
			fprintf(stderr, "uf-worker: bad frame from runtimed: %s\n", strerror(-r));
			return r;
		}
		switch (m->msg_case) {
		case UFWORKER__WORKER_MSG__MSG_INVOKE:
			if (atomic_load(&s->draining)) {
				worker_answer_error(s, m->invoke->call_id, 503,
						    UFWORKER__ERROR_KIND__ERROR_DRAINING, "the worker is draining");
			} else if (!wpool_admit(&s->pool)) {
				worker_answer_error(s, m->invoke->call_id, 429,
						    UFWORKER__ERROR_KIND__ERROR_NO_CAPACITY,
						    "max_instances calls are in flight");
			} else {
				worker_call_start(s, m);
				continue; /* the call owns m now */
			}
			break;
		case UFWORKER__WORKER_MSG__MSG_POOL: {
			struct wpool_knobs k = {m->pool->min_warm, m->pool->max_instances,
						m->pool->idle_timeout_s};
			wpool_set_knobs(&s->pool, &k);
			send_stats(s, 0);
			break;
		}
		case UFWORKER__WORKER_MSG__MSG_STATS_REQUEST:
			send_stats(s, m->stats_request->nonce);
			break;
		case UFWORKER__WORKER_MSG__MSG_PREEMPT:
			preempt(s, m->preempt->call_id);
			break;
		case UFWORKER__WORKER_MSG__MSG_RESUME:
			/* false: no such paused call, it ended meanwhile
			 * (its Result is sent or on its way): nothing to do. */
			wwatch_resume(&s->watch, m->resume->call_id);
			break;
		case UFWORKER__WORKER_MSG__MSG_DRAIN:
			uf_wmsg_free(m);
			return 0;
		default:
			fprintf(stderr, "uf-worker: unexpected %s from runtimed\n",
				uf_wmsg_type_name(m->msg_case));
			break;
		}
		uf_wmsg_free(m);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: uf-worker serve --fd N --template DIR [--origin KHEX:IHEX:AHEX]\n"
			"         [--timeout-ms N] [--min-warm N] [--max-instances N] [--idle-timeout-s N]\n");
}

int worker_serve_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"fd", required_argument, 0, 'f'}, {"template", required_argument, 0, 't'},
		{"origin", required_argument, 0, 'o'}, {"timeout-ms", required_argument, 0, 'T'},
		{"min-warm", required_argument, 0, 'w'}, {"max-instances", required_argument, 0, 'm'},
		{"idle-timeout-s", required_argument, 0, 'i'}, {0, 0, 0, 0},
	};
	static struct worker_serve s;
	struct wpool_knobs k = {.min_warm = 0, .max_instances = 64, .idle_timeout_s = 300};
	struct snap_origin origin = {0};
	const char *dir = NULL;
	uint32_t fd = UINT32_MAX;
	s.default_deadline_ms = 3000;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case 'f': bad = parse_u32(optarg, &fd); break;
		case 't': dir = optarg; break;
		case 'o': bad = worker_parse_origin(optarg, &origin); break;
		case 'T': bad = parse_u32(optarg, &s.default_deadline_ms); break;
		case 'w': bad = parse_u32(optarg, &k.min_warm); break;
		case 'm': bad = parse_u32(optarg, &k.max_instances); break;
		case 'i': bad = parse_u32(optarg, &k.idle_timeout_s); break;
		default: bad = 1; break;
		}
		if (bad) {
			usage();
			return 2;
		}
	}
	if (!dir || fd > 1024 || optind != argc || k.max_instances == 0) {
		usage();
		return 2;
	}
	/* Die with runtimed, whatever the reason it went away. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	s.sock = (int)fd;
	if (worker_jail_serve(&dir, s.sock)) {
		fprintf(stderr, "uf-worker: %s\n", vmm_strerror());
		return 3;
	}
	pthread_mutex_init(&s.wlock, NULL);
	if (worker_tmpl_open(&s.tmpl, dir, &origin)) {
		fprintf(stderr, "uf-worker: template %s: %s\n", dir, vmm_strerror());
		return 3;
	}
	worker_tmpl_set_shells(&s.tmpl, WORKER_SHELLS_AHEAD);
	if (wwatch_start(&s.watch) || wpool_init(&s.pool, &s.tmpl, &k) || wpool_start(&s.pool)) {
		fprintf(stderr, "uf-worker: pool: %s\n", vmm_strerror());
		return 1;
	}
	uint32_t warm = k.min_warm ? wpool_wait_warm(&s.pool, k.min_warm, WARM_AT_START_MS) : 0;
	Ufworker__Ready rd = UFWORKER__READY__INIT;
	rd.pid = (uint32_t)getpid();
	rd.template_bytes = s.tmpl.vt.img.mem_file_alloc;
	rd.mem_bytes = s.tmpl.cfg.mem_size;
	rd.warm = warm;
	uf_wmsg w = UFWORKER__WORKER_MSG__INIT;
	uf_wmsg_wrap(&w, UFWORKER__WORKER_MSG__MSG_READY, &rd);
	if (worker_send(&s, &w)) {
		fprintf(stderr, "uf-worker: runtimed went away before Ready\n");
		_exit(1);
	}
	int r = serve_loop(&s);
	if (r) {
		/* runtimed is gone or broke the protocol: nobody is waiting for
		 * answers; the process's exit kills every clone. */
		_exit(r == -EPIPE ? 0 : 1);
	}
	drain(&s);
	close(s.sock);
	return 0;
}
