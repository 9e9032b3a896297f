/* sched.c — groups, EDF queues, run slots, weighted fair queueing by
 * virtual time, preemption and expiry (contract in sched.h). */
#include "runtimed/sched.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void list_init(struct sched_item *h)
{
	h->next = h->prev = h;
}

static void unlink_item(struct sched_item *it)
{
	it->prev->next = it->next;
	it->next->prev = it->prev;
	it->next = it->prev = NULL;
}

static void insert_before(struct sched_item *pos, struct sched_item *it)
{
	it->next = pos;
	it->prev = pos->prev;
	pos->prev->next = it;
	pos->prev = it;
}

/* Earlier deadline first; no deadline (0) last; then admission order. */
static bool before(const struct sched_item *a, const struct sched_item *b)
{
	uint64_t da = a->deadline_ns ? a->deadline_ns : UINT64_MAX;
	uint64_t db = b->deadline_ns ? b->deadline_ns : UINT64_MAX;
	return da != db ? da < db : a->seq < b->seq;
}

static void enqueue(struct sched_group *g, struct sched_item *it)
{
	struct sched_item *pos = g->queue.next;
	while (pos != &g->queue && !before(it, pos))
		pos = pos->next;
	insert_before(pos, it);
	it->state = SCHED_QUEUED;
	g->nqueued++;
	if (it->paused)
		g->npaused++;
}

static void dequeue(struct sched_group *g, struct sched_item *it)
{
	unlink_item(it);
	g->nqueued--;
	if (it->paused)
		g->npaused--;
}

static uint64_t charge(uint64_t ns, uint32_t weight)
{
	return ns * SCHED_VT_SCALE / (weight ? weight : 1);
}

static void maybe_free_group(struct sched *s, struct sched_group *g);

static uint32_t clamp_weight(uint32_t w)
{
	return w < 1 ? 1 : w > SCHED_WEIGHT_MAX ? SCHED_WEIGHT_MAX : w;
}

static void group_reweigh(struct sched_group *g)
{
	uint32_t w = 1;
	for (struct sched_member *m = g->members; m; m = m->next)
		if (m->weight > w)
			w = m->weight;
	g->weight = w;
}

void sched_init(struct sched *s, const struct sched_config *cfg)
{
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	if (s->cfg.slots < 1)
		s->cfg.slots = 1;
}

void sched_release(struct sched *s)
{
	while (s->groups) {
		struct sched_group *g = s->groups;
		s->groups = g->next;
		free(g);
	}
}

int sched_join(struct sched *s, struct sched_member *m, const char *name, uint32_t weight)
{
	size_t len = strlen(name);
	if (!len || len > SCHED_GROUP_MAX)
		return -EINVAL;
	struct sched_group *g = s->groups;
	while (g && strcmp(g->name, name) != 0)
		g = g->next;
	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g)
			return -ENOMEM;
		memcpy(g->name, name, len + 1);
		list_init(&g->queue);
		list_init(&g->running);
		g->vt = s->vclock;
		g->next = s->groups;
		s->groups = g;
	}
	m->g = g;
	m->weight = clamp_weight(weight);
	m->next = g->members;
	g->members = m;
	group_reweigh(g);
	return 0;
}

void sched_leave(struct sched *s, struct sched_member *m)
{
	struct sched_group *g = m->g;
	if (!g)
		return;
	for (struct sched_member **pp = &g->members; *pp; pp = &(*pp)->next)
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	m->g = NULL;
	m->next = NULL;
	group_reweigh(g);
	maybe_free_group(s, g);
}

void sched_set_weight(struct sched_member *m, uint32_t weight)
{
	m->weight = clamp_weight(weight);
	if (m->g)
		group_reweigh(m->g);
}

const char *sched_refusal_name(enum sched_refusal r)
{
	switch (r) {
	case SCHED_OK:          return "ok";
	case SCHED_QUEUE_FULL:  return "queue_full";
	case SCHED_INSTANCES:   return "instances";
	case SCHED_TOO_WIDE:    return "too_wide";
	}
	return "unknown";
}

