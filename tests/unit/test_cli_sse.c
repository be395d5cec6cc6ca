/* Unit tests for cli/sse.c (the sf CLI's Server-Sent Events parser): records as the
 * spec reads them, and a hostile server (long lines, NUL bytes, endless data, missing
 * fields) never costs more than the documented bounds nor loses the records after it.
 * sse.c is compiled in here: the CLI is not part of the module libraries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../cli/sse.c"

typedef struct {
        int n;
        char ids[16][32], events[16][32], data[16][128];
} seen_t;

static void on_rec(const sf_sse_record_t *r, void *ud) {
        seen_t *s = ud;
        if (s->n >= 16)
                return;
        snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", r->id ? r->id : "(none)");
        snprintf(s->events[s->n], sizeof(s->events[0]), "%s", r->event ? r->event : "(message)");
        snprintf(s->data[s->n], sizeof(s->data[0]), "%s", r->data);
        s->n++;
}

static void feed_str(sf_sse_parser_t *p, const char *text, seen_t *s) {
        assert_int_equal(sf_sse_feed(p, text, strlen(text), on_rec, s), 0);
}

/* What sf-api sends: a comment, records with id and one JSON data line; any chunking. */
static void test_records(void **state) {
        (void)state;
        const char *text = ": sf event stream\n\nid: 7\ndata: {\"a\": 1}\n\n: keepalive\n\nid: 8\ndata: {\"b\": 2}\n\n";
        for (size_t chunk = 1; chunk <= strlen(text); chunk++) {
                sf_sse_parser_t p = {0};
                seen_t s = {0};
                for (size_t i = 0; i < strlen(text); i += chunk) {
                        size_t k = strlen(text) - i < chunk ? strlen(text) - i : chunk;
                        assert_int_equal(sf_sse_feed(&p, text + i, k, on_rec, &s), 0);
                }
                assert_int_equal(s.n, 2);
                assert_string_equal(s.ids[0], "7");
                assert_string_equal(s.data[0], "{\"a\": 1}");
                assert_string_equal(s.ids[1], "8");
                assert_string_equal(s.events[1], "(message)");
                assert_int_equal(p.comments, 2);
                sf_sse_parser_done(&p);
        }
}

/* CR, LF and CRLF line ends; several data lines; no space after the colon; a field with
 * no colon; event names; a record without id; unknown fields ignored; no data = no record. */
static void test_syntax(void **state) {
        (void)state;
        sf_sse_parser_t p = {0};
        seen_t s = {0};
        feed_str(&p, "event: error\r\ndata:{\"error\": \"x\"}\r\n\r\n", &s);
        feed_str(&p, "id: 3\rdata: one\rdata\rdata: three\r\r", &s);
        feed_str(&p, "retry: 10\nfoo: bar\nid: 9\n\n", &s); /* no data: nothing */
        feed_str(&p, "data: last\n", &s);                   /* not ended yet */
        assert_int_equal(s.n, 2);
        assert_string_equal(s.events[0], "error");
        assert_string_equal(s.ids[0], "(none)");
        assert_string_equal(s.data[0], "{\"error\": \"x\"}");
        assert_string_equal(s.ids[1], "3");
        assert_string_equal(s.data[1], "one\n\nthree");
        feed_str(&p, "\n", &s);
        assert_int_equal(s.n, 3);
        assert_string_equal(s.ids[2], "(none)"); /* the id-only record before was dropped with it */
        assert_string_equal(s.data[2], "last");
        sf_sse_parser_done(&p);
}

/* A line longer than SF_SSE_LINE_MAX: its record is dropped, the buffer never grows past
 * the limit, and the next record arrives. */
static void test_long_line(void **state) {
        (void)state;
        sf_sse_parser_t p = {0};
        seen_t s = {0};
        size_t big = SF_SSE_LINE_MAX * 3;
        char *junk = malloc(big);
        assert_non_null(junk);
        memset(junk, 'x', big);
        memcpy(junk, "data: ", 6);
        feed_str(&p, "id: 1\n", &s);
        for (int i = 0; i < 4; i++) /* 12 × the limit, in pieces */
                assert_int_equal(sf_sse_feed(&p, junk, big, on_rec, &s), 0);
        assert_true(p.cap <= SF_SSE_LINE_MAX);
        feed_str(&p, "\n\nid: 2\ndata: ok\n\n", &s);
        assert_int_equal(s.n, 1);
        assert_string_equal(s.ids[0], "2");
        assert_string_equal(s.data[0], "ok");
        assert_int_equal(p.dropped, 1);
        free(junk);
        sf_sse_parser_done(&p);
}

/* Data lines adding up past SF_SSE_DATA_MAX: the record is dropped, memory stays bounded. */
static void test_endless_data(void **state) {
        (void)state;
        sf_sse_parser_t p = {0};
        seen_t s = {0};
        char line[4096 + 8];
        memset(line, 'y', sizeof(line));
        memcpy(line, "data: ", 6);
        line[sizeof(line) - 1] = '\n';
        for (int i = 0; i < 2 * SF_SSE_DATA_MAX / 4096 + 10; i++)
                assert_int_equal(sf_sse_feed(&p, line, sizeof(line), on_rec, &s), 0);
        assert_true(p.dlen <= SF_SSE_DATA_MAX);
        feed_str(&p, "\nid: 5\ndata: after\n\n", &s);
        assert_int_equal(s.n, 1);
        assert_string_equal(s.data[0], "after");
        assert_int_equal(p.dropped, 1);
        sf_sse_parser_done(&p);
}

/* A NUL byte would cut the text short where it is read: the record is dropped. */
static void test_nul(void **state) {
        (void)state;
        sf_sse_parser_t p = {0};
        seen_t s = {0};
        static const char text[] = "id: 1\ndata: {\"a\": \"x\0y\"}\n\nid: 2\ndata: fine\n\n";
        assert_int_equal(sf_sse_feed(&p, text, sizeof(text) - 1, on_rec, &s), 0);
        assert_int_equal(s.n, 1);
        assert_string_equal(s.ids[0], "2");
        assert_int_equal(p.dropped, 1);
        sf_sse_parser_done(&p);
        sf_sse_parser_done(&p); /* twice, and NULL: fine */
        sf_sse_parser_done(NULL);
}

/* Random bytes: no crash, no leak (ASan), bounded buffers. */
static void test_random(void **state) {
        (void)state;
        sf_sse_parser_t p = {0};
        seen_t s = {0};
        char buf[8192];
        srand(42);
        for (int round = 0; round < 500; round++) {
                for (size_t i = 0; i < sizeof(buf); i++) {
                        int r = rand() % 16;
                        buf[i] = r == 0 ? '\n' : r == 1 ? '\r' : r == 2 ? ':' : r == 3 ? 0 : "datidevn: {}\"x"[rand() % 14];
                }
                assert_int_equal(sf_sse_feed(&p, buf, sizeof(buf), on_rec, &s), 0);
                assert_true(p.len <= SF_SSE_LINE_MAX && p.dlen <= SF_SSE_DATA_MAX);
                s.n = 0;
        }
        sf_sse_parser_done(&p);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_records),   cmocka_unit_test(test_syntax), cmocka_unit_test(test_long_line),
                cmocka_unit_test(test_endless_data), cmocka_unit_test(test_nul),  cmocka_unit_test(test_random),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
