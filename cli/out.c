/* See out.h. JSON as Python's json.dumps(indent=4, sort_keys=True, ensure_ascii=True);
 * tables as prettytable 3.6 (one space padding, centred, str.center's odd-slack rule). */
#include "out.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Decodes one UTF-8 sequence at s; returns its length (1 for an invalid byte, as U+FFFD). */
static int utf8_next(const unsigned char *s, uint32_t *cp) {
        int n;
        if (s[0] < 0x80) { *cp = s[0]; return 1; }
        if ((s[0] & 0xe0) == 0xc0) { *cp = s[0] & 0x1f; n = 2; }
        else if ((s[0] & 0xf0) == 0xe0) { *cp = s[0] & 0x0f; n = 3; }
        else if ((s[0] & 0xf8) == 0xf0) { *cp = s[0] & 0x07; n = 4; }
        else { *cp = 0xfffd; return 1; }
        for (int i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80) { *cp = 0xfffd; return 1; }
                *cp = (*cp << 6) | (s[i] & 0x3f);
        }
        return n;
}

static void json_str(FILE *f, const char *s) {
        const unsigned char *p = (const unsigned char *)s;
        fputc('"', f);
        while (*p) {
                uint32_t cp;
                int n = utf8_next(p, &cp);
                p += n;
                switch (cp) {
                case '"': fputs("\\\"", f); break;
                case '\\': fputs("\\\\", f); break;
                case '\n': fputs("\\n", f); break;
                case '\r': fputs("\\r", f); break;
                case '\t': fputs("\\t", f); break;
                case '\b': fputs("\\b", f); break;
                case '\f': fputs("\\f", f); break;
                default:
                        if (cp < 0x20 || (cp >= 0x7f && cp < 0x10000 && cp != 0x7f))
                                fprintf(f, "\\u%04x", cp);
                        else if (cp == 0x7f)
                                fputc(0x7f, f);
                        else if (cp >= 0x10000) {
                                cp -= 0x10000;
                                fprintf(f, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
                        } else
                                fputc((int)cp, f);
                }
        }
        fputc('"', f);
}

/* Python float repr: the fewest significant digits that read back; positional between
 * 1e-4 and 1e16 (with ".0" when integral), else exponent form, as repr() chooses. */
static void py_float(char *buf, size_t len, double d) {
        int prec, exp;
        if (isnan(d)) { snprintf(buf, len, "NaN"); return; }
        if (isinf(d)) { snprintf(buf, len, d < 0 ? "-Infinity" : "Infinity"); return; }
        for (prec = 1; prec < 17; prec++) {
                snprintf(buf, len, "%.*e", prec - 1, d);
                if (strtod(buf, NULL) == d)
                        break;
        }
        snprintf(buf, len, "%.*e", prec - 1, d);
        exp = atoi(strchr(buf, 'e') + 1);
        if (exp >= -4 && exp < 16) {
                snprintf(buf, len, "%.*f", prec - 1 - exp > 0 ? prec - 1 - exp : 0, d);
                if (!strchr(buf, '.'))
                        strncat(buf, ".0", len - strlen(buf) - 1);
        }
}

static void json_dump(FILE *f, json_object *o, int depth) {
        char num[64];
        switch (json_object_get_type(o)) {
        case json_type_null: fputs("null", f); break;
        case json_type_boolean: fputs(json_object_get_boolean(o) ? "true" : "false", f); break;
        case json_type_int: fprintf(f, "%lld", (long long)json_object_get_int64(o)); break;
        case json_type_double: py_float(num, sizeof(num), json_object_get_double(o)); fputs(num, f); break;
        case json_type_string: json_str(f, json_object_get_string(o)); break;
        case json_type_array: {
                size_t n = json_object_array_length(o);
                if (!n) { fputs("[]", f); break; }
                fputs("[\n", f);
                for (size_t i = 0; i < n; i++) {
                        fprintf(f, "%*s", (depth + 1) * 4, "");
                        json_dump(f, json_object_array_get_idx(o, i), depth + 1);
                        fputs(i + 1 < n ? ",\n" : "\n", f);
                }
                fprintf(f, "%*s]", depth * 4, "");
                break;
        }
        case json_type_object: {
                size_t n = (size_t)json_object_object_length(o), i = 0;
                const char **keys;
                if (!n) { fputs("{}", f); break; }
                keys = calloc(n, sizeof(*keys));
                if (!keys) abort();
                json_object_object_foreach(o, k, v) { (void)v; keys[i++] = k; }
                qsort(keys, n, sizeof(*keys), cmp_str);
                fputs("{\n", f);
                for (i = 0; i < n; i++) {
                        fprintf(f, "%*s", (depth + 1) * 4, "");
                        json_str(f, keys[i]);
                        fputs(": ", f);
                        json_dump(f, json_object_object_get(o, keys[i]), depth + 1);
                        fputs(i + 1 < n ? ",\n" : "\n", f);
                }
                fprintf(f, "%*s}", depth * 4, "");
                free(keys);
                break;
        }
        }
}

void sf_out_json(FILE *f, json_object *obj) {
        json_dump(f, obj, 0);
        fputc('\n', f);
}

/* repr() of a str: single quotes unless it holds ' and no ", as Python picks. */
static void py_repr_str(FILE *f, const char *s) {
        char q = strchr(s, '\'') && !strchr(s, '"') ? '"' : '\'';
        fputc(q, f);
        for (const char *p = s; *p; p++) {
                switch (*p) {
                case '\\': fputs("\\\\", f); break;
                case '\n': fputs("\\n", f); break;
                case '\r': fputs("\\r", f); break;
                case '\t': fputs("\\t", f); break;
                default:
                        if (*p == q)
                                fputc('\\', f);
                        fputc(*p, f);
                }
        }
        fputc(q, f);
}

static void py_repr(FILE *f, json_object *o, int top) {
        char num[64];
        switch (json_object_get_type(o)) {
        case json_type_null: fputs("None", f); break;
        case json_type_boolean: fputs(json_object_get_boolean(o) ? "True" : "False", f); break;
        case json_type_int: fprintf(f, "%lld", (long long)json_object_get_int64(o)); break;
        case json_type_double: py_float(num, sizeof(num), json_object_get_double(o)); fputs(num, f); break;
        case json_type_string:
                if (top) { fputs(json_object_get_string(o), f); break; }
                py_repr_str(f, json_object_get_string(o));
                break;
        case json_type_array:
                fputc('[', f);
                for (size_t i = 0; i < json_object_array_length(o); i++) {
                        if (i) fputs(", ", f);
                        py_repr(f, json_object_array_get_idx(o, i), 0);
                }
                fputc(']', f);
                break;
        case json_type_object: {
                int first = 1;
                fputc('{', f);
                json_object_object_foreach(o, k, v) {
                        json_object *ks = json_object_new_string(k);
                        if (!first) fputs(", ", f);
                        first = 0;
                        py_repr(f, ks, 0);
                        json_object_put(ks);
                        fputs(": ", f);
                        py_repr(f, v, 0);
                }
                fputc('}', f);
                break;
        }
        }
}

char *sf_out_pystr(json_object *v) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f) abort();
        py_repr(f, v, 1);
        fclose(f);
        return buf;
}

