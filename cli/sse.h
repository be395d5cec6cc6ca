/* A Server-Sent Events parser for sf (cli/), pure and bounded: it never trusts the
 * server. Lines end in LF, CRLF or CR; `field: value` (one space after the colon
 * dropped), `:comment`, a blank line ends a record (html.spec.whatwg.org, "Server-sent
 * events", event stream interpretation). A line longer than SF_SSE_LINE_MAX, a record
 * whose data passes SF_SSE_DATA_MAX, or one holding a NUL byte is dropped whole (counted
 * in `dropped`) and parsing goes on at the next record. Memory is bounded by those limits
 * whatever the server sends. */
#pragma once
#include <stddef.h>

#define SF_SSE_LINE_MAX (256 * 1024)
#define SF_SSE_DATA_MAX (1024 * 1024)

typedef struct {
        const char *id;    /* this record's id field; NULL when it had none */
        const char *event; /* NULL = "message" */
        const char *data;  /* data lines joined by \n (never NULL) */
} sf_sse_record_t;

/* Called once per complete record with data; everything it points to is borrowed. */
typedef void (*sf_sse_cb_t)(const sf_sse_record_t *r, void *ud);

typedef struct {
        char *line;
        size_t len, cap;
        int skip_line;   /* the current line passed SF_SSE_LINE_MAX: ignored up to its end */
        int bad;         /* the current record lost a line: dropped when it ends */
        int after_cr;    /* the last byte was CR: a LF right after it ends nothing more */
        char *id, *event;
        char *data;
        size_t dlen;
        int has_data;
        unsigned long dropped;  /* records dropped as malformed */
        unsigned long comments; /* comment lines seen (keepalives) */
} sf_sse_parser_t;

/* Feeds len bytes; calls cb for every record completed by them. -ENOMEM when out of
 * memory (the parser stays usable). */
int sf_sse_feed(sf_sse_parser_t *p, const char *buf, size_t len, sf_sse_cb_t cb, void *ud);
/* Frees what the parser holds and resets it (accepts a zeroed or NULL parser). */
void sf_sse_parser_done(sf_sse_parser_t *p);
