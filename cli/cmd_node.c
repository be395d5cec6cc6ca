/* sf node ...: the nodes of the cluster, their events and metadata (cli.md §1.2, api.md
 * §2.10; system only). resources and cpuhogs are absent: no node emits the `resources`
 * events they read and the API serves no process metrics. */
#include "cli.h"
#include "out.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static double now_s(void) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* '%s (%d seconds ago)' % (shown, time.time() - lastseen): with_ctime shows time.ctime() of
 * it (node list), else its Python str() (node show). Caller frees. */
static char *last_seen(json_object *n, int with_ctime) {
        json_object *ls = NULL;
        char *shown, *out;
        double t;

        json_object_object_get_ex(n, "lastseen", &ls);
        t = json_object_get_double(ls);
        if (with_ctime) {
                char buf[64];
                time_t secs = (time_t)t;
                struct tm tm;
                localtime_r(&secs, &tm);
                strftime(buf, sizeof(buf), "%a %b %e %H:%M:%S %Y", &tm);
                shown = strdup(buf);
        } else {
                shown = sf_out_pystr(ls);
        }
        if (asprintf(&out, "%s (%ld seconds ago)", shown, (long)(now_s() - t)) < 0)
                abort();
        free(shown);
        return out;
}

/* One letter per role, a space when the node lacks it: D H N E M. */
static void roles_string(json_object *n, char out[6]) {
        static const char *const roles[] = {"is_etcd_master", "is_hypervisor", "is_network_node", "is_eventlog_node",
                                            "is_cluster_maintainer"};
        static const char symbols[] = "DHNEM";
        for (int i = 0; i < 5; i++) {
                json_object *v = NULL;
                out[i] = json_object_object_get_ex(n, roles[i], &v) && json_object_get_boolean(v) ? symbols[i] : ' ';
        }
        out[5] = 0;
}

/* n.get('release') or n.get('version') */
static char *release_of(json_object *n) {
        json_object *v = NULL;
        if (json_object_object_get_ex(n, "release", &v) && json_object_get_boolean(v))
                return sf_out_pystr(v);
        return sf_cli_pyfield(n, "version");
}

/* n.get('state', '') */
static char *state_of(json_object *n) {
        return json_object_object_get_ex(n, "state", NULL) ? sf_cli_pyfield(n, "state") : strdup("");
}

static int node_list(sf_cli_t *cli, sf_args_t *a) {
        static const char *const hdr[] = {"name", "ip", "lastseen", "state", "roles", "release"};
        json_object *list = NULL;
        (void)a;
        if (sf_cli_call(cli, "GET", strdup("/nodes"), NULL, &list) < 0)
                return 1;
        if (!list)
                list = json_object_new_array();
        size_t n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
        if (cli->out == OUT_JSON) {
                sf_out_json(stdout, list);
                json_object_put(list);
                return 0;
        }
        sf_table_t *t = NULL;
        if (cli->out == OUT_PRETTY) {
                printf("Roles: D = etcd master; H = hypervisor; N = network node;\n"
                       "       E = eventlog node, M = cluster maintenance node\n\n");
                t = sf_table_new(6, hdr);
        } else {
                printf("name,ip,lastseen,state,roles,version\n");
        }
        for (size_t i = 0; i < n; i++) {
                json_object *node = json_object_array_get_idx(list, i);
                char roles[6], *name = sf_cli_pyfield(node, "name"), *ip = sf_cli_pyfield(node, "ip"),
                               *seen = t ? last_seen(node, 1) : sf_cli_pyfield(node, "lastseen"),
                               *state = state_of(node), *rel = release_of(node);
                roles_string(node, roles);
                if (t) {
                        const char *row[] = {name, ip, seen, state, roles, rel};
                        sf_table_add(t, row);
                } else {
                        printf("%s,%s,%s,%s,%s,%s\n", name, ip, seen, state, roles, rel);
                }
                free(name);
                free(ip);
                free(seen);
                free(state);
                free(rel);
        }
        if (t) {
                sf_table_print(stdout, t);
                sf_table_free(t);
        }
        json_object_put(list);
        return 0;
}