/* ---- tables ---- */

struct sf_table {
        int ncols, nrows;
        char **headers;
        char ***rows;
        int *left;
};

sf_table_t *sf_table_new(int ncols, const char *const *headers) {
        sf_table_t *t = calloc(1, sizeof(*t));
        if (!t) abort();
        t->ncols = ncols;
        t->headers = calloc(ncols, sizeof(char *));
        t->left = calloc(ncols, sizeof(int));
        if (!t->headers || !t->left) abort();
        for (int i = 0; i < ncols; i++)
                t->headers[i] = strdup(headers[i]);
        return t;
}

void sf_table_add(sf_table_t *t, const char *const *cells) {
        char **row = calloc(t->ncols, sizeof(char *));
        t->rows = realloc(t->rows, sizeof(char **) * (t->nrows + 1));
        if (!row || !t->rows) abort();
        for (int i = 0; i < t->ncols; i++)
                row[i] = strdup(cells[i] ? cells[i] : "");
        t->rows[t->nrows++] = row;
}

void sf_table_left(sf_table_t *t, int col) {
        t->left[col] = 1;
}

/* Display width of the UTF-8 text s[0..n) (code points; no wide-character handling). */
static int text_width(const char *s, size_t n) {
        int w = 0;
        for (size_t i = 0; i < n; i++)
                if (((unsigned char)s[i] & 0xc0) != 0x80) w++;
        return w;
}

