/* output.h — how the CLI shows what the server said: text tables,
 * "key: value" listings of JSON objects, raw JSON for --json.
 *
 * Strings from the server are hostile: everything printed through here has
 * control characters (C0, DEL, and UTF-8-encoded C1) replaced by '?', so a
 * response cannot drive the user's terminal.  Invoke output is the one
 * exception: the handler's body goes to stdout byte for byte (invoke.c).
 */
#ifndef CLI_OUTPUT_H
#define CLI_OUTPUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "cli/http_parse.h"

/* Write s[0..n) with control characters replaced (newlines and tabs kept
 * when keep_nl). */
void cli_put_clean(FILE *f, const char *s, size_t n, int keep_nl);

/* --json: the body as received, plus a newline if it lacks one. */
void cli_print_body(const struct cli_http_resp *resp);

/* A JSON value as table text (malloc'd): strings as is, numbers, true/false,
 * "-" for null/absent, compact JSON for arrays and objects. */
char *cli_value_text(const json_t *v);

/* "key: value" lines, nested objects indented by two spaces per level,
 * arrays of scalars joined by ", ", arrays of objects as "- " items. */
void cli_print_object(FILE *f, const json_t *obj, int indent);

#define CLI_TABLE_MAXCOLS 12

struct cli_table {
	int ncols;
	const char *head[CLI_TABLE_MAXCOLS];
	char **cells; /* nrows * ncols, owned */
	size_t nrows, cap;
};

/* Add a row of ncols malloc'd strings (taken over, even on failure; NULL
 * cells print as "-").  0 or -ENOMEM. */
int cli_table_add(struct cli_table *t, char **row) __attribute__((warn_unused_result));
/* Columns padded to their widest cell, two spaces apart. */
void cli_table_print(FILE *f, const struct cli_table *t);
void cli_table_free(struct cli_table *t);

#endif