static int node_show(sf_cli_t *cli, sf_args_t *a) {
        static const char *const fields[][2] = {
                {"name", "name"},
                {"ip", "ip"},
                {"state", "state"},
                {"last seen", NULL},
                {"version", "version"},
                {"release", "release"},
                {"etcd master", "is_etcd_master"},
                {"hypervisor", "is_hypervisor"},
                {"network node", "is_network_node"},
                {"event log node", "is_eventlog_node"},
                {"cluster maintainer", "is_cluster_maintainer"},
        };
        json_object *n = NULL, *md = NULL, *name = NULL;
        int rc = 1, cap;

        cap = sf_client_capable(&cli->client, "node-get");
        if (cap <= 0) {
                if (cap == 0)
                        fprintf(stderr, "ERROR: The API server version you are talking to does not support showing a "
                                        "single node, try \"node list\" instead.\n");
                return 1;
        }
        if (sf_cli_call(cli, "GET", sf_cli_path("/nodes/%s", a->pos[0], NULL), NULL, &n) < 0)
                return 1;
        if (!json_object_is_type(n, json_type_object)) {
                printf("Node not found\n");
                goto cleanup;
        }
        /* metadata only from a server that has it; else shown empty, as upstream */
        cap = sf_client_capable(&cli->client, "node-metadata");
        if (cap < 0)
                goto cleanup;
        json_object_object_get_ex(n, "name", &name);
        if (cap && sf_cli_call(cli, "GET", sf_cli_path("/nodes/%s/metadata", json_object_get_string(name), NULL), NULL,
                               &md) < 0)
                goto cleanup;
        if (cli->out == OUT_JSON) {
                json_object_object_add(n, "metadata", md ? md : json_object_new_object());
                md = NULL;
                sf_out_json(stdout, n);
                rc = 0;
                goto cleanup;
        }
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                char *v = fields[i][1] ? sf_cli_pyfield(n, fields[i][1]) : last_seen(n, 0);
                if (cli->out == OUT_PRETTY)
                        printf("%-25s: %s\n", fields[i][0], v);
                else
                        printf("%s:%s\n", fields[i][0], v);
                free(v);
        }
        printf("\n");
        sf_cli_metadata_block(cli, md);
        rc = 0;
cleanup:
        json_object_put(md);
        json_object_put(n);
        return rc;
}

static int node_delete(sf_cli_t *cli, sf_args_t *a) {
        json_object *out = NULL;
        if (sf_cli_call(cli, "DELETE", sf_cli_path("/nodes/%s", a->pos[0], NULL), NULL, &out) < 0)
                return 1;
        return sf_cli_print_response(cli, out);
}

static int node_events(sf_cli_t *cli, sf_args_t *a) {
        return sf_cli_events(cli, "nodes", a);
}

/* Not in upstream's CLI (its library has them); the API serves them under node-metadata. */
static int need_node_metadata(sf_cli_t *cli) {
        int cap = sf_client_capable(&cli->client, "node-metadata");
        if (cap == 0)
                fprintf(stderr, "Unfortunately this server does not implement node metadata.\n");
        return cap == 1 ? 0 : 1;
}

static int node_set_metadata(sf_cli_t *cli, sf_args_t *a) {
        if (need_node_metadata(cli))
                return 1;
        return sf_cli_set_metadata(cli, "nodes", a->pos[0], a->pos[1], a->pos[2], 0);
}

static int node_delete_metadata(sf_cli_t *cli, sf_args_t *a) {
        if (need_node_metadata(cli))
                return 1;
        return sf_cli_delete_metadata(cli, "nodes", a->pos[0], a->pos[1]);
}

static const sf_cmd_t cmds[] = {
        SF_CMD("list", "", "List nodes", 0, node_list),
        SF_CMD("show", "NODE", "Show a node", 1, node_show),
        SF_CMD("delete", "NODE", "Delete a node", 1, node_delete),
        SF_CMD("events", "NODE", "Display events for a node", 1, node_events, .opts = sf_cli_events_opts),
        SF_CMD("set-metadata", "NODE KEY VALUE", "Set a metadata item", 3, node_set_metadata),
        SF_CMD("delete-metadata", "NODE KEY", "Delete a metadata item", 2, node_delete_metadata),
        {0},
};

const sf_group_t sf_group_node = {"node", "Node commands", cmds};
