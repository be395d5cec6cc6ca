/* sf namespace ...: namespaces, their keys, metadata and trusts (cli.md §1.2, api.md §2.2). */
#include "cli.h"
#include "out.h"
#include "wait.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


/* ' '.join(ns['trust']['full']) */
static char *trust_joined(json_object *ns) {
        json_object *trust, *full;
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f)
                abort();
        if (json_object_object_get_ex(ns, "trust", &trust) && json_object_object_get_ex(trust, "full", &full) &&
            json_object_is_type(full, json_type_array))
                for (size_t i = 0; i < json_object_array_length(full); i++)
                        fprintf(f, "%s%s", i ? " " : "", json_object_get_string(json_object_array_get_idx(full, i)));
        fclose(f);
        return buf;
}


/* ---- namespace ---- */

static int ns_list(sf_cli_t *cli, sf_args_t *a) {
        json_object *list = NULL;
        (void)a;
        if (sf_cli_call(cli, "GET", strdup("/auth/namespaces"), NULL, &list) < 0)
                return 1;
        size_t n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
        if (cli->out == OUT_JSON) {
                if (!list)
                        list = json_object_new_array(); /* an empty answer prints as upstream would */
                sf_out_json(stdout, list);
        } else if (cli->out == OUT_SIMPLE) {
                printf("name,state\n");
                for (size_t i = 0; i < n; i++) {
                        json_object *ns = json_object_array_get_idx(list, i);
                        char *name = sf_cli_pyfield(ns, "name"), *state = sf_cli_pyfield(ns, "state");
                        printf("%s,%s\n", name, state);
                        free(name);
                        free(state);
                }
        } else {
                static const char *const hdr[] = {"name", "state", "trusted namespaces"};
                sf_table_t *t = sf_table_new(3, hdr);
                for (size_t i = 0; i < n; i++) {
                        json_object *ns = json_object_array_get_idx(list, i);
                        char *name = sf_cli_pyfield(ns, "name"), *state = sf_cli_pyfield(ns, "state"), *tr = trust_joined(ns);
                        const char *row[] = {name, state, tr};
                        sf_table_add(t, row);
                        free(name);
                        free(state);
                        free(tr);
                }
                sf_table_print(stdout, t);
                sf_table_free(t);
        }
        json_object_put(list);
        return 0;
}

static int ns_create(sf_cli_t *cli, sf_args_t *a) {
        json_object *body = json_object_new_object();
        json_object_object_add(body, "namespace", json_object_new_string(a->pos[0]));
        return sf_cli_call(cli, "POST", strdup("/auth/namespaces"), body, NULL) < 0;
}

static int ns_delete(sf_cli_t *cli, sf_args_t *a) {
        return sf_cli_call(cli, "DELETE", sf_cli_path("/auth/namespaces/%s", a->pos[0], NULL), NULL, NULL) < 0;
}

static int ns_show(sf_cli_t *cli, sf_args_t *a) {
        json_object *ns = NULL, *keys = NULL, *md = NULL, *trust = NULL, *full = NULL;
        if (sf_cli_call(cli, "GET", sf_cli_path("/auth/namespaces/%s", a->pos[0], NULL), NULL, &ns) < 0)
                return 1;
        if (!ns || !json_object_is_type(ns, json_type_object)) {
                printf("Namespace not found\n");
                json_object_put(ns);
                return 1;
        }
        if (cli->out == OUT_JSON) {
                sf_out_json(stdout, ns);
                json_object_put(ns);
                return 0;
        }
        json_object_object_get_ex(ns, "keys", &keys);
        json_object_object_get_ex(ns, "metadata", &md);
        json_object_object_get_ex(ns, "trust", &trust);
        if (trust)
                json_object_object_get_ex(trust, "full", &full);
        size_t nkeys = json_object_is_type(keys, json_type_array) ? json_object_array_length(keys) : 0;
        int has_md = json_object_is_type(md, json_type_object) && json_object_object_length(md) > 0;
        int has_trust = json_object_is_type(trust, json_type_object) && json_object_object_length(trust) > 0;
        size_t ntrust = json_object_is_type(full, json_type_array) ? json_object_array_length(full) : 0;
        char *name = sf_cli_pyfield(ns, "name"), *state = sf_cli_pyfield(ns, "state");

        if (cli->out == OUT_PRETTY) {
                printf("%-14s: %s\n%-14s: %s\n\n", "name", name, "state", state);
                if (nkeys) {
                        printf("Key Names:\n");
                        for (size_t i = 0; i < nkeys; i++)
                                printf("    %s\n", json_object_get_string(json_object_array_get_idx(keys, i)));
                        printf("\n");
                }
                if (has_md) {
                        int w = 0;
                        json_object_object_foreach(md, k0, v0) { (void)v0; if ((int)strlen(k0) > w) w = (int)strlen(k0); }
                        printf("Metadata:\n");
                        json_object_object_foreach(md, k, v) {
                                char *s = sf_out_pystr(v);
                                printf("    %-*s: %s\n", w, k, s);
                                free(s);
                        }
                        printf("\n");
                }
                if (has_trust) {
                        printf("Full trust:\n");
                        for (size_t i = 0; i < ntrust; i++)
                                printf("    %s\n", json_object_get_string(json_object_array_get_idx(full, i)));
                }
        } else {
                printf("name:%s\nstate:%s\n\n", name, state);
                printf("keynames:\n");
                if (nkeys) {
                        for (size_t i = 0; i < nkeys; i++)
                                printf("keyname,%s\n", json_object_get_string(json_object_array_get_idx(keys, i)));
                        printf("\n");
                }
                if (has_md) {
                        printf("metadata,key,value\n");
                        json_object_object_foreach(md, k, v) {
                                char *s = sf_out_pystr(v);
                                printf("metadata,%s,%s\n", k, s);
                                free(s);
                        }
                        printf("\n");
                }
                if (has_trust)
                        for (size_t i = 0; i < ntrust; i++)
                                printf("fulltrust,%s\n", json_object_get_string(json_object_array_get_idx(full, i)));
        }
        free(name);
        free(state);
        json_object_put(ns);
        return 0;
}

