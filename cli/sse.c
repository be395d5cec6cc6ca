/* See sse.h. */
#include "sse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void record_reset(sf_sse_parser_t *p) {
        free(p->id);
        free(p->event);
        free(p->data);
        p->id = p->event = p->data = NULL;
        p->dlen = 0;
        p->has_data = 0;
        p->bad = 0;
}

static void record_dispatch(sf_sse_parser_t *p, sf_sse_cb_t cb, void *ud) {
        if (p->bad)
                p->dropped++;
        else if (p->has_data) {
                sf_sse_record_t r = {.id = p->id, .event = p->event, .data = p->data ? p->data : ""};
                if (p->dlen && p->data[p->dlen - 1] == '\n')  /* the last data line's LF is not data */
                        p->data[--p->dlen] = 0;
                cb(&r, ud);
        }
        record_reset(p);
}

static int set_str(char **dst, const char *v, size_t n) {
        char *s = strndup(v, n);
        if (!s)
                return -ENOMEM;
        free(*dst);
        *dst = s;
        return 0;
}

/* One complete line (without its end), already known to hold no NUL. */
static int line_process(sf_sse_parser_t *p, const char *l, size_t n, sf_sse_cb_t cb, void *ud) {
        const char *colon, *v;
        size_t fn, vn;
        if (n == 0) {
                record_dispatch(p, cb, ud);
                return 0;
        }
        if (l[0] == ':') {
                p->comments++;
                return 0;
        }
        colon = memchr(l, ':', n);
        fn = colon ? (size_t)(colon - l) : n;
        v = colon ? colon + 1 : l + n;
        vn = colon ? n - fn - 1 : 0;
        if (vn && *v == ' ') {
                v++;
                vn--;
        }
        if (fn == 4 && !memcmp(l, "data", 4)) {
                char *nd;
                if (p->dlen + vn + 1 > SF_SSE_DATA_MAX) {
                        p->bad = 1;
                        return 0;
                }
                nd = realloc(p->data, p->dlen + vn + 2);
                if (!nd)
                        return -ENOMEM;
                memcpy(nd + p->dlen, v, vn);
                p->dlen += vn;
                nd[p->dlen++] = '\n';
                nd[p->dlen] = 0;
                p->data = nd;
                p->has_data = 1;
        } else if (fn == 5 && !memcmp(l, "event", 5)) {
                return set_str(&p->event, v, vn);
        } else if (fn == 2 && !memcmp(l, "id", 2)) {
                return set_str(&p->id, v, vn);
        }
        /* retry and unknown fields: ignored, as the spec says */
        return 0;
}

static int line_end(sf_sse_parser_t *p, sf_sse_cb_t cb, void *ud) {
        int r = 0;
        if (p->skip_line) {
                p->bad = 1;
                p->skip_line = 0;
        } else if (memchr(p->line ? p->line : "", 0, p->len)) {
                p->bad = 1; /* a NUL would cut the text short further on: not ours to guess */
        } else {
                r = line_process(p, p->line ? p->line : "", p->len, cb, ud);
        }
        p->len = 0;
        return r;
}

int sf_sse_feed(sf_sse_parser_t *p, const char *buf, size_t len, sf_sse_cb_t cb, void *ud) {
        for (size_t i = 0; i < len; i++) {
                char c = buf[i];
                if (c == '\n' && p->after_cr) { /* CRLF: the CR already ended the line */
                        p->after_cr = 0;
                        continue;
                }
                p->after_cr = c == '\r';
                if (c == '\n' || c == '\r') {
                        int r = line_end(p, cb, ud);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (p->skip_line)
                        continue;
                if (p->len >= SF_SSE_LINE_MAX) {
                        p->skip_line = 1;
                        p->len = 0;
                        continue;
                }
                if (p->len + 1 > p->cap) {
                        size_t cap = p->cap ? p->cap * 2 : 256;
                        char *nl;
                        if (cap > SF_SSE_LINE_MAX)
                                cap = SF_SSE_LINE_MAX;
                        nl = realloc(p->line, cap);
                        if (!nl)
                                return -ENOMEM;
                        p->line = nl;
                        p->cap = cap;
                }
                p->line[p->len++] = c;
        }
        return 0;
}

void sf_sse_parser_done(sf_sse_parser_t *p) {
        if (!p)
                return;
        record_reset(p);
        free(p->line);
        *p = (sf_sse_parser_t){0};
}