enum sched_refusal sched_admit(struct sched *s, struct sched_member *m, struct sched_item *it,
			       uint32_t k, uint64_t now, uint64_t deadline_ns)
{
	struct sched_group *g = m->g;
	if (!s->cfg.off && k > s->cfg.slots)
		return SCHED_TOO_WIDE;
	if (s->cfg.max_instances && s->admitted >= s->cfg.max_instances)
		return SCHED_INSTANCES;
	if (g->nqueued >= s->cfg.queue_max)
		return SCHED_QUEUE_FULL;
	memset(it, 0, sizeof(*it));
	it->g = g;
	it->k = k ? k : 1;
	it->seq = ++s->seq;
	it->admit_ns = it->queued_ns = now;
	it->deadline_ns = deadline_ns;
	/* A group that was idle starts at the current virtual time: no credit
	 * banked while it had nothing to run. */
	if (!g->nqueued && !g->nrunning && g->vt < s->vclock)
		g->vt = s->vclock;
	enqueue(g, it);
	s->admitted++;
	return SCHED_OK;
}

/* The first call of g in EDF order that can_run accepts. */
static struct sched_item *runnable(struct sched_group *g,
				   bool (*can_run)(const struct sched_item *, void *), void *arg)
{
	for (struct sched_item *it = g->queue.next; it != &g->queue; it = it->next)
		if (!can_run || can_run(it, arg))
			return it;
	return NULL;
}

struct sched_item *sched_pick(struct sched *s, uint64_t now,
			      bool (*can_run)(const struct sched_item *, void *), void *arg)
{
	struct sched_group *best = NULL;
	struct sched_item *bit = NULL;
	for (struct sched_group *g = s->groups; g; g = g->next) {
		if (!g->nqueued)
			continue;
		struct sched_item *it = runnable(g, can_run, arg);
		if (it && (!best || g->vt < best->vt)) {
			best = g;
			bit = it;
		}
	}
	if (!bit)
		return NULL;
	/* Gang: all k slots or none; the slots left free wait for it rather
	 * than go to later calls (which would starve wide ones). */
	if (!s->cfg.off && s->busy + bit->k > s->cfg.slots)
		return NULL;
	dequeue(best, bit);
	insert_before(&best->running, bit);
	bit->state = SCHED_RUNNING;
	best->nrunning++;
	best->dispatches++;
	s->busy += bit->k;
	bit->wait_ns = now - bit->queued_ns;
	bit->run_start_ns = bit->slice_from_ns = now;
	if (best->vt > s->vclock)
		s->vclock = best->vt;
	/* Charged one slice ahead, so that calls dispatched together on
	 * several slots spread across groups; settled when the run ends. */
	bit->vt_advance = s->cfg.off ? 0 : charge(s->cfg.slice_ns * bit->k, best->weight);
	best->vt += bit->vt_advance;
	return bit;
}

/* End a run: free the slots, charge the slot time used. */
static void end_run(struct sched *s, struct sched_item *it, uint64_t now)
{
	struct sched_group *g = it->g;
	uint64_t used = (now > it->run_start_ns ? now - it->run_start_ns : 0) * it->k;
	unlink_item(it);
	g->nrunning--;
	s->busy -= it->k;
	g->vt -= it->vt_advance;
	it->vt_advance = 0;
	g->vt += charge(used, g->weight);
	g->run_ns_total += used;
	it->ran_ns += used;
	it->preempt_sent = false;
}

/* A group its functions left is freed with its last call. */
static void maybe_free_group(struct sched *s, struct sched_group *g)
{
	if (g->members || g->nqueued || g->nrunning)
		return;
	for (struct sched_group **pp = &s->groups; *pp; pp = &(*pp)->next)
		if (*pp == g) {
			*pp = g->next;
			break;
		}
	free(g);
}

void sched_remove(struct sched *s, struct sched_item *it, uint64_t now)
{
	if (it->state == SCHED_RUNNING)
		end_run(s, it, now);
	else if (it->state == SCHED_QUEUED)
		dequeue(it->g, it);
	else
		return;
	it->state = SCHED_NONE;
	s->admitted--;
	maybe_free_group(s, it->g);
	it->g = NULL;
}

