#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Growable output buffer; a failed allocation sticks so callers check once at the end. */
typedef struct sf_jbuf {
        char *p;
        size_t len, cap;
        bool oom;
} sf_jbuf_t;

static void jb_put(sf_jbuf_t *b, const char *s, size_t n) {
        if (b->oom)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                char *np;

                while (b->len + n + 1 > cap)
                        cap *= 2;
                np = realloc(b->p, cap);
                if (!np) {
                        b->oom = true;
                        return;
                }
                b->p = np;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = 0;
}

static void jb_puts(sf_jbuf_t *b, const char *s) { jb_put(b, s, strlen(s)); }

static void jb_u16(sf_jbuf_t *b, unsigned v) {
        char esc[8];

        snprintf(esc, sizeof(esc), "\\u%04x", v & 0xffff);
        jb_put(b, esc, 6);
}

/* Decode one UTF-8 sequence; returns its length, or 0 if malformed (the byte then
 * becomes U+FFFD: Python strings cannot hold invalid UTF-8, so there is no exact twin). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
        size_t len;
        uint32_t c;

        if (s[0] < 0x80) {
                *cp = s[0];
                return 1;
        } else if ((s[0] & 0xe0) == 0xc0) {
                len = 2, c = s[0] & 0x1f;
        } else if ((s[0] & 0xf0) == 0xe0) {
                len = 3, c = s[0] & 0x0f;
        } else if ((s[0] & 0xf8) == 0xf0) {
                len = 4, c = s[0] & 0x07;
        } else {
                return 0;
        }
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                c = (c << 6) | (s[i] & 0x3f);
        }
        /* Reject overlong forms, surrogates and values beyond Unicode. */
        if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
            (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
                return 0;
        *cp = c;
        return len;
}

static void jb_string(sf_jbuf_t *b, const char *str, size_t n) {
        const unsigned char *s = (const unsigned char *)str;
        size_t i = 0, run = 0;

        jb_put(b, "\"", 1);
        while (i < n) {
                unsigned char c = s[i];
                const char *esc = NULL;
                uint32_t cp;
                size_t len;

                /* Printable ASCII other than quote and backslash goes out verbatim, in runs. */
                if (c >= 0x20 && c <= 0x7e && c != '"' && c != '\\') {
                        run++;
                        i++;
                        continue;
                }
                jb_put(b, (const char *)s + i - run, run);
                run = 0;
                switch (c) {
                case '"': esc = "\\\""; break;
                case '\\': esc = "\\\\"; break;
                case '\n': esc = "\\n"; break;
                case '\r': esc = "\\r"; break;
                case '\t': esc = "\\t"; break;
                case '\b': esc = "\\b"; break;
                case '\f': esc = "\\f"; break;
                }
                if (esc) {
                        jb_puts(b, esc);
                        i++;
                        continue;
                }
                len = utf8_decode(s + i, n - i, &cp);
                if (len == 0) {
                        cp = 0xfffd;
                        len = 1;
                }
                if (cp >= 0x10000) {
                        cp -= 0x10000;
                        jb_u16(b, 0xd800 | (cp >> 10));
                        jb_u16(b, 0xdc00 | (cp & 0x3ff));
                } else {
                        jb_u16(b, cp);
                }
                i += len;
        }
        jb_put(b, (const char *)s + i - run, run);
        jb_put(b, "\"", 1);
}

/* Python float repr: the shortest digit string that round-trips, printed fixed when the
 * decimal exponent is in [-4, 16) (with ".0" if integral), else as d.ddde+XX. */
static void jb_double(sf_jbuf_t *b, double d) {
        char tmp[40], digits[24], out[64];
        int exp10 = 0, nd = 0, o = 0;
        const char *e;

        if (isnan(d)) {
                jb_puts(b, "NaN");
                return;
        }
        if (isinf(d)) {
                jb_puts(b, d < 0 ? "-Infinity" : "Infinity");
                return;
        }
        for (int prec = 0; prec < 17; prec++) {
                snprintf(tmp, sizeof(tmp), "%.*e", prec, d);
                if (strtod(tmp, NULL) == d)
                        break;
        }
        /* tmp is "[-]d[.ddd]e[+-]XX": collect the digits and the exponent. */
        for (const char *p = tmp; *p && *p != 'e'; p++)
                if (*p >= '0' && *p <= '9')
                        digits[nd++] = *p;
        digits[nd] = 0;
        e = strchr(tmp, 'e');
        exp10 = e ? atoi(e + 1) : 0;
        while (nd > 1 && digits[nd - 1] == '0')
                digits[--nd] = 0;
        if (signbit(d))
                out[o++] = '-';
        if (exp10 >= -4 && exp10 < 16) {
                if (exp10 < 0) {
                        out[o++] = '0';
                        out[o++] = '.';
                        for (int i = 0; i < -exp10 - 1; i++)
                                out[o++] = '0';
                        for (int i = 0; i < nd; i++)
                                out[o++] = digits[i];
                } else {
                        for (int i = 0; i <= exp10; i++)
                                out[o++] = i < nd ? digits[i] : '0';
                        out[o++] = '.';
                        if (nd > exp10 + 1)
                                for (int i = exp10 + 1; i < nd; i++)
                                        out[o++] = digits[i];
                        else
                                out[o++] = '0';
                }
                out[o] = 0;
        } else {
                out[o++] = digits[0];
                if (nd > 1) {
                        out[o++] = '.';
                        for (int i = 1; i < nd; i++)
                                out[o++] = digits[i];
                }
                snprintf(out + o, sizeof(out) - (size_t)o, "e%c%02d", exp10 < 0 ? '-' : '+',
                         exp10 < 0 ? -exp10 : exp10);
        }
        jb_puts(b, out);
}