static int ns_add_key(sf_cli_t *cli, sf_args_t *a) {
        json_object *body = json_object_new_object();
        json_object_object_add(body, "key_name", json_object_new_string(a->pos[1]));
        json_object_object_add(body, "key", json_object_new_string(a->pos[2]));
        return sf_cli_call(cli, "POST", sf_cli_path("/auth/namespaces/%s/keys", a->pos[0], NULL), body, NULL) < 0;
}

/* PUT /auth/namespaces/<ns>/keys: rotates a key that exists (404 otherwise). */
static int ns_update_key(sf_cli_t *cli, sf_args_t *a) {
        json_object *body = json_object_new_object();
        json_object_object_add(body, "key_name", json_object_new_string(a->pos[1]));
        json_object_object_add(body, "key", json_object_new_string(a->pos[2]));
        return sf_cli_call(cli, "PUT", sf_cli_path("/auth/namespaces/%s/keys", a->pos[0], NULL), body, NULL) < 0;
}

/* Polls GET /instances/<uuid> for each of uuids (a JSON array) every second until each is
 * `deleted`, or in an error state (it will not get further by itself: said on stderr), or
 * the --async deadline passes (as upstream: then on without them). -1 on a request error. */
static int await_deleted(sf_cli_t *cli, json_object *uuids) {
        size_t n = json_object_is_type(uuids, json_type_array) ? json_object_array_length(uuids) : 0;
        char *done = calloc(n + 1, 1);
        struct timespec t0, t;
        size_t left = n;
        int r = 0;

        if (!done)
                abort();
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
                for (size_t i = 0; i < n; i++) {
                        const char *uuid = json_object_get_string(json_object_array_get_idx(uuids, i));
                        json_object *inst = NULL, *st = NULL;
                        const char *state;
                        if (done[i])
                                continue;
                        if (sf_cli_call(cli, "GET", sf_cli_path("/instances/%s", uuid, NULL), NULL, &inst) < 0) {
                                r = -1;
                                goto cleanup;
                        }
                        state = json_object_object_get_ex(inst, "state", &st) ? json_object_get_string(st) : "";
                        if (!strcmp(state, "deleted") || (strlen(state) >= 5 && !strcmp(state + strlen(state) - 5, "error"))) {
                                if (strcmp(state, "deleted"))
                                        fprintf(stderr, "instance %s is %s, not deleted\n", uuid, state);
                                done[i] = 1;
                                left--;
                        }
                        json_object_put(inst);
                }
                clock_gettime(CLOCK_MONOTONIC, &t);
                if (!left || t.tv_sec - t0.tv_sec >= sf_wait_deadline_s(cli))
                        break;
                sleep(1);
        }
cleanup:
        free(done);
        return r;
}

/* Upstream's namespace clean: every instance deleted (waiting per --async until each is
 * `deleted`), then every network with clean_wait. Artifacts are not served yet. */
static int ns_clean(sf_cli_t *cli, sf_args_t *a) {
        const char *ns = sf_arg(a, "namespace");
        json_object *body, *uuids = NULL;
        int rc = 1;

        if (!sf_arg_flag(a, "confirm", 0)) {
                /* upstream prints this on stdout and exits 0; a refusal is an error here */
                fprintf(stderr, "You must be sure. Use option --confirm.\n");
                return 1;
        }
        body = json_object_new_object();
        json_object_object_add(body, "confirm", json_object_new_boolean(1));
        json_object_object_add(body, "namespace", ns ? json_object_new_string(ns) : NULL);
        if (sf_cli_call(cli, "DELETE", strdup("/instances"), body, &uuids) < 0)
                goto cleanup;
        if (await_deleted(cli, uuids) < 0)
                goto cleanup;
        body = json_object_new_object();
        json_object_object_add(body, "confirm", json_object_new_boolean(1));
        json_object_object_add(body, "namespace", ns ? json_object_new_string(ns) : NULL);
        json_object_object_add(body, "clean_wait", json_object_new_boolean(1));
        if (sf_cli_call(cli, "DELETE", strdup("/networks"), body, NULL) < 0)
                goto cleanup;
        sf_cli_json_empty(cli);
        rc = 0;
cleanup:
        json_object_put(uuids);
        return rc;
}

