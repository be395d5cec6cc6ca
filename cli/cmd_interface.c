/* sf interface ...: one network interface, its events and metadata (cli.md §1.2). float and
 * defloat are absent: the API does not serve them. */
#include "cli.h"
#include "out.h"

#include <stdlib.h>
#include <string.h>

/* Upstream's interface metadata commands refuse a server without the capability. 0 when
 * capable; else 1 (message printed). */
static int need_interface_metadata(sf_cli_t *cli) {
        int cap = sf_client_capable(&cli->client, "interface-metadata");
        if (cap == 0)
                fprintf(stderr, "Unfortunately this server does not implement interface metadata.\n");
        return cap == 1 ? 0 : 1;
}

static int iface_show(sf_cli_t *cli, sf_args_t *a) {
        static const char *const fields[][2] = {
                {"uuid", "uuid"},   {"network", "network_uuid"}, {"macaddr", "macaddr"}, {"order", "order"},
                {"ipv4", "ipv4"},   {"floating", "floating"},    {"model", "model"},
        };
        json_object *iface = NULL, *md = NULL;
        char *v[7];
        int rc = 1, cap;

        if (sf_cli_call(cli, "GET", sf_cli_path("/interfaces/%s", a->pos[0], NULL), NULL, &iface) < 0)
                return 1;
        if (!json_object_is_type(iface, json_type_object)) {
                printf("Interface not found\n");
                goto cleanup;
        }
        if (cli->out == OUT_JSON) {
                /* upstream: {"network_interfaces": [the interface filtered]}, no metadata */
                json_object *out = json_object_new_object(), *list = json_object_new_array(),
                            *f = json_object_new_object(), *val;
                for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
                        if (json_object_object_get_ex(iface, fields[i][1], &val))
                                json_object_object_add(f, fields[i][1], json_object_get(val));
                json_object_array_add(list, f);
                json_object_object_add(out, "network_interfaces", list);
                sf_out_json(stdout, out);
                json_object_put(out);
                rc = 0;
                goto cleanup;
        }
        cap = sf_client_capable(&cli->client, "interface-metadata");
        if (cap < 0)
                goto cleanup;
        if (cap && sf_cli_call(cli, "GET", sf_cli_path("/interfaces/%s/metadata", a->pos[0], NULL), NULL, &md) < 0)
                goto cleanup;
        for (int i = 0; i < 7; i++) /* ipv4 and floating: '' when absent, as upstream's .get */
                v[i] = (i == 4 || i == 5) && !json_object_object_get_ex(iface, fields[i][1], NULL)
                               ? strdup("")
                               : sf_cli_pyfield(iface, fields[i][1]);
        if (cli->out == OUT_PRETTY) {
                printf("Interface:\n");
                for (int i = 0; i < 7; i++)
                        printf("    %-8s: %s\n", fields[i][0], v[i]);
        } else {
                printf("iface,interface uuid,network uuid,macaddr,order,ipv4,floating,model\n");
                printf("iface,%s,%s,%s,%s,%s,%s,%s\n", v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
        }
        for (int i = 0; i < 7; i++)
                free(v[i]);
        printf("\n");
        sf_cli_metadata_block(cli, md);
        rc = 0;
cleanup:
        json_object_put(md);
        json_object_put(iface);
        return rc;
}

static int iface_events(sf_cli_t *cli, sf_args_t *a) {
        return sf_cli_events(cli, "interfaces", a);
}

static int iface_set_metadata(sf_cli_t *cli, sf_args_t *a) {
        if (need_interface_metadata(cli))
                return 1;
        return sf_cli_set_metadata(cli, "interfaces", a->pos[0], a->pos[1], a->pos[2], 0);
}

static int iface_delete_metadata(sf_cli_t *cli, sf_args_t *a) {
        if (need_interface_metadata(cli))
                return 1;
        return sf_cli_delete_metadata(cli, "interfaces", a->pos[0], a->pos[1]);
}

static const sf_cmd_t cmds[] = {
        SF_CMD("show", "INTERFACE_UUID", "Show an interface", 1, iface_show),
        SF_CMD("events", "INTERFACE_UUID", "Display events for an interface", 1, iface_events,
               .opts = sf_cli_events_opts),
        SF_CMD("set-metadata", "INTERFACE_UUID KEY VALUE", "Set a metadata item", 3, iface_set_metadata),
        SF_CMD("delete-metadata", "INTERFACE_UUID KEY", "Delete a metadata item", 2, iface_delete_metadata),
        {0},
};

const sf_group_t sf_group_interface = {"interface", "Interface commands", cmds};
