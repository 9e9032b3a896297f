/* output.c — tables, object listings and sanitised text for the CLI. */
#include "cli/output.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void cli_put_clean(FILE *f, const char *s, size_t n, int keep_nl)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f) { /* U+0080..U+009F */
			fputc('?', f);
			i++;
		} else if ((ch < 0x20 && !(keep_nl && (ch == '\n' || ch == '\t'))) || ch == 0x7f) {
			fputc('?', f);
		} else {
			fputc(ch, f);
		}
	}
}

void cli_print_body(const struct cli_http_resp *resp)
{
	if (resp->body.len) {
		fwrite(resp->body.data, 1, resp->body.len, stdout);
		if (resp->body.data[resp->body.len - 1] != '\n')
			putchar('\n');
	}
}

char *cli_value_text(const json_t *v)
{
	char *s = NULL;
	switch (json_typeof(v)) {
	case JSON_STRING:
		s = strdup(json_string_value(v));
		break;
	case JSON_INTEGER:
		if (asprintf(&s, "%lld", (long long)json_integer_value(v)) < 0)
			s = NULL;
		break;
	case JSON_REAL:
		if (asprintf(&s, "%g", json_real_value(v)) < 0)
			s = NULL;
		break;
	case JSON_TRUE:
		s = strdup("true");
		break;
	case JSON_FALSE:
		s = strdup("false");
		break;
	case JSON_OBJECT:
	case JSON_ARRAY:
		s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
		break;
	case JSON_NULL:
	default:
		s = strdup("-");
		break;
	}
	return s;
}

static void put_text(FILE *f, const json_t *v)
{
	char *s = cli_value_text(v);
	if (s)
		cli_put_clean(f, s, strlen(s), 0);
	free(s);
}

static int all_scalars(const json_t *arr)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
		if (json_is_object(v) || json_is_array(v))
			return 0;
	return 1;
}

void cli_print_object(FILE *f, const json_t *obj, int indent)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v) {
		fprintf(f, "%*s", indent * 2, "");
		cli_put_clean(f, key, strlen(key), 0);
		fputc(':', f);
		if (json_is_object(v)) {
			fputc('\n', f);
			cli_print_object(f, v, indent + 1);
		} else if (json_is_array(v) && !all_scalars(v)) {
			fputc('\n', f);
			size_t i;
			json_t *item;
			json_array_foreach(v, i, item) {
				if (json_is_object(item)) {
					fprintf(f, "%*s-\n", indent * 2 + 2, "");
					cli_print_object(f, item, indent + 2);
				} else {
					fprintf(f, "%*s- ", indent * 2 + 2, "");
					put_text(f, item);
					fputc('\n', f);
				}
			}
		} else if (json_is_array(v)) {
			fputc(' ', f);
			size_t i;
			json_t *item;
			json_array_foreach(v, i, item) {
				if (i)
					fputs(", ", f);
				put_text(f, item);
			}
			fputc('\n', f);
		} else {
			fputc(' ', f);
			put_text(f, v);
			fputc('\n', f);
		}
	}
}

int cli_table_add(struct cli_table *t, char **row)
{
	if (t->nrows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		char **nc = realloc(t->cells, ncap * (size_t)t->ncols * sizeof(*nc));
		if (!nc) {
			for (int i = 0; i < t->ncols; i++)
				free(row[i]);
			return -ENOMEM;
		}
		t->cells = nc;
		t->cap = ncap;
	}
	memcpy(t->cells + t->nrows * (size_t)t->ncols, row, (size_t)t->ncols * sizeof(*row));
	t->nrows++;
	return 0;
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t text_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

void cli_table_print(FILE *f, const struct cli_table *t)
{
	size_t width[CLI_TABLE_MAXCOLS];
	for (int c = 0; c < t->ncols; c++) {
		width[c] = text_width(t->head[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
			size_t w = text_width(s ? s : "-");
			if (w > width[c])
				width[c] = w;
		}
	}
	for (size_t r = 0; r <= t->nrows; r++) {
		for (int c = 0; c < t->ncols; c++) {
			const char *s = r == 0 ? t->head[c] : t->cells[(r - 1) * (size_t)t->ncols + (size_t)c];
			if (!s)
				s = "-";
			cli_put_clean(f, s, strlen(s), 0);
			if (c + 1 < t->ncols)
				fprintf(f, "%*s", (int)(width[c] - text_width(s) + 2), "");
		}
		fputc('\n', f);
	}
}

void cli_table_free(struct cli_table *t)
{
	for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = t->cap = 0;
}