static int ns_delete_key(sf_cli_t *cli, sf_args_t *a) {
        return sf_cli_call(cli, "DELETE", sf_cli_path("/auth/namespaces/%s/keys/%s", a->pos[0], a->pos[1]), NULL, NULL) < 0;
}

static int ns_get_metadata(sf_cli_t *cli, sf_args_t *a) {
        json_object *md = NULL;
        if (sf_cli_call(cli, "GET", sf_cli_path("/auth/namespaces/%s/metadata", a->pos[0], NULL), NULL, &md) < 0)
                return 1;
        if (cli->out == OUT_JSON) {   /* upstream prints nothing here; we print the metadata */
                if (!md)
                        md = json_object_new_object(); /* an empty answer prints as upstream would */
                sf_out_json(stdout, md);
        } else if (json_object_is_type(md, json_type_object)) {
                json_object_object_foreach(md, k, v) {
                        char *s = sf_out_pystr(v);
                        if (cli->out == OUT_SIMPLE)
                                printf("%s:%s\n", k, s);
                        else
                                printf("%-12s: %s\n", k, s);
                        free(s);
                }
        }
        json_object_put(md);
        return 0;
}

static int ns_set_metadata(sf_cli_t *cli, sf_args_t *a) {
        return sf_cli_set_metadata(cli, "auth/namespaces", a->pos[0], a->pos[1], a->pos[2], 0);
}

static int ns_delete_metadata(sf_cli_t *cli, sf_args_t *a) {
        return sf_cli_delete_metadata(cli, "auth/namespaces", a->pos[0], a->pos[1]);
}

static int ns_add_trust(sf_cli_t *cli, sf_args_t *a) {
        json_object *body = json_object_new_object(), *out = NULL;
        json_object_object_add(body, "external_namespace", json_object_new_string(a->pos[1]));
        if (sf_cli_call(cli, "POST", sf_cli_path("/auth/namespaces/%s/trust", a->pos[0], NULL), body, &out) < 0)
                return 1;
        return sf_cli_print_response(cli, out);
}

static int ns_remove_trust(sf_cli_t *cli, sf_args_t *a) {
        json_object *out = NULL;
        if (sf_cli_call(cli, "DELETE", sf_cli_path("/auth/namespaces/%s/trust/%s", a->pos[0], a->pos[1]), NULL, &out) < 0)
                return 1;
        return sf_cli_print_response(cli, out);
}

static const sf_opt_t clean_opts[] = {
        SF_OPT("confirm", 0, NULL, "Yes, delete everything"),
        SF_OPT("namespace", 0, "TEXT", "The namespace to clean (admins only; default: your own)"),
        {0},
};

static const sf_cmd_t cmds[] = {
        SF_CMD("list", "", "List namespaces", 0, ns_list),
        SF_CMD("create", "NAMESPACE", "Create a namespace.", 1, ns_create),
        SF_CMD("delete", "NAMESPACE", "Delete a namespace.", 1, ns_delete),
        SF_CMD("show", "NAMESPACE", "Show a namespace", 1, ns_show),
        SF_CMD("add-key", "NAMESPACE KEYNAME KEY", "Add a key to a namespace (re-adding a name rotates its key).", 3,
         ns_add_key),
        SF_CMD("update-key", "NAMESPACE KEYNAME KEY", "Update a key already present in the namespace (rotates it).", 3,
               ns_update_key),
        SF_CMD("delete-key", "NAMESPACE KEYNAME", "Delete a specific key from a namespace.", 2, ns_delete_key),
        SF_CMD("get-metadata", "NAMESPACE", "Get metadata items", 1, ns_get_metadata),
        SF_CMD("set-metadata", "NAMESPACE KEY VALUE", "Set a metadata item", 3, ns_set_metadata),
        SF_CMD("delete-metadata", "NAMESPACE KEY", "Delete a metadata item", 2, ns_delete_metadata),
        SF_CMD("add-trust", "NAMESPACE TRUSTED_NAMESPACE", "Allow another namespace access to our resources.", 2,
         ns_add_trust),
        SF_CMD("remove-trust", "NAMESPACE TRUSTED_NAMESPACE", "Remove another namespace's access to this namespace.", 2,
         ns_remove_trust),
        SF_CMD("clean", "", "Delete every instance (waiting for them) and then every network of a namespace", 0,
               ns_clean, .opts = clean_opts),
        {0},
};


const sf_group_t sf_group_namespace = {"namespace", "Namespace commands", cmds};
