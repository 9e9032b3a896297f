/* logs.c — the per-function log ring (contract in logs.h). */
#include "runtimed/logs.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rt_log_line {
	int64_t t_ms;                   /* CLOCK_REALTIME */
	char call_id[24];
	char stream[12];
	char *text;
	size_t len;
};

int rt_logs_init(struct rt_logs *l)
{
	memset(l, 0, sizeof(*l));
	l->ring = calloc(RT_LOGS_LINES, sizeof(*l->ring));
	return l->ring ? 0 : -ENOMEM;
}

static void drop_oldest(struct rt_logs *l)
{
	struct rt_log_line *e = &l->ring[l->head];
	l->bytes -= e->len;
	free(e->text);
	e->text = NULL;
	l->head = (l->head + 1) % RT_LOGS_LINES;
	l->count--;
	l->dropped++;
}

void rt_logs_free(struct rt_logs *l)
{
	while (l->ring && l->count)
		drop_oldest(l);
	free(l->ring);
	l->ring = NULL;
}

static void add_line(struct rt_logs *l, int64_t t_ms, const char *call_id, const char *stream,
		     const char *p, size_t len)
{
	if (len > RT_LOGS_LINE_MAX)
		len = RT_LOGS_LINE_MAX;
	char *text = malloc(len + 1);
	if (!text)
		return; /* a lost log line is not worth failing a call for */
	memcpy(text, p, len);
	text[len] = 0;
	while (l->count && (l->count == RT_LOGS_LINES || l->bytes + len > RT_LOGS_BYTES))
		drop_oldest(l);
	struct rt_log_line *e = &l->ring[(l->head + l->count) % RT_LOGS_LINES];
	e->t_ms = t_ms;
	snprintf(e->call_id, sizeof(e->call_id), "%s", call_id ? call_id : "");
	snprintf(e->stream, sizeof(e->stream), "%s", stream);
	e->text = text;
	e->len = len;
	l->bytes += len;
	l->count++;
}

void rt_logs_add(struct rt_logs *l, const char *call_id, const char *stream, const void *p,
		 size_t len)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t t_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	const char *s = p, *end = s + len;
	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
		if (n && s[n - 1] == '\r')
			n--;
		add_line(l, t_ms, call_id, stream, s, n);
		s = nl ? nl + 1 : end;
	}
}

/* json_stringn refuses invalid UTF-8: replace every byte that is not
 * printable ASCII or a tab by '?' in that case. */
static json_t *text_json(const char *p, size_t len)
{
	json_t *j = json_stringn(p, len);
	if (j)
		return j;
	char *c = malloc(len + 1);
	if (!c)
		return NULL;
	for (size_t i = 0; i < len; i++)
		c[i] = ((unsigned char)p[i] >= 0x20 && (unsigned char)p[i] < 0x7f) || p[i] == '\t' ? p[i] : '?';
	j = json_stringn(c, len);
	free(c);
	return j;
}

int rt_logs_ndjson(const struct rt_logs *l, unsigned tail, char **out, size_t *len)
{
	uint32_t n = l->count < tail ? l->count : tail;
	size_t cap = 256, used = 0;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	buf[0] = 0;
	for (uint32_t i = l->count - n; i < l->count; i++) {
		const struct rt_log_line *e = &l->ring[(l->head + i) % RT_LOGS_LINES];
		time_t sec = (time_t)(e->t_ms / 1000);
		struct tm tm;
		char when[40];
		gmtime_r(&sec, &tm);
		size_t w = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(when + w, sizeof(when) - w, ".%03dZ", (int)(e->t_ms % 1000));
		json_t *o = json_pack("{s:s, s:s, s:s, s:o*}", "time", when, "call_id", e->call_id,
				      "stream", e->stream, "line", text_json(e->text, e->len));
		char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		if (!s) {
			free(buf);
			return -ENOMEM;
		}
		size_t sl = strlen(s);
		if (used + sl + 2 > cap) {
			size_t ncap = (used + sl + 2) * 2;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				free(s);
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap = ncap;
		}
		memcpy(buf + used, s, sl);
		used += sl;
		buf[used++] = '\n';
		buf[used] = 0;
		free(s);
	}
	*out = buf;
	*len = used;
	return 0;
}
