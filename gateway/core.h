/* core.h — the state every connection of one gateway shares: the copied
 * configuration, the backend's ops, the HTTP metrics, the stopping flag,
 * call ids, and the queue of completed backend calls.
 *
 * Owner: the server (gateway/server.c) embeds one; the fuzz target builds
 * one without sockets.  Everything here is used on the loop thread except
 * the completion queue (lock + wake), which gw_invoke_done/gw_deploy_done
 * fill from any thread.
 */
#ifndef GW_CORE_H
#define GW_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "gateway/backend.h"
#include "gateway/metrics.h"
#include "gateway/server.h"

struct gw_call;

struct gw_core {
	struct gw_config cfg;           /* strings point to the copies below */
	char *listen;
	char *token;
	const struct gw_ops *ops;
	void *ctx;
	struct gw_metrics metrics;
	bool stopping;                  /* graceful stop under way */
	uint64_t id_key;                /* call ids: a keyed permutation of a counter */
	uint64_t id_counter;

	pthread_mutex_t lock;           /* guards done_head/done_tail */
	struct gw_call *done_head;
	struct gw_call *done_tail;
	void (*wake)(void *arg);        /* called (any thread, under lock) after a completion is queued */
	void *wake_arg;
	unsigned long calls_pending;    /* started, not yet drained (loop thread) */
};

/* Copy cfg (unset sizes/timeouts get the defaults), keep ops/ctx.  0 or -errno. */
int gw_core_init(struct gw_core *c, const struct gw_config *cfg, const struct gw_ops *ops, void *ctx)
	__attribute__((warn_unused_result));
void gw_core_fini(struct gw_core *c);

/* A fresh call id: GW_CALL_ID_LEN lowercase hex + NUL, unique per core. */
void gw_core_call_id(struct gw_core *c, char out[GW_CALL_ID_LEN + 1]);

#endif
