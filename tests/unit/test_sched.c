/* test_sched.c — runtimed/sched.c with injected time: weighted shares,
 * EDF inside a group, queue bound and timeout, gangs, preemption
 * accounting, group weights, removal. */
#include "runtimed/sched.h"
#include "tests/unit/ut.h"

#include <stdlib.h>
#include <string.h>

#define MS 1000000ull

static struct sched_config cfg(uint32_t slots)
{
	struct sched_config c = {.slots = slots, .queue_max = 64, .queue_timeout_ns = 1000 * MS,
				 .slice_ns = 50 * MS};
	return c;
}

/* Keep both groups backlogged with calls of `run` ns on one slot for
 * `rounds` dispatches; returns the dispatches each group got. */
static void saturate(struct sched *s, struct sched_member *a, struct sched_member *b,
		     uint64_t run, int rounds, int *na, int *nb)
{
	struct sched_item ia[4], ib[4];
	uint64_t now = 1;
	for (int i = 0; i < 4; i++) {
		UT_EQ(sched_admit(s, a, &ia[i], 1, now, 0), SCHED_OK);
		UT_EQ(sched_admit(s, b, &ib[i], 1, now, 0), SCHED_OK);
	}
	*na = *nb = 0;
	for (int r = 0; r < rounds; r++) {
		struct sched_item *it = sched_pick(s, now, NULL, NULL);
		UT_ASSERT(it != NULL);
		UT_ASSERT(sched_pick(s, now, NULL, NULL) == NULL); /* one slot */
		bool isa = it->g == a->g;
		now += run;
		sched_remove(s, it, now);
		UT_ASSERT(it->g == NULL);
		*(isa ? na : nb) += 1;
		UT_EQ(sched_admit(s, isa ? a : b, it, 1, now, 0), SCHED_OK); /* backlog */
	}
	for (int i = 0; i < 4; i++) {
		sched_remove(s, &ia[i], now);
		sched_remove(s, &ib[i], now);
	}
}

UT_TEST(sched_shares_1_to_3)
{
	struct sched s;
	struct sched_config c = cfg(1);
	sched_init(&s, &c);
	struct sched_member a, b;
	UT_EQ(sched_join(&s, &a, "light", 1), 0);
	UT_EQ(sched_join(&s, &b, "heavy", 3), 0);
	int na, nb;
	saturate(&s, &a, &b, 10 * MS, 400, &na, &nb);
	UT_EQ(na + nb, 400);
	/* Exact in virtual time, to one call of either group. */
	UT_ASSERT(abs(nb - 3 * na) <= 3);
	UT_ASSERT(abs((int)(b.g->run_ns_total / MS) - 3 * (int)(a.g->run_ns_total / MS)) <= 30);
	UT_EQ(s.busy, 0u);
	UT_EQ(s.admitted, 0u);
	sched_leave(&s, &a);
	sched_leave(&s, &b);
	UT_ASSERT(s.groups == NULL);
	sched_release(&s);
}

/* Charged by time used: a group whose calls are 3x longer gets a third
 * of the dispatches at equal weights. */
static void unequal_runs(void)
{
	struct sched s;
	struct sched_config c = cfg(1);
	sched_init(&s, &c);
	struct sched_member a, b;
	UT_EQ(sched_join(&s, &a, "short", 1), 0);
	UT_EQ(sched_join(&s, &b, "long", 1), 0);
	struct sched_item ia, ib;
	uint64_t now = 1;
	UT_EQ(sched_admit(&s, &a, &ia, 1, now, 0), SCHED_OK);
	UT_EQ(sched_admit(&s, &b, &ib, 1, now, 0), SCHED_OK);
	for (int r = 0; r < 400; r++) {
		struct sched_item *it = sched_pick(&s, now, NULL, NULL);
		UT_ASSERT(it != NULL);
		bool isa = it->g == a.g;
		now += isa ? 10 * MS : 30 * MS;
		sched_remove(&s, it, now);
		UT_EQ(sched_admit(&s, isa ? &a : &b, it, 1, now, 0), SCHED_OK);
	}
	int64_t ra = (int64_t)a.g->run_ns_total, rb = (int64_t)b.g->run_ns_total;
	UT_ASSERT(llabs(ra - rb) <= (int64_t)(30 * MS));
	sched_remove(&s, &ia, now);
	sched_remove(&s, &ib, now);
	sched_leave(&s, &a);
	sched_leave(&s, &b);
	sched_release(&s);
}

UT_TEST(sched_charged_by_time_used)
{
	unequal_runs();
}

