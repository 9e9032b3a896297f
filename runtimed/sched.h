/* sched.h — runtimed's group scheduler and admission control: a pure data
 * structure (no libuv, no I/O, time passed in), used on the loop thread.
 *
 * It owns: groups (a function's tenant label, else its name) with weights
 * (the max of their members' weights), each group's queue of admitted calls
 * (earliest deadline first, FIFO among equal deadlines), the run slots
 * (--cpus; a call holds k of them from dispatch until it ends or is
 * preempted; k > 1 is a gang, dispatched only when k are free), weighted
 * fair queueing across groups by virtual time (a group's virtual time grows
 * by the slot time it used / its weight; the backlogged group with the
 * least virtual time is served next), and the admission checks that do not
 * need the function (queue bound, global instance budget).
 *
 * It does not own the items: they are embedded in the caller's calls
 * (runtimed/daemon.h's rt_call) and must be removed (sched_remove) before
 * they are freed.  Members are embedded in functions the same way.
 *
 * Mode off (--sched off): no slots and no preemption; every admitted call
 * is dispatched at once (the host scheduler alone shares the CPUs); the
 * queue only holds calls whose function cannot run yet.
 */
#ifndef RT_SCHED_H
#define RT_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#define SCHED_GROUP_MAX   63u           /* tenant / function name length */
#define SCHED_WEIGHT_MAX  1000u
#define SCHED_VT_SCALE    1000ull       /* virtual ns per real ns at weight 1 */

struct sched_group;

enum sched_state {
	SCHED_NONE,             /* not admitted, or removed */
	SCHED_QUEUED,           /* waiting in its group's queue (maybe paused) */
	SCHED_RUNNING,          /* holds k slots */
};

struct sched_item {
	struct sched_item *prev, *next;         /* in its group's queue or run list */
	struct sched_group *g;
	enum sched_state state;
	bool paused;            /* preempted: a live, paused instance waits */
	bool preempt_sent;      /* a preemption was asked and not answered */
	uint32_t k;             /* slots needed (vCPUs), >= 1 */
	uint64_t seq;           /* admission order, the EDF tie-break */
	uint64_t admit_ns, deadline_ns;
	uint64_t queued_ns;     /* when it last entered the queue */
	uint64_t run_start_ns;  /* when it last got its slots */
	uint64_t slice_from_ns; /* its current slice began (a refused
				 * preemption starts another) */
	uint64_t ran_ns;        /* slot time used so far, all runs */
	uint64_t wait_ns;       /* queue time of its last dispatch (set by pick) */
	uint64_t vt_advance;    /* virtual time charged ahead at dispatch */
	uint32_t preemptions;
};

/* A function's membership of a group (embedded in the function). */
struct sched_member {
	struct sched_member *next;
	struct sched_group *g;
	uint32_t weight;
};

struct sched_group {
	struct sched_group *next;
	char name[SCHED_GROUP_MAX + 1];
	uint32_t weight;                /* max over members, >= 1 */
	struct sched_member *members;
	struct sched_item queue;        /* sentinel; EDF order */
	struct sched_item running;      /* sentinel */
	uint32_t nqueued, nrunning, npaused;    /* npaused counts within nqueued */
	uint64_t vt;                    /* virtual time (SCHED_VT_SCALE ns / weight) */
	uint64_t run_ns_total, preemptions, dispatches;
};

struct sched_config {
	bool off;
	uint32_t slots;                 /* run slots (--cpus), >= 1 */
	uint32_t queue_max;             /* per group (queued, paused included) */
	uint64_t queue_timeout_ns;      /* a fresh call waits at most this */
	uint64_t slice_ns;              /* run this long before preemption */
	uint32_t max_instances;         /* queued + running, all groups; 0 = no limit */
};

struct sched {
	struct sched_config cfg;
	struct sched_group *groups;
	uint32_t busy;                  /* slots held */
	uint32_t admitted;              /* items queued or running */
	uint64_t vclock;                /* virtual time of the last dispatch */
	uint64_t seq;
};

/* Why sched_admit refused. */
enum sched_refusal { SCHED_OK, SCHED_QUEUE_FULL, SCHED_INSTANCES, SCHED_TOO_WIDE };

void sched_init(struct sched *s, const struct sched_config *cfg);
/* Frees the groups (every member must have left). */
void sched_release(struct sched *s);

/* Join the group `name` (created on first use) with a weight (clamped to
 * 1..SCHED_WEIGHT_MAX); 0 or -ENOMEM/-EINVAL (empty or too long name). */
int sched_join(struct sched *s, struct sched_member *m, const char *name, uint32_t weight)
	__attribute__((warn_unused_result));
/* Leave; the group is freed once it has no members and no calls (calls
 * still in it stay there until removed). */
void sched_leave(struct sched *s, struct sched_member *m);
/* Change a member's weight: its group's weight becomes the new max. */
void sched_set_weight(struct sched_member *m, uint32_t weight);

/* Admit a call into m's group: SCHED_OK (queued; the caller then runs
 * sched_pick) or why not.  k = slots it needs; deadline_ns absolute. */
enum sched_refusal sched_admit(struct sched *s, struct sched_member *m, struct sched_item *it,
			       uint32_t k, uint64_t now, uint64_t deadline_ns);
const char *sched_refusal_name(enum sched_refusal r);

/* The next call to dispatch (it now holds its slots, state RUNNING,
 * it->wait_ns set), or NULL: no free slots, nothing queued, or nothing
 * `can_run` accepts (NULL = all).  Call in a loop until NULL. */
struct sched_item *sched_pick(struct sched *s, uint64_t now,
			      bool (*can_run)(const struct sched_item *it, void *arg), void *arg);
/* A running call ended (its slots are freed and its time charged) or a
 * queued one is withdrawn; harmless on an item that is in neither.  It->g
 * is NULL afterwards (a group no function is in any more is freed with
 * its last call). */
void sched_remove(struct sched *s, struct sched_item *it, uint64_t now);
/* Put a dispatched call back in its queue uncharged (its dispatch could
 * not be carried out); it keeps its original place by deadline. */
void sched_unpick(struct sched *s, struct sched_item *it);

/* A running call that should be preempted now: it ran a whole slice and
 * another group has a call waiting that could use its slots.  Marks it
 * preempt_sent; NULL when none.  Call in a loop until NULL. */
struct sched_item *sched_preempt_due(struct sched *s, uint64_t now);
/* The worker paused it after ran_ns in this run: charge, requeue (paused,
 * EDF by its deadline), free its slots. */
void sched_preempted(struct sched *s, struct sched_item *it, uint64_t now, uint64_t ran_ns);
/* The worker could not pause it (not started yet, or done meanwhile): it
 * keeps its slots for another slice. */
void sched_preempt_refused(struct sched_item *it, uint64_t now);

/* A queued call that timed out: a fresh one waited queue_timeout_ns, a
 * paused one passed its deadline.  It is removed from the queue (state
 * NONE); NULL when none.  Call in a loop. */
struct sched_item *sched_expired(struct sched *s, uint64_t now);

/* When the next preemption or expiry check is due (absolute ns; UINT64_MAX
 * when nothing is pending) — for the caller's timer.  A slice end counts
 * only while another group is owed a slot and only if it is after now. */
uint64_t sched_next_event(const struct sched *s, uint64_t now);

#endif