static void jb_value(sf_jbuf_t *b, json_object *o) {
        char num[32];

        switch (json_object_get_type(o)) {
        case json_type_null:
                jb_puts(b, "null");
                break;
        case json_type_boolean:
                jb_puts(b, json_object_get_boolean(o) ? "true" : "false");
                break;
        case json_type_int: {
                int64_t v = json_object_get_int64(o);

                /* json-c keeps values above INT64_MAX as uint64; get_int64 saturates. */
                if (v == INT64_MAX)
                        snprintf(num, sizeof(num), "%" PRIu64, json_object_get_uint64(o));
                else
                        snprintf(num, sizeof(num), "%" PRId64, v);
                jb_puts(b, num);
                break;
        }
        case json_type_double:
                jb_double(b, json_object_get_double(o));
                break;
        case json_type_string:
                jb_string(b, json_object_get_string(o), (size_t)json_object_get_string_len(o));
                break;
        case json_type_array: {
                size_t n = json_object_array_length(o);

                jb_put(b, "[", 1);
                for (size_t i = 0; i < n; i++) {
                        if (i)
                                jb_put(b, ", ", 2);
                        jb_value(b, json_object_array_get_idx(o, i));
                }
                jb_put(b, "]", 1);
                break;
        }
        case json_type_object: {
                bool first = true;

                jb_put(b, "{", 1);
                json_object_object_foreach(o, key, val) {
                        if (!first)
                                jb_put(b, ", ", 2);
                        first = false;
                        jb_string(b, key, strlen(key));
                        jb_put(b, ": ", 2);
                        jb_value(b, val);
                }
                jb_put(b, "}", 1);
                break;
        }
        }
}

char *sf_json_dumps(json_object *o) {
        sf_jbuf_t b = {0};

        jb_value(&b, o);
        if (b.oom) {
                free(b.p);
                return NULL;
        }
        return b.p;
}

static bool control_char(unsigned c) {
        return (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f;
}

bool sf_json_text_has_control(const char *text, size_t len) {
        bool in_string = false;

        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)text[i];

                if (!in_string) {
                        in_string = c == '"';
                        continue;
                }
                if (c == '"') {
                        in_string = false;
                } else if (c == '\\' && i + 1 < len) {
                        char e = text[++i];
                        unsigned v = 0;

                        if (e == 'b' || e == 'f')
                                return true;
                        if (e != 'u')
                                continue;
                        if (i + 4 >= len)
                                return false; /* truncated: the parser refuses it anyway */
                        for (int k = 1; k <= 4; k++) {
                                char h = text[i + k];
                                v = v * 16 + (unsigned)(h >= '0' && h <= '9'   ? h - '0'
                                                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                                                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                                               : 0);
                        }
                        i += 4;
                        if (control_char(v))
                                return true;
                } else if (control_char(c)) {
                        return true;
                }
        }
        return false;
}

bool sf_json_text_is_utf8(const char *text, size_t len) {
        const unsigned char *s = (const unsigned char *)text;
        uint32_t cp;

        for (size_t i = 0, n; i < len; i += n) {
                n = utf8_decode(s + i, len - i, &cp);
                if (n == 0)
                        return false;
        }
        return true;
}

bool sf_json_text_has_single_quote(const char *text, size_t len) {
        bool in_string = false;

        for (size_t i = 0; i < len; i++) {
                if (in_string && text[i] == '\\')
                        i++;
                else if (text[i] == '"')
                        in_string = !in_string;
                else if (!in_string && text[i] == '\'')
                        return true;
        }
        return false;
}