UT_TEST(sched_edf_in_group)
{
	struct sched s;
	struct sched_config c = cfg(1);
	sched_init(&s, &c);
	struct sched_member m;
	UT_EQ(sched_join(&s, &m, "f", 1), 0);
	struct sched_item it[5];
	uint64_t dl[5] = {500, 100, 0, 300, 100};
	for (int i = 0; i < 5; i++)
		UT_EQ(sched_admit(&s, &m, &it[i], 1, 10, dl[i] * MS), SCHED_OK);
	/* 100 (first admitted), 100, 300, 500, then no deadline. */
	int order[5] = {1, 4, 3, 0, 2};
	for (int i = 0; i < 5; i++) {
		struct sched_item *p = sched_pick(&s, 20, NULL, NULL);
		UT_ASSERT(p == &it[order[i]]);
		UT_EQ(p->wait_ns, 10u);
		sched_remove(&s, p, 30);
	}
	UT_EQ(s.admitted, 0u);
	sched_leave(&s, &m);
	sched_release(&s);
}

UT_TEST(sched_queue_bound_and_instances)
{
	struct sched s;
	struct sched_config c = cfg(1);
	c.queue_max = 3;
	c.max_instances = 5;
	sched_init(&s, &c);
	struct sched_member a, b;
	UT_EQ(sched_join(&s, &a, "a", 1), 0);
	UT_EQ(sched_join(&s, &b, "b", 1), 0);
	struct sched_item it[8];
	for (int i = 0; i < 3; i++)
		UT_EQ(sched_admit(&s, &a, &it[i], 1, 1, 0), SCHED_OK);
	UT_EQ(sched_admit(&s, &a, &it[3], 1, 1, 0), SCHED_QUEUE_FULL);
	/* Running calls do not count against the queue. */
	struct sched_item *p = sched_pick(&s, 2, NULL, NULL);
	UT_ASSERT(p != NULL && p->g == a.g);
	UT_EQ(sched_admit(&s, &a, &it[3], 1, 2, 0), SCHED_OK);
	UT_EQ(sched_admit(&s, &b, &it[4], 1, 2, 0), SCHED_OK);
	/* The global budget: 5 admitted. */
	UT_EQ(sched_admit(&s, &b, &it[5], 1, 2, 0), SCHED_INSTANCES);
	UT_EQ(strcmp(sched_refusal_name(SCHED_QUEUE_FULL), "queue_full"), 0);
	for (int i = 0; i < 5; i++)
		sched_remove(&s, &it[i], 3);
	UT_EQ(s.admitted, 0u);
	UT_EQ(s.busy, 0u);
	sched_leave(&s, &a);
	sched_leave(&s, &b);
	sched_release(&s);
}

UT_TEST(sched_queue_timeout_and_paused_deadline)
{
	struct sched s;
	struct sched_config c = cfg(1);
	c.queue_timeout_ns = 100 * MS;
	sched_init(&s, &c);
	struct sched_member m;
	UT_EQ(sched_join(&s, &m, "f", 1), 0);
	struct sched_item run, waiting;
	UT_EQ(sched_admit(&s, &m, &run, 1, 0, 1000 * MS), SCHED_OK);
	UT_ASSERT(sched_pick(&s, 0, NULL, NULL) == &run);
	UT_EQ(sched_admit(&s, &m, &waiting, 1, 10 * MS, 2000 * MS), SCHED_OK);
	UT_ASSERT(sched_expired(&s, 109 * MS) == NULL);
	/* Only its own group waits: no slice end is an event; the queue
	 * timeout of the waiting call is. */
	UT_EQ(sched_next_event(&s, 20 * MS), 110 * MS);
	UT_ASSERT(sched_expired(&s, 110 * MS) == &waiting);
	UT_EQ(waiting.state, SCHED_NONE);
	UT_ASSERT(!waiting.paused);
	/* A paused call is not bound by the queue timeout but by its deadline. */
	sched_preempted(&s, &run, 200 * MS, 200 * MS);
	UT_ASSERT(run.paused);
	UT_ASSERT(sched_expired(&s, 999 * MS) == NULL);
	UT_EQ(sched_next_event(&s, 0), 1000 * MS);
	UT_ASSERT(sched_expired(&s, 1000 * MS) == &run);
	UT_ASSERT(run.paused);
	UT_EQ(s.admitted, 0u);
	UT_EQ(m.g->npaused, 0u);
	UT_EQ(m.g->nqueued, 0u);
	sched_leave(&s, &m);
	sched_release(&s);
}

