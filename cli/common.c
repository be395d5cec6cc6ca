/* Helpers every command group shares (cli.h): requests, option values, Python-style
 * rendering of fields, and the events and metadata commands every object type has. */
#include "cli.h"
#include "out.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static int opt_index(const sf_args_t *a, const char *name) {
        for (int i = 0; a->opts && a->opts[i].name; i++)
                if (!strcmp(a->opts[i].name, name))
                        return i;
        return -1;
}

const char *sf_arg(const sf_args_t *a, const char *name) {
        int i = opt_index(a, name);
        return i < 0 || !a->nvalues[i] ? NULL : a->values[i][a->nvalues[i] - 1];
}

const char *const *sf_arg_all(const sf_args_t *a, const char *name, int *n) {
        int i = opt_index(a, name);
        *n = i < 0 ? 0 : a->nvalues[i];
        return i < 0 ? NULL : a->values[i];
}

int sf_arg_flag(const sf_args_t *a, const char *name, int dflt) {
        const char *v = sf_arg(a, name);
        return v ? v[0] == '1' : dflt;
}

char *sf_cli_path(const char *fmt, const char *a, const char *b) {
        char *ea = a ? sf_client_escape(a) : NULL, *eb = b ? sf_client_escape(b) : NULL, *p;
        if (asprintf(&p, fmt, ea, eb) < 0)
                abort();
        free(ea);
        free(eb);
        return p;
}

int sf_cli_call(sf_cli_t *cli, const char *method, char *path, json_object *body, json_object **ret) {
        json_object *dummy = NULL;
        int r = sf_client_request(&cli->client, method, path, body, ret ? ret : &dummy);
        json_object_put(dummy);
        json_object_put(body);
        free(path);
        return r;
}

/* Upstream's chunk with blob-data-limit (cli.md §3.4). */
#define BLOB_DATA_CHUNK (512ULL * 1024 * 1024)

int sf_cli_blob_download(sf_cli_t *cli, const char *uuid, FILE *f) {
        int cap = sf_client_capable(&cli->client, "blob-data-limit");
        unsigned long long offset = 0, got;
        char *path, *fmt;

        if (cap < 0)
                return -1;
        for (;;) {
                if (asprintf(&fmt, cap ? "/blobs/%%s/data?offset=%llu&limit=%llu" : "/blobs/%%s/data?offset=%llu",
                             offset, BLOB_DATA_CHUNK) < 0)
                        abort();
                path = sf_cli_path(fmt, uuid, NULL);
                free(fmt);
                got = 0;
                if (sf_client_download(&cli->client, path, f, &got) < 0) {
                        free(path);
                        return -1;
                }
                free(path);
                offset += got;
                if (!cap || got < BLOB_DATA_CHUNK)
                        return 0;
        }
}

char *sf_cli_pyfield(json_object *o, const char *key) {
        json_object *v = NULL;
        json_object_object_get_ex(o, key, &v);
        return sf_out_pystr(v);
}

void sf_cli_json_empty(sf_cli_t *cli) {
        if (cli->out == OUT_JSON)
                printf("{}\n");
}

int sf_cli_print_response(sf_cli_t *cli, json_object *out) {
        if (cli->out == OUT_JSON) {
                if (out)
                        sf_out_json(stdout, out);
                else
                        printf("null\n");
        }
        json_object_put(out);
        return 0;
}

/* ---- events ---- */

const sf_opt_t sf_cli_events_opts[] = {
        SF_OPT("type", 't', "TYPE", "Only events of this type (audit, mutate, status, usage, resources, prune, historic)"),
        SF_OPT("limit", 'l', "INTEGER", "At most this many events"),
        {0},
};

/* datetime.fromtimestamp(ts) in local time: fraction omitted when zero, as Python. */
void sf_cli_pytime(double ts, char *buf, size_t len) {
        time_t secs = (time_t)ts;
        long usec = (long)((ts - (double)secs) * 1e6 + 0.5);
        struct tm tm;
        if (usec >= 1000000) {
                secs++;
                usec -= 1000000;
        }
        localtime_r(&secs, &tm);
        size_t n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
        if (usec && n < len)
                snprintf(buf + n, len - n, ".%06ld", usec);
}

