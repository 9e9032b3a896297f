/* test_cli_http.c — the CLI's HTTP response parser (cli/http_parse.h) fed
 * whole and byte by byte, hostile responses refused, and the small codecs
 * beside it (base64, path escaping). */
#include "tests/unit/ut.h"

#include <errno.h>
#include <string.h>

#include "cli/buf.h"
#include "cli/http.h"
#include "cli/http_parse.h"
#include "vmm/err.h"

/* Feed `s` in pieces of `step` bytes (0: all at once), then EOF if needed.
 * Returns the final result (1 complete, <0 error). */
static int parse(struct cli_http_resp *r, const char *s, size_t n, size_t step, size_t max_body)
{
	cli_http_resp_init(r, max_body);
	int e = 0;
	for (size_t off = 0; off < n && e == 0;) {
		size_t k = step && n - off > step ? step : n - off;
		e = cli_http_feed(r, s + off, k);
		off += k;
	}
	return e ? e : cli_http_eof(r);
}

static void check_same_any_split(const char *s, int status, const char *body, size_t blen)
{
	static const size_t steps[] = { 0, 1, 2, 3, 7, 64 };
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct cli_http_resp r;
		int e = parse(&r, s, strlen(s), steps[i], 1 << 20);
		if (e != 1)
			UT_FAIL("step %zu: result %d", steps[i], e);
		UT_EQ(r.status, status);
		UT_EQ(r.body.len, blen);
		UT_ASSERT(blen == 0 || memcmp(r.body.data, body, blen) == 0);
		cli_http_resp_free(&r);
	}
}

UT_TEST(cli_http_framings)
{
	check_same_any_split("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "hello", 5);
	check_same_any_split("HTTP/1.0 201 Created\nContent-Length:  3 \n\nabc", 201, "abc", 3);
	check_same_any_split("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
			     "5;a=b\r\nhello\r\n1\r\n \r\nA \r\n0123456789\r\n0\r\nT: x\r\n\r\n",
			     200, "hello 0123456789", 16);
	check_same_any_split("HTTP/1.1 200 OK\r\n\r\nto the end", 200, "to the end", 10);
	check_same_any_split("HTTP/1.1 100 Continue\r\nX: y\r\n\r\nHTTP/1.1 404 Not Found\r\n"
			     "Content-Length: 2\r\n\r\n{}", 404, "{}", 2);
	check_same_any_split("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n", 204, "", 0);
	/* identical repeated Content-Length values are accepted */
	check_same_any_split("HTTP/1.1 200 OK\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\nx",
			     200, "x", 1);
}

UT_TEST(cli_http_complete_without_eof)
{
	/* Bytes after a complete response are not part of it. */
	struct cli_http_resp r;
	cli_http_resp_init(&r, 100);
	const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA";
	UT_EQ(cli_http_feed(&r, s, strlen(s)), 1);
	UT_EQ(r.body.len, 2);
	UT_EQ(cli_http_feed(&r, "more", 4), 1);
	UT_EQ(r.body.len, 2);
	cli_http_resp_free(&r);

	/* A body without length is complete only at EOF. */
	cli_http_resp_init(&r, 100);
	s = "HTTP/1.1 200 OK\r\n\r\npart";
	UT_EQ(cli_http_feed(&r, s, strlen(s)), 0);
	UT_EQ(cli_http_eof(&r), 1);
	UT_EQ(r.body.len, 4);
	cli_http_resp_free(&r);
}

UT_TEST(cli_http_headers)
{
	struct cli_http_resp r;
	const char *s = "HTTP/1.1 429 Too Many\r\nRetry-After: 1\r\nX-A:  spaced value \t\r\n"
			"retry-after: 2\r\nContent-Length: 0\r\n\r\n";
	UT_EQ(parse(&r, s, strlen(s), 0, 10), 1);
	UT_EQ(r.status, 429);
	UT_ASSERT(strcmp(r.reason, "Too Many") == 0);
	UT_ASSERT(strcmp(cli_http_header(&r, "RETRY-AFTER"), "2") == 0); /* the last one */
	UT_ASSERT(strcmp(cli_http_header(&r, "x-a"), "spaced value") == 0);
	UT_ASSERT(cli_http_header(&r, "x-b") == NULL);
	cli_http_resp_free(&r);
}

UT_TEST(cli_http_hostile)
{
	static const struct {
		const char *raw;
		int err;
	} cases[] = {
		{ "", -ECONNRESET },
		{ "SSH-2.0-x\r\n", -EPROTO },
		{ "HTTP/2 200 OK\r\n\r\n", -EPROTO },
		{ "HTTP/1.1 20 OK\r\n\r\n", -EPROTO },
		{ "HTTP/1.1 099 X\r\n\r\n", -EPROTO },
		{ "HTTP/1.1 200OK\r\n\r\n", -EPROTO },
		{ "HTTP/1.1 200 OK\r\nNo colon\r\n\r\n", -EPROTO },
		{ "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", -EPROTO },
		{ "HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", -EPROTO },
		{ "HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n", -EPROTO },
		{ "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", -EPROTO },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", -EPROTO },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", -EPROTO },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", -EPROTO },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n", -EMSGSIZE },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc", -EPIPE },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", -EPROTO },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n", -EPROTO },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", -EPROTO },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", -EMSGSIZE },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n"
		  "0123456789012345678901234567890123456789012345678901234567890123\r\n"
		  "40\r\n", -EMSGSIZE },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n", -EPIPE },
		{ "HTTP/1.1 200 OK\r\n\r\n" "0123456789012345678901234567890123456789012345678901234567890123"
		  "0123456789012345678901234567890123456789", -EMSGSIZE },
		{ "HTTP/1.1 101 Switching\r\n\r\n", -EPROTO },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t step = 0; step <= 1; step++) {
			struct cli_http_resp r;
			int e = parse(&r, cases[i].raw, strlen(cases[i].raw), step, 100);
			if (e != cases[i].err)
				UT_FAIL("case %zu step %zu: %d, want %d", i, step, e, cases[i].err);
			cli_http_resp_free(&r);
		}
	}
}