UT_TEST(sched_gang_all_or_nothing)
{
	struct sched s;
	struct sched_config c = cfg(4);
	sched_init(&s, &c);
	struct sched_member m, n;
	UT_EQ(sched_join(&s, &m, "gang", 1), 0);
	UT_EQ(sched_join(&s, &n, "single", 1), 0);
	struct sched_item one[3], wide, toowide;
	UT_EQ(sched_admit(&s, &m, &toowide, 5, 0, 0), SCHED_TOO_WIDE);
	for (int i = 0; i < 3; i++)
		UT_EQ(sched_admit(&s, &n, &one[i], 1, 0, 0), SCHED_OK);
	UT_ASSERT(sched_pick(&s, 0, NULL, NULL) == &one[0]);
	UT_ASSERT(sched_pick(&s, 0, NULL, NULL) != NULL); /* gang group is empty: single again */
	UT_EQ(s.busy, 2u);
	UT_EQ(sched_admit(&s, &m, &wide, 3, 0, 0), SCHED_OK);
	/* 2 slots free, the gang (least virtual time) needs 3: nothing runs,
	 * not even the single call that would fit. */
	UT_ASSERT(sched_pick(&s, 1, NULL, NULL) == NULL);
	UT_EQ(s.busy, 2u);
	sched_remove(&s, &one[0], 10 * MS);
	UT_ASSERT(sched_pick(&s, 10 * MS, NULL, NULL) == &wide); /* 3 free */
	UT_EQ(s.busy, 4u);
	UT_ASSERT(sched_pick(&s, 10 * MS, NULL, NULL) == NULL);
	sched_remove(&s, &one[1], 10 * MS);
	UT_ASSERT(sched_pick(&s, 10 * MS, NULL, NULL) == &one[2]);
	UT_EQ(s.busy, 4u);
	/* The gang is charged for its 3 slots. */
	sched_remove(&s, &wide, 20 * MS);
	UT_EQ(m.g->run_ns_total, 30 * MS);
	UT_EQ(s.busy, 1u);
	sched_remove(&s, &one[2], 20 * MS);
	sched_leave(&s, &m);
	sched_leave(&s, &n);
	sched_release(&s);
}

static bool only_b(const struct sched_item *it, void *arg)
{
	return it->g == arg;
}

UT_TEST(sched_preempt_requeue_accounting)
{
	struct sched s;
	struct sched_config c = cfg(1);
	sched_init(&s, &c);
	struct sched_member hog, light;
	UT_EQ(sched_join(&s, &hog, "hog", 1), 0);
	UT_EQ(sched_join(&s, &light, "light", 1), 0);
	struct sched_item h, l;
	UT_EQ(sched_admit(&s, &hog, &h, 1, 0, 5000 * MS), SCHED_OK);
	UT_ASSERT(sched_pick(&s, 0, NULL, NULL) == &h);
	/* Alone: never preempted, whatever it runs. */
	UT_ASSERT(sched_preempt_due(&s, 500 * MS) == NULL);
	UT_EQ(sched_admit(&s, &light, &l, 1, 500 * MS, 5000 * MS), SCHED_OK);
	UT_ASSERT(sched_pick(&s, 500 * MS, NULL, NULL) == NULL); /* slot busy */
	/* The hog's slice ended long ago: not a future event (it is due now). */
	UT_EQ(sched_next_event(&s, 500 * MS), 1500 * MS);
	UT_ASSERT(sched_preempt_due(&s, 500 * MS) == &h);
	UT_ASSERT(h.preempt_sent);
	UT_ASSERT(sched_preempt_due(&s, 500 * MS) == NULL); /* asked once */
	/* The worker could not pause it: another slice. */
	sched_preempt_refused(&h, 501 * MS);
	UT_EQ(sched_next_event(&s, 502 * MS), 551 * MS); /* its next slice ends */
	UT_ASSERT(sched_preempt_due(&s, 540 * MS) == NULL);
	UT_ASSERT(sched_preempt_due(&s, 551 * MS) == &h);
	sched_preempted(&s, &h, 560 * MS, 555 * MS);
	UT_EQ(h.state, SCHED_QUEUED);
	UT_ASSERT(h.paused);
	UT_EQ(h.preemptions, 1u);
	UT_EQ(hog.g->preemptions, 1u);
	UT_EQ(hog.g->run_ns_total, 560 * MS);
	UT_EQ(hog.g->npaused, 1u);
	UT_EQ(s.busy, 0u);
	/* The light group has less virtual time: it runs first. */
	UT_ASSERT(sched_pick(&s, 560 * MS, NULL, NULL) == &l);
	UT_ASSERT(sched_preempt_due(&s, 700 * MS) == NULL); /* hog is owed nothing */
	sched_remove(&s, &l, 570 * MS);
	/* can_run refuses the hog: nothing dispatched, it stays queued. */
	UT_ASSERT(sched_pick(&s, 570 * MS, only_b, light.g) == NULL);
	struct sched_item *p = sched_pick(&s, 580 * MS, NULL, NULL);
	UT_ASSERT(p == &h);
	UT_EQ(p->wait_ns, 20 * MS);
	UT_EQ(hog.g->npaused, 0u);
	/* Undo a dispatch that could not be sent: queued again, uncharged. */
	uint64_t vt = hog.g->vt;
	sched_unpick(&s, p);
	UT_ASSERT(hog.g->vt < vt);
	UT_EQ(h.state, SCHED_QUEUED);
	UT_ASSERT(sched_pick(&s, 580 * MS, NULL, NULL) == &h);
	sched_remove(&s, &h, 600 * MS);
	UT_EQ(h.ran_ns, 580 * MS);
	UT_EQ(hog.g->run_ns_total, 580 * MS);
	UT_EQ(s.admitted, 0u);
	sched_leave(&s, &hog);
	sched_leave(&s, &light);
	sched_release(&s);
}

