/* logs.h — a function's recent log lines (GET /v1/functions/NAME/logs):
 * a ring of at most RT_LOGS_LINES lines and RT_LOGS_BYTES bytes, oldest
 * dropped first.  Lines come from the handlers' stdout/stderr (Result.logs,
 * split at newlines, stream "handler") and from runtimed itself about a
 * call (stream "runtime": timeouts, crashes).  Lines are stored as given
 * (bytes the handler wrote, hostile): JSON encoding escapes them on output,
 * invalid UTF-8 is replaced.  Loop thread only.
 */
#ifndef RT_LOGS_H
#define RT_LOGS_H

#include <stddef.h>
#include <stdint.h>

#define RT_LOGS_LINES    2000u
#define RT_LOGS_BYTES    (512u << 10)
#define RT_LOGS_LINE_MAX 4096u          /* longer lines are cut */

struct rt_log_line;

struct rt_logs {
	struct rt_log_line *ring;       /* RT_LOGS_LINES slots */
	uint32_t head, count;           /* oldest at head */
	size_t bytes;
	uint64_t dropped;
};

int rt_logs_init(struct rt_logs *l) __attribute__((warn_unused_result));
void rt_logs_free(struct rt_logs *l);

/* Append the lines of p[0..len) (a trailing partial line counts as a line). */
void rt_logs_add(struct rt_logs *l, const char *call_id, const char *stream, const void *p,
		 size_t len);

/* The newest `tail` lines, oldest first, one JSON object a line:
 * {"time":"2024-...Z","call_id":"...","stream":"handler","line":"..."}.
 * *out is malloc'd (the caller frees it).  0 or -ENOMEM. */
int rt_logs_ndjson(const struct rt_logs *l, unsigned tail, char **out, size_t *len)
	__attribute__((warn_unused_result));

#endif