UT_TEST(cli_http_limits)
{
	/* too many headers, an endless header line, an endless head */
	struct cli_buf b = {0};
	UT_ASSERT(cli_buf_append(&b, "HTTP/1.1 200 OK\r\n", 17) == 0);
	for (int i = 0; i <= CLI_HTTP_MAX_HEADERS; i++)
		UT_ASSERT(cli_buf_appendf(&b, "H%d: v\r\n", i) == 0);
	UT_ASSERT(cli_buf_append(&b, "\r\n", 2) == 0);
	struct cli_http_resp r;
	UT_EQ(parse(&r, b.data, b.len, 0, 10), -EMSGSIZE);
	UT_ASSERT(strstr(vmm_strerror(), "more than 128 headers"));
	cli_http_resp_free(&r);
	cli_buf_free(&b);

	UT_ASSERT(cli_buf_append(&b, "HTTP/1.1 200 OK\r\nX: ", 20) == 0);
	for (int i = 0; i < CLI_HTTP_MAX_LINE; i++)
		UT_ASSERT(cli_buf_append(&b, "x", 1) == 0);
	UT_EQ(parse(&r, b.data, b.len, 0, 10), -EMSGSIZE);
	cli_http_resp_free(&r);
	UT_EQ(parse(&r, b.data, b.len, 1000, 10), -EMSGSIZE);
	UT_ASSERT(strstr(vmm_strerror(), "line longer than"));
	cli_http_resp_free(&r);
	cli_buf_free(&b);

	UT_ASSERT(cli_buf_append(&b, "HTTP/1.1 200 OK\r\n", 17) == 0);
	for (int i = 0; b.len < CLI_HTTP_MAX_HEAD + 10; i++) /* ~66 lines of 1 KB */
		UT_ASSERT(cli_buf_appendf(&b, "X-%d: %01000d\r\n", i, 0) == 0);
	UT_EQ(parse(&r, b.data, b.len, 0, 10), -EMSGSIZE);
	UT_ASSERT(strstr(vmm_strerror(), "head over"));
	UT_ASSERT(r.nhdrs < CLI_HTTP_MAX_HEADERS);
	cli_http_resp_free(&r);
	cli_buf_free(&b);
}

UT_TEST(cli_base64_vectors)
{
	static const char *const in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *const out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
					   "Zm9vYmFy" };
	for (size_t i = 0; i < 7; i++) {
		struct cli_buf b = {0};
		UT_ASSERT(cli_buf_append(&b, ">", 1) == 0); /* appends after existing bytes */
		UT_ASSERT(cli_base64_encode(in[i], strlen(in[i]), &b) == 0);
		UT_ASSERT(b.data[0] == '>' && strcmp(b.data + 1, out[i]) == 0);
		cli_buf_free(&b);
	}
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)(255 - i);
	struct cli_buf b = {0};
	UT_ASSERT(cli_base64_encode(all, 3, &b) == 0);
	UT_ASSERT(strcmp(b.data, "//79") == 0);
	cli_buf_free(&b);
}

UT_TEST(cli_path_escape)
{
	struct cli_buf b = {0};
	UT_ASSERT(cli_http_path_escape(&b, "ok-name_1~") == 0);
	UT_ASSERT(strcmp(b.data, "ok-name_1~") == 0);
	b.len = 0;
	UT_ASSERT(cli_http_path_escape(&b, "../a b/%\xc3\xa9?#\r\n") == 0);
	UT_ASSERT(strcmp(b.data, "%2E%2E%2Fa%20b%2F%25%C3%A9%3F%23%0D%0A") == 0);
	cli_buf_free(&b);
}