UT_TEST(sched_group_weight_is_max)
{
	struct sched s;
	struct sched_config c = cfg(1);
	sched_init(&s, &c);
	struct sched_member f1, f2, f3;
	UT_EQ(sched_join(&s, &f1, "tenant", 2), 0);
	UT_EQ(sched_join(&s, &f2, "tenant", 5), 0);
	UT_EQ(sched_join(&s, &f3, "tenant", 0), 0);  /* clamped to 1 */
	UT_ASSERT(f1.g == f2.g && f2.g == f3.g);
	UT_EQ(f1.g->weight, 5u);
	UT_EQ(f3.weight, 1u);
	sched_set_weight(&f3, 5000);                /* clamped to 1000 */
	UT_EQ(f1.g->weight, SCHED_WEIGHT_MAX);
	sched_leave(&s, &f3);
	UT_EQ(f1.g->weight, 5u);
	sched_set_weight(&f2, 1);
	UT_EQ(f1.g->weight, 2u);
	struct sched_member bad;
	UT_ASSERT(sched_join(&s, &bad, "", 1) < 0);
	sched_leave(&s, &f1);
	sched_leave(&s, &f2);
	UT_ASSERT(s.groups == NULL);
	sched_release(&s);
}

UT_TEST(sched_remove_function_with_queued_calls)
{
	struct sched s;
	struct sched_config c = cfg(1);
	sched_init(&s, &c);
	struct sched_member a, b;
	UT_EQ(sched_join(&s, &a, "a", 1), 0);
	UT_EQ(sched_join(&s, &b, "b", 1), 0);
	struct sched_item ia[3], ib;
	for (int i = 0; i < 3; i++)
		UT_EQ(sched_admit(&s, &a, &ia[i], 1, 0, 0), SCHED_OK);
	UT_EQ(sched_admit(&s, &b, &ib, 1, 0, 0), SCHED_OK);
	struct sched_item *p = sched_pick(&s, 0, NULL, NULL);
	UT_ASSERT(p != NULL);
	/* The caller answers each of a's calls, then a leaves. */
	for (int i = 0; i < 3; i++)
		sched_remove(&s, &ia[i], 5);
	sched_remove(&s, &ia[0], 6); /* twice: harmless */
	sched_leave(&s, &a);
	UT_EQ(s.admitted, 1u); /* ib, queued or running */
	if (p != &ib)
		UT_ASSERT(sched_pick(&s, 7, NULL, NULL) == &ib);
	sched_remove(&s, &ib, 8);
	UT_EQ(s.busy, 0u);
	UT_EQ(s.admitted, 0u);
	/* A function that leaves its group with a call still queued (its
	 * tenant changed): the group lives until that call is removed. */
	struct sched_item late;
	UT_EQ(sched_admit(&s, &b, &late, 1, 9, 0), SCHED_OK);
	struct sched_group *old = b.g;
	sched_leave(&s, &b);
	UT_ASSERT(s.groups == old);
	UT_EQ(old->nqueued, 1u);
	UT_EQ(sched_join(&s, &b, "b2", 1), 0);
	UT_ASSERT(sched_pick(&s, 10, NULL, NULL) == &late);
	sched_remove(&s, &late, 11);
	UT_ASSERT(s.groups == b.g && b.g->next == NULL); /* old one freed */
	sched_leave(&s, &b);
	UT_ASSERT(s.groups == NULL);
	sched_release(&s);
}

UT_TEST(sched_off_dispatches_everything)
{
	struct sched s;
	struct sched_config c = cfg(1);
	c.off = true;
	sched_init(&s, &c);
	struct sched_member m;
	UT_EQ(sched_join(&s, &m, "f", 1), 0);
	struct sched_item it[4];
	for (int i = 0; i < 4; i++)
		UT_EQ(sched_admit(&s, &m, &it[i], 2, 0, 0), SCHED_OK);
	for (int i = 0; i < 4; i++)
		UT_ASSERT(sched_pick(&s, 1, NULL, NULL) != NULL);
	UT_EQ(s.busy, 8u);
	UT_ASSERT(sched_preempt_due(&s, 1000 * MS) == NULL);
	for (int i = 0; i < 4; i++)
		sched_remove(&s, &it[i], 2);
	sched_leave(&s, &m);
	sched_release(&s);
}
