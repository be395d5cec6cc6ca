/* sf network ...: networks, their events, interfaces and metadata (cli.md §1.2, api.md
 * §2.6). ping, addresses and routes are absent: the API does not serve them. */
#include "cli.h"
#include "out.h"
#include "wait.h"

#include <stdlib.h>
#include <string.h>

/* Upstream's network show for n (a network dict): fields, then its metadata (GET
 * .../metadata); --json prints n with `metadata` replaced by that. Takes n. */
static int show_network(sf_cli_t *cli, json_object *n) {
        static const char *const fields[][2] = {
                {"uuid", "uuid"},         {"name", "name"},
                {"vxlan id", NULL},       {"netblock", "netblock"},
                {"provide dhcp", "provide_dhcp"}, {"provide nat", "provide_nat"},
                {"provide DNS", NULL},    {"floating gateway", "floating_gateway"},
                {"namespace", "namespace"}, {"state", "state"},
        };
        json_object *md = NULL, *uuid = NULL;
        int rc = 1;

        if (!json_object_is_type(n, json_type_object)) {
                printf("Network not found\n");
                goto cleanup;
        }
        json_object_object_get_ex(n, "uuid", &uuid);
        if (sf_cli_call(cli, "GET", sf_cli_path("/networks/%s/metadata", json_object_get_string(uuid), NULL), NULL,
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
                char *v;
                if (!strcmp(fields[i][0], "vxlan id")) /* n['vxid'] if present, else n.get('vxlan_id') */
                        v = sf_cli_pyfield(n, json_object_object_get_ex(n, "vxid", NULL) ? "vxid" : "vxlan_id");
                else if (!strcmp(fields[i][0], "provide DNS"))
                        v = json_object_object_get_ex(n, "provide_dns", NULL) ? sf_cli_pyfield(n, "provide_dns")
                                                                               : strdup("False");
                else
                        v = sf_cli_pyfield(n, fields[i][1]);
                if (cli->out == OUT_PRETTY)
                        printf("%-16s: %s\n", fields[i][0], v);
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

static int net_list(sf_cli_t *cli, sf_args_t *a) {
        static const char *const keys[] = {"uuid", "name", "namespace", "netblock", "state"};
        json_object *body = json_object_new_object(), *list = NULL;
        json_object_object_add(body, "all", json_object_new_boolean(sf_arg_flag(a, "all", 0)));
        if (sf_cli_call(cli, "GET", strdup("/networks"), body, &list) < 0)
                return 1;
        size_t n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
        if (cli->out == OUT_JSON) {
                if (!list)
                        list = json_object_new_array(); /* an empty answer prints as upstream would */
                sf_out_json(stdout, list);
                json_object_put(list);
                return 0;
        }
        sf_table_t *t = cli->out == OUT_PRETTY ? sf_table_new(5, keys) : NULL;
        if (!t) /* upstream's header lacks `state` although every row has it (cli.md §4): fixed */
                printf("uuid,name,namespace,netblock,state\n");
        for (size_t i = 0; i < n; i++) {
                json_object *net = json_object_array_get_idx(list, i);
                char *v[5];
                for (int k = 0; k < 5; k++)
                        v[k] = sf_cli_pyfield(net, keys[k]);
                if (t)
                        sf_table_add(t, (const char *const *)v);
                else
                        printf("%s,%s,%s,%s,%s\n", v[0], v[1], v[2], v[3], v[4]);
                for (int k = 0; k < 5; k++)
                        free(v[k]);
        }
        if (t) {
                sf_table_print(stdout, t);
                sf_table_free(t);
        }
        json_object_put(list);
        return 0;
}

static int net_show(sf_cli_t *cli, sf_args_t *a) {
        json_object *n = NULL;
        if (sf_cli_call(cli, "GET", sf_cli_path("/networks/%s", a->pos[0], NULL), NULL, &n) < 0)
                return 1;
        return show_network(cli, n);
}

static int net_create(sf_cli_t *cli, sf_args_t *a) {
        static const char *const pending[] = {"initial", "creating", NULL};
        const char *ns = sf_arg(a, "namespace");
        int dns = sf_arg_flag(a, "dns", 0);
        json_object *body, *n = NULL, *uuid = NULL;

        /* Upstream asks only when DNS is wanted (without it the body has no provide_dns). */
        if (dns) {
                int cap = sf_client_capable(&cli->client, "provide-dns");
                if (cap <= 0) {
                        if (cap == 0)
                                fprintf(stderr, "ERROR: The API server version you are talking to does not support "
                                                "virtual network DNS services.\n");
                        return 1;
                }
        }
        body = json_object_new_object();
        json_object_object_add(body, "netblock", json_object_new_string(a->pos[1]));
        json_object_object_add(body, "provide_dhcp", json_object_new_boolean(sf_arg_flag(a, "dhcp", 1)));
        json_object_object_add(body, "provide_nat", json_object_new_boolean(sf_arg_flag(a, "nat", 1)));
        json_object_object_add(body, "name", json_object_new_string(a->pos[0]));
        json_object_object_add(body, "namespace", ns ? json_object_new_string(ns) : NULL);
        if (dns)
                json_object_object_add(body, "provide_dns", json_object_new_boolean(1));
        if (sf_cli_call(cli, "POST", strdup("/networks"), body, &n) < 0)
                return 1;
        if (json_object_object_get_ex(n, "uuid", &uuid) && sf_wait_deadline_s(cli) > 0) {
                json_object *last = NULL;
                char *path = sf_cli_path("/networks/%s", json_object_get_string(uuid), NULL);
                int r = sf_wait_state(cli, "network", path, pending, NULL, &last);
                free(path);
                if (r == -1) {
                        json_object_put(n);
                        json_object_put(last);
                        return 1;
                }
                if (last) { /* a timeout shows the network as it is, as upstream */
                        json_object_put(n);
                        n = last;
                }
        }
        return show_network(cli, n);
}

static int net_delete(sf_cli_t *cli, sf_args_t *a) {
        const char *ns = sf_arg(a, "namespace");
        json_object *body = NULL, *out = NULL, *uuid = NULL;

        /* Upstream drops --namespace (passes None); we send it: the API then refuses a network
         * of another namespace (404 network not in namespace), the safety check it is for. */
        if (ns) {
                body = json_object_new_object();
                json_object_object_add(body, "namespace", json_object_new_string(ns));
        }
        if (sf_cli_call(cli, "DELETE", sf_cli_path("/networks/%s", a->pos[0], NULL), body, &out) < 0)
                return 1;
        /* Upstream returns at once; we wait (per --async) until the network is gone, so that
         * a script may re-create its name or netblock next. A network whose instances are
         * still there waits in delete-wait: that is not waited for. */
        if (json_object_object_get_ex(out, "uuid", &uuid) && sf_wait_deadline_s(cli) > 0) {
                static const char *const pending[] = {"initial", "creating", "created", "deleting", NULL};
                json_object *last = NULL;
                char *path = sf_cli_path("/networks/%s", json_object_get_string(uuid), NULL);
                int r = sf_wait_state(cli, "network", path, pending, NULL, &last);
                free(path);
                if (r == -1) {
                        json_object_put(out);
                        json_object_put(last);
                        return 1;
                }
                if (last) {
                        json_object_put(out);
                        out = last;
                }
        }
        return sf_cli_print_response(cli, out);
}

static int net_delete_all(sf_cli_t *cli, sf_args_t *a) {
        const char *ns = sf_arg(a, "namespace");
        json_object *body, *out = NULL;

        if (!sf_arg_flag(a, "confirm", 0)) {
                /* upstream prints this on stdout and exits 0; a refusal is an error here */
                fprintf(stderr, "You must be sure. Use option --confirm.\n");
                return 1;
        }
        body = json_object_new_object();
        json_object_object_add(body, "confirm", json_object_new_boolean(1));
        json_object_object_add(body, "namespace", ns ? json_object_new_string(ns) : NULL);
        json_object_object_add(body, "clean_wait", json_object_new_boolean(sf_arg_flag(a, "clean-wait", 0)));
        if (sf_cli_call(cli, "DELETE", strdup("/networks"), body, &out) < 0)
                return 1;
        return sf_cli_print_response(cli, out); /* upstream prints nothing, even with --json */
}

static int net_events(sf_cli_t *cli, sf_args_t *a) {
        return sf_cli_events(cli, "networks", a);
}

static int net_instances(sf_cli_t *cli, sf_args_t *a) {
        static const char *const keys[] = {"instance_uuid", "ipv4", "floating"};
        json_object *list = NULL;
        if (sf_cli_call(cli, "GET", sf_cli_path("/networks/%s/interfaces", a->pos[0], NULL), NULL, &list) < 0)
                return 1;
        size_t n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
        if (cli->out == OUT_JSON) {
                if (!list)
                        list = json_object_new_array(); /* an empty answer prints as upstream would */
                sf_out_json(stdout, list);
                json_object_put(list);
                return 0;
        }
        sf_table_t *t = cli->out == OUT_PRETTY ? sf_table_new(3, keys) : NULL;
        if (!t)
                printf("instance_uuid,ipv4,floating\n");
        for (size_t i = 0; i < n; i++) {
                json_object *ni = json_object_array_get_idx(list, i);
                char *v[3];
                for (int k = 0; k < 3; k++)
                        v[k] = sf_cli_pyfield(ni, keys[k]);
                if (t)
                        sf_table_add(t, (const char *const *)v);
                else
                        printf("%s,%s,%s\n", v[0], v[1], v[2]);
                for (int k = 0; k < 3; k++)
                        free(v[k]);
        }
        if (t) {
                sf_table_print(stdout, t);
                sf_table_free(t);
        }
        json_object_put(list);
        return 0;
}

static int net_set_metadata(sf_cli_t *cli, sf_args_t *a) {
        return sf_cli_set_metadata(cli, "networks", a->pos[0], a->pos[1], a->pos[2], 0);
}

static int net_delete_metadata(sf_cli_t *cli, sf_args_t *a) {
        return sf_cli_delete_metadata(cli, "networks", a->pos[0], a->pos[1]);
}

static const sf_opt_t list_opts[] = {
        SF_OPT("all", 'a', NULL, "Include networks in error and deleted networks"),
        {0},
};
static const sf_opt_t create_opts[] = {
        SF_OPT("dhcp", 0, NULL, "Should this network have DHCP? (default on)", .neg = "no-dhcp"),
        SF_OPT("nat", 0, NULL, "Should this network reach the Internet via NAT? (default on)", .neg = "no-nat"),
        SF_OPT("dns", 0, NULL, "Should this network provide DNS entries for its instances? (default off)",
               .neg = "no-dns"),
        SF_OPT("namespace", 0, "TEXT", "If you are an admin, create the network in this namespace"),
        {0},
};
static const sf_opt_t delete_opts[] = {
        SF_OPT("namespace", 0, "TEXT", "Only if the network is in this namespace"),
        {0},
};
static const sf_opt_t delete_all_opts[] = {
        SF_OPT("confirm", 0, NULL, "Yes, delete them all"),
        SF_OPT("namespace", 0, "TEXT", "The namespace whose networks to delete (admins only; default: your own)"),
        SF_OPT("clean-wait", 0, NULL, "Also delete networks with instances, once those are gone (delete-wait)"),
        {0},
};

static const sf_cmd_t cmds[] = {
        SF_CMD("list", "", "List networks", 0, net_list, .opts = list_opts),
        SF_CMD("show", "NETWORK_REF", "Show a network", 1, net_show),
        SF_CMD("create", "NAME NETBLOCK", "Create a network (NETBLOCK: a CIDR range, e.g. 192.168.200.0/24)", 2,
               net_create, .opts = create_opts),
        SF_CMD("delete", "NETWORK_REF", "Delete a network", 1, net_delete, .opts = delete_opts),
        SF_CMD("delete-all", "", "Delete ALL networks", 0, net_delete_all, .opts = delete_all_opts),
        SF_CMD("events", "NETWORK_REF", "Display events for a network", 1, net_events, .opts = sf_cli_events_opts),
        SF_CMD("instances", "NETWORK_REF", "List instances on a network", 1, net_instances),
        SF_CMD("set-metadata", "NETWORK_REF KEY VALUE", "Set a metadata item", 3, net_set_metadata),
        SF_CMD("delete-metadata", "NETWORK_REF KEY", "Delete a metadata item", 2, net_delete_metadata),
        {0},
};

const sf_group_t sf_group_network = {"network", "Network commands", cmds};