void sched_unpick(struct sched *s, struct sched_item *it)
{
	if (it->state != SCHED_RUNNING)
		return;
	struct sched_group *g = it->g;
	unlink_item(it);
	g->nrunning--;
	g->dispatches--;
	s->busy -= it->k;
	g->vt -= it->vt_advance;
	it->vt_advance = 0;
	enqueue(g, it);
}

/* Calls waiting in groups other than g that are owed service before g
 * (less virtual time). */
static uint32_t owed_elsewhere(const struct sched *s, const struct sched_group *g)
{
	uint32_t n = 0;
	for (const struct sched_group *h = s->groups; h; h = h->next)
		if (h != g && h->nqueued && h->vt < g->vt)
			n += h->nqueued;
	return n;
}

struct sched_item *sched_preempt_due(struct sched *s, uint64_t now)
{
	if (s->cfg.off || !s->cfg.slice_ns)
		return NULL;
	uint32_t pending = 0;
	for (struct sched_group *g = s->groups; g; g = g->next)
		for (struct sched_item *it = g->running.next; it != &g->running; it = it->next)
			pending += it->preempt_sent;
	for (struct sched_group *g = s->groups; g; g = g->next) {
		uint32_t owed = owed_elsewhere(s, g);
		if (owed <= pending)
			continue;
		for (struct sched_item *it = g->running.next; it != &g->running; it = it->next)
			if (!it->preempt_sent && now - it->slice_from_ns >= s->cfg.slice_ns) {
				it->preempt_sent = true;
				return it;
			}
	}
	return NULL;
}

void sched_preempted(struct sched *s, struct sched_item *it, uint64_t now, uint64_t ran_ns)
{
	(void)ran_ns; /* the slot was held all along: slot time is charged */
	if (it->state != SCHED_RUNNING)
		return;
	struct sched_group *g = it->g;
	end_run(s, it, now);
	it->paused = true;
	it->preemptions++;
	g->preemptions++;
	it->queued_ns = now;
	enqueue(g, it);
}

void sched_preempt_refused(struct sched_item *it, uint64_t now)
{
	it->preempt_sent = false;
	it->slice_from_ns = now;
}

static bool expired(const struct sched *s, const struct sched_item *it, uint64_t now)
{
	if (it->paused)
		return it->deadline_ns && now >= it->deadline_ns;
	return s->cfg.queue_timeout_ns && now - it->queued_ns >= s->cfg.queue_timeout_ns;
}

struct sched_item *sched_expired(struct sched *s, uint64_t now)
{
	for (struct sched_group *g = s->groups; g; g = g->next)
		for (struct sched_item *it = g->queue.next; it != &g->queue; it = it->next)
			if (expired(s, it, now)) {
				sched_remove(s, it, now);
				return it;
			}
	return NULL;
}

uint64_t sched_next_event(const struct sched *s, uint64_t now)
{
	uint64_t t = UINT64_MAX;
	for (const struct sched_group *g = s->groups; g; g = g->next) {
		for (const struct sched_item *it = g->queue.next; it != &g->queue; it = it->next) {
			uint64_t e = it->paused ? (it->deadline_ns ? it->deadline_ns : UINT64_MAX)
				     : s->cfg.queue_timeout_ns ? it->queued_ns + s->cfg.queue_timeout_ns
				     : UINT64_MAX;
			if (e < t)
				t = e;
		}
		/* A slice's end matters only while another group is owed a
		 * slot, and only once: past it, sched_preempt_due has been
		 * asked (the next change — admission, an end, a preemption
		 * — asks again). */
		if (s->cfg.off || !s->cfg.slice_ns || !owed_elsewhere(s, g))
			continue;
		for (const struct sched_item *it = g->running.next; it != &g->running; it = it->next) {
			uint64_t e = it->slice_from_ns + s->cfg.slice_ns;
			if (!it->preempt_sent && e > now && e < t)
				t = e;
		}
	}
	return t;
}
