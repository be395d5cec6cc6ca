/* sf events ...: the live event stream (GET /events/stream, docs/events-stream.md); not in
 * upstream, whose clients poll GET /<objects>/<ref>/events. */
#include "cli.h"
#include "json.h"
#include "live.h"
#include "out.h"
#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One event in the chosen format; stdout is flushed per event (followers read pipes).
 * --json: JSON Lines, the stream's record with its id added, as Python's json.dumps;
 * --simple: upstream's events columns after the object's type and uuid (message and extra
 * may hold commas, so they stay last); --pretty: one readable line. */
static void event_print(sf_cli_t *cli, const sf_stream_event_t *e) {
        json_object *ts = NULL;
        char when[64];
        if (cli->out == OUT_JSON) {
                json_object *o = json_object_new_object();
                char *text;
                json_object_object_add(o, "id", json_object_new_int64(e->id));
                json_object_object_foreach(e->data, k, v) json_object_object_add(o, k, json_object_get(v));
                text = sf_json_dumps(o);
                if (text)
                        printf("%s\n", text);
                free(text);
                json_object_put(o);
                fflush(stdout);
                return;
        }
        json_object_object_get_ex(e->data, "timestamp", &ts);
        if (ts && (json_object_is_type(ts, json_type_double) || json_object_is_type(ts, json_type_int)))
                sf_cli_pytime(json_object_get_double(ts), when, sizeof(when));
        else {
                char *s = sf_out_pystr(ts);
                snprintf(when, sizeof(when), "%s", s);
                free(s);
        }
        char *otype = sf_cli_pyfield(e->data, "object_type"), *ouuid = sf_cli_pyfield(e->data, "object_uuid"),
             *node = sf_cli_pyfield(e->data, "fqdn"), *dur = sf_cli_pyfield(e->data, "duration"),
             *type = sf_cli_pyfield(e->data, "type"), *msg = sf_cli_pyfield(e->data, "message"),
             *extra = sf_cli_pyfield(e->data, "extra");
        /* one event, one line: a newline inside a value would forge another */
        for (char *f[] = {otype, ouuid, node, dur, type, msg, extra}, **p = f; p < f + 7; p++)
                for (char *c = *p; *c; c++)
                        if (*c == '\n' || *c == '\r')
                                *c = ' ';
        if (cli->out == OUT_SIMPLE)
                printf("%s,%s,%s,%s,%s,%s,%s\n", otype, ouuid, when, node, dur, msg, extra);
        else
                printf("%s %s %s %s on %s: %s %s\n", when, otype, ouuid, type, node, msg, extra);
        fflush(stdout);
        free(otype);
        free(ouuid);
        free(node);
        free(dur);
        free(type);
        free(msg);
        free(extra);
}

/* A record without an id is the server speaking (410: events were lost; 401: the token
 * ended, the stream re-authenticates): on stderr, never among the events. */
static void stream_notice(const sf_stream_event_t *e) {
        char *err = sf_cli_pyfield(e->data, "error"), *status = sf_cli_pyfield(e->data, "status");
        fprintf(stderr, "event stream: %s (status %s)\n", err, status);
        free(err);
        free(status);
}

int sf_live_events_follow(sf_cli_t *cli, sf_args_t *a) {
        sf_stream_t *s = NULL;
        struct sigaction old;
        int r;
        const char *after = sf_arg(a, "after");
        long long after_id = -1;
        if (after) {
                char *end = NULL;
                errno = 0;
                after_id = strtoll(after, &end, 10);
                if (!*after || *end || errno || after_id < 0) {
                        fprintf(stderr, "Error: Invalid value for '--after': '%s' is not an event id\n", after);
                        return 1;
                }
        }
        if (sf_stream_open(&cli->client, sf_arg(a, "type"), a->npos ? a->pos[0] : NULL, after_id, &sf_live_interrupted,
                           1, &s) < 0)
                return 1;
        sf_live_catch_sigint(&old);
        if (cli->out == OUT_SIMPLE) {
                printf("object type,object uuid,timestamp,node,duration,message,extra\n");
                fflush(stdout);
        }
        for (;;) {
                sf_stream_event_t *e = NULL;
                r = sf_stream_next(s, 1000, &e);
                if (r == -EAGAIN)
                        continue;
                if (r < 0)
                        break;
                if (!strcmp(e->event, "error"))
                        stream_notice(e);
                else if (e->data && e->id >= 0)
                        event_print(cli, e);
                else /* not a JSON object, or no id: not an event of ours */
                        fprintf(stderr, e->id >= 0 ? "event stream: skipped a malformed event (id %lld)\n"
                                                   : "event stream: skipped a malformed event (no id)\n",
                                e->id);
                sf_stream_event_free(e);
        }
        sf_stream_free(s);
        sigaction(SIGINT, &old, NULL);
        if (r == -EINTR)
                sf_live_exit_interrupted();
        return 1;
}

static const sf_opt_t follow_opts[] = {
        SF_OPT("type", 't', "TYPE",
               "Only events of objects of this type (instance, network, networkinterface, namespace, node, ...)"),
        SF_OPT("after", 0, "ID",
               "Start after this event id (as Last-Event-ID; 0: all the stream still holds), not at the live end"),
        {0},
};

static const sf_cmd_t cmds[] = {
        SF_CMD("follow", "[REF]", "Print events as they happen, until Ctrl-C (REF: only this object's; a uuid)", 0,
               sf_live_events_follow, .opts = follow_opts, .noptargs = 1),
        {0},
};

const sf_group_t sf_group_events = {"events", "Live event commands (over GET /events/stream)", cmds};