static int cell_width(const char *s) {
        int w = 0;
        for (;;) {
                const char *nl = strchr(s, '\n');
                size_t n = nl ? (size_t)(nl - s) : strlen(s);
                int lw = text_width(s, n);
                if (lw > w) w = lw;
                if (!nl) return w;
                s = nl + 1;
        }
}

static int cell_lines(const char *s) {
        int n = 1;
        for (; *s; s++) if (*s == '\n') n++;
        return n;
}

/* Line i of cell s, into (p, n); empty past the end. */
static void cell_line(const char *s, int i, const char **p, size_t *n) {
        for (; i > 0 && s; i--) {
                s = strchr(s, '\n');
                if (s) s++;
        }
        if (!s) { *p = ""; *n = 0; return; }
        *p = s;
        *n = strchrnul(s, '\n') - s;
}

static void hrule(FILE *f, sf_table_t *t, const int *w) {
        for (int c = 0; c < t->ncols; c++) {
                fputc('+', f);
                for (int i = 0; i < w[c] + 2; i++) fputc('-', f);
        }
        fputs("+\n", f);
}

static void print_row(FILE *f, sf_table_t *t, const int *w, char **cells) {
        int h = 1;
        for (int c = 0; c < t->ncols; c++)
                if (cell_lines(cells[c]) > h) h = cell_lines(cells[c]);
        for (int l = 0; l < h; l++) {
                for (int c = 0; c < t->ncols; c++) {
                        const char *p;
                        size_t n;
                        int tw, excess, lpad, rpad;
                        cell_line(cells[c], l, &p, &n);
                        tw = text_width(p, n);
                        excess = w[c] - tw;
                        if (t->left[c]) {  /* prettytable aligns the header like its column */
                                lpad = 0; rpad = excess;
                        } else if (excess % 2) {
                                lpad = excess / 2 + (tw % 2 ? 0 : 1);
                                rpad = excess - lpad;
                        } else {
                                lpad = rpad = excess / 2;
                        }
                        fprintf(f, "| %*s%.*s%*s ", lpad, "", (int)n, p, rpad, "");
                }
                fputs("|\n", f);
        }
}

void sf_table_print(FILE *f, sf_table_t *t) {
        int *w = calloc(t->ncols, sizeof(int));
        if (!w) abort();
        for (int c = 0; c < t->ncols; c++) {
                w[c] = cell_width(t->headers[c]);
                for (int r = 0; r < t->nrows; r++)
                        if (cell_width(t->rows[r][c]) > w[c]) w[c] = cell_width(t->rows[r][c]);
        }
        hrule(f, t, w);
        print_row(f, t, w, t->headers);
        hrule(f, t, w);
        for (int r = 0; r < t->nrows; r++)
                print_row(f, t, w, t->rows[r]);
        hrule(f, t, w);
        free(w);
}

void sf_table_free(sf_table_t *t) {
        if (!t) return;
        for (int c = 0; c < t->ncols; c++) free(t->headers[c]);
        for (int r = 0; r < t->nrows; r++) {
                for (int c = 0; c < t->ncols; c++) free(t->rows[r][c]);
                free(t->rows[r]);
        }
        free(t->rows);
        free(t->headers);
        free(t->left);
        free(t);
}