int sf_cli_events(sf_cli_t *cli, const char *plural, sf_args_t *a) {
        json_object *body = NULL, *list = NULL;
        const char *type = sf_arg(a, "type"), *limit = sf_arg(a, "limit");
        char fmt[96];
        if (type || limit) {
                body = json_object_new_object();
                if (type)
                        json_object_object_add(body, "event_type", json_object_new_string(type));
                if (limit) /* upstream's CLI sends it as a string */
                        json_object_object_add(body, "limit", json_object_new_string(limit));
        }
        if (type || limit) {
                int cap = sf_client_capable(&cli->client, "events-by-type");
                if (cap <= 0) {
                        if (cap == 0)
                                fprintf(stderr, "ERROR: The API server version you are talking to does not support "
                                                "filtering by event type or count.\n");
                        json_object_put(body);
                        return 1;
                }
        }
        snprintf(fmt, sizeof(fmt), "/%s/%%s/events", plural);
        if (sf_cli_call(cli, "GET", sf_cli_path(fmt, a->pos[0], NULL), body, &list) < 0)
                return 1;
        size_t n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
        if (cli->out == OUT_JSON) {
                if (!list)
                        list = json_object_new_array(); /* an empty answer prints as upstream would */
                sf_out_json(stdout, list);
                json_object_put(list);
                return 0;
        }
        static const char *const hdr[] = {"timestamp", "node", "duration", "message", "extra"};
        sf_table_t *t = cli->out == OUT_PRETTY ? sf_table_new(5, hdr) : NULL;
        if (!t)
                printf("timestamp,node,duration,message,extra\n");
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(list, i), *ts = NULL;
                char when[64];
                json_object_object_get_ex(e, "timestamp", &ts);
                if (ts && (json_object_is_type(ts, json_type_double) || json_object_is_type(ts, json_type_int)))
                        sf_cli_pytime(json_object_get_double(ts), when, sizeof(when));
                else {
                        char *s = sf_out_pystr(ts);
                        snprintf(when, sizeof(when), "%s", s);
                        free(s);
                }
                char *node = sf_cli_pyfield(e, "fqdn"), *dur = sf_cli_pyfield(e, "duration"),
                     *msg = sf_cli_pyfield(e, "message"), *extra = sf_cli_pyfield(e, "extra");
                if (t) {
                        const char *row[] = {when, node, dur, msg, extra};
                        sf_table_add(t, row);
                } else {
                        printf("%s,%s,%s,%s,%s\n", when, node, dur, msg, extra);
                }
                free(node);
                free(dur);
                free(msg);
                free(extra);
        }
        if (t) {
                sf_table_print(stdout, t);
                sf_table_free(t);
        }
        json_object_put(list);
        return 0;
}

/* ---- metadata ---- */

int sf_cli_set_metadata(sf_cli_t *cli, const char *plural, const char *ref, const char *key, const char *value,
                        int parse_special) {
        json_object *body = json_object_new_object(), *v;
        char fmt[96];
        if (parse_special && (!strcmp(key, "tags") || !strcmp(key, "affinity"))) {
                v = json_tokener_parse(value);
                if (!v) {
                        fprintf(stderr, "ERROR: the value of %s must be valid JSON\n", key);
                        json_object_put(body);
                        return 1;
                }
        } else {
                v = json_object_new_string(value);
        }
        json_object_object_add(body, "value", v);
        snprintf(fmt, sizeof(fmt), "/%s/%%s/metadata/%%s", plural);
        if (sf_cli_call(cli, "PUT", sf_cli_path(fmt, ref, key), body, NULL) < 0)
                return 1;
        sf_cli_json_empty(cli);
        return 0;
}

int sf_cli_delete_metadata(sf_cli_t *cli, const char *plural, const char *ref, const char *key) {
        char fmt[96];
        snprintf(fmt, sizeof(fmt), "/%s/%%s/metadata/%%s", plural);
        if (sf_cli_call(cli, "DELETE", sf_cli_path(fmt, ref, key), NULL, NULL) < 0)
                return 1;
        sf_cli_json_empty(cli);
        return 0;
}

void sf_cli_metadata_block(sf_cli_t *cli, json_object *md) {
        printf(cli->out == OUT_PRETTY ? "Metadata:\n" : "metadata,key,value\n");
        if (!json_object_is_type(md, json_type_object))
                return;
        json_object_object_foreach(md, k, v) {
                char *s = sf_out_pystr(v);
                if (cli->out == OUT_PRETTY)
                        printf("    %-8s: %s\n", k, s);
                else
                        printf("metadata,%s,%s\n", k, s);
                free(s);
        }
}
