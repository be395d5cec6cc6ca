/* sf: the Shaken Fist command-line client (cli.md). `sf [GLOBAL OPTIONS] GROUP COMMAND
 * [ARGS]`; output --pretty (default) / --simple / --json as upstream's; exit 0 on success,
 * 1 on any error (usage errors included). Help needs no server. */
#include "client.h"
#include "out.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OUT_PRETTY, OUT_SIMPLE, OUT_JSON } outmode_t;

typedef struct {
        sf_client_t client;
        outmode_t out;
} sf_cli_t;

typedef struct {
        const char *name, *args, *help;
        int nargs;
        int (*run)(sf_cli_t *cli, char **argv);
} sf_cmd_t;

typedef struct {
        const char *name, *help;
        const sf_cmd_t *cmds;
} sf_group_t;

static const char ROOT_HELP[] =
        "Usage: sf [OPTIONS] COMMAND [ARGS]...\n"
        "\n"
        "Options:\n"
        "  --pretty / --simple / --json    Output format (default --pretty; the last one wins)\n"
        "  --verbose / --no-verbose        Print each request and response to stderr\n"
        "  --namespace TEXT                Namespace to authenticate as [env SHAKENFIST_NAMESPACE]\n"
        "  --key TEXT                      Key of that namespace [env SHAKENFIST_KEY]\n"
        "  --apiurl TEXT                   API URL, e.g. http://localhost:13000 [env SHAKENFIST_API_URL]\n"
        "  --async-strategy, --async [continue|pause|block]\n"
        "                                  How long to wait for creates and deletes [env SHAKENFIST_ASYNC]\n"
        "  --help                          Show this message and exit.\n"
        "\n"
        "Without --apiurl or SHAKENFIST_API_URL the settings come from ~/.shakenfist, then\n"
        "/etc/sf/shakenfist.json (JSON with namespace, key and apiurl).\n"
        "Exit status: 0 on success, 1 on any error.\n"
        "\n"
        "Commands:\n";

/* ---- helpers ---- */

static char *path_of(const char *fmt, const char *a, const char *b) {
        char *ea = a ? sf_client_escape(a) : NULL, *eb = b ? sf_client_escape(b) : NULL, *p;
        if (asprintf(&p, fmt, ea, eb) < 0)
                abort();
        free(ea);
        free(eb);
        return p;
}

static int call(sf_cli_t *cli, const char *method, char *path, json_object *body, json_object **ret) {
        json_object *dummy = NULL;
        int r = sf_client_request(&cli->client, method, path, body, ret ? ret : &dummy);
        json_object_put(dummy);
        json_object_put(body);
        free(path);
        return r;
}

/* Python str() of o[key] ("None" when absent). Caller frees. */
static char *pyfield(json_object *o, const char *key) {
        json_object *v = NULL;
        json_object_object_get_ex(o, key, &v);
        return sf_out_pystr(v);
}

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

static void json_empty(sf_cli_t *cli) {
        if (cli->out == OUT_JSON)
                printf("{}\n");
}

/* ---- namespace ---- */

static int ns_list(sf_cli_t *cli, char **argv) {
        json_object *list = NULL;
        (void)argv;
        if (call(cli, "GET", strdup("/auth/namespaces"), NULL, &list) < 0)
                return 1;
        size_t n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
        if (cli->out == OUT_JSON) {
                sf_out_json(stdout, list ? list : json_object_new_array());
        } else if (cli->out == OUT_SIMPLE) {
                printf("name,state\n");
                for (size_t i = 0; i < n; i++) {
                        json_object *ns = json_object_array_get_idx(list, i);
                        char *name = pyfield(ns, "name"), *state = pyfield(ns, "state");
                        printf("%s,%s\n", name, state);
                        free(name);
                        free(state);
                }
        } else {
                static const char *const hdr[] = {"name", "state", "trusted namespaces"};
                sf_table_t *t = sf_table_new(3, hdr);
                for (size_t i = 0; i < n; i++) {
                        json_object *ns = json_object_array_get_idx(list, i);
                        char *name = pyfield(ns, "name"), *state = pyfield(ns, "state"), *tr = trust_joined(ns);
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

static int ns_create(sf_cli_t *cli, char **argv) {
        json_object *body = json_object_new_object();
        json_object_object_add(body, "namespace", json_object_new_string(argv[0]));
        return call(cli, "POST", strdup("/auth/namespaces"), body, NULL) < 0;
}

static int ns_delete(sf_cli_t *cli, char **argv) {
        return call(cli, "DELETE", path_of("/auth/namespaces/%s", argv[0], NULL), NULL, NULL) < 0;
}

static int ns_show(sf_cli_t *cli, char **argv) {
        json_object *ns = NULL, *keys = NULL, *md = NULL, *trust = NULL, *full = NULL;
        if (call(cli, "GET", path_of("/auth/namespaces/%s", argv[0], NULL), NULL, &ns) < 0)
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
        char *name = pyfield(ns, "name"), *state = pyfield(ns, "state");

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

static int ns_add_key(sf_cli_t *cli, char **argv) {
        json_object *body = json_object_new_object();
        json_object_object_add(body, "key_name", json_object_new_string(argv[1]));
        json_object_object_add(body, "key", json_object_new_string(argv[2]));
        return call(cli, "POST", path_of("/auth/namespaces/%s/keys", argv[0], NULL), body, NULL) < 0;
}

static int ns_delete_key(sf_cli_t *cli, char **argv) {
        return call(cli, "DELETE", path_of("/auth/namespaces/%s/keys/%s", argv[0], argv[1]), NULL, NULL) < 0;
}

static int ns_get_metadata(sf_cli_t *cli, char **argv) {
        json_object *md = NULL;
        if (call(cli, "GET", path_of("/auth/namespaces/%s/metadata", argv[0], NULL), NULL, &md) < 0)
                return 1;
        if (cli->out == OUT_JSON) {   /* upstream prints nothing here; we print the metadata */
                sf_out_json(stdout, md ? md : json_object_new_object());
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

static int ns_set_metadata(sf_cli_t *cli, char **argv) {
        json_object *body = json_object_new_object();
        json_object_object_add(body, "value", json_object_new_string(argv[2]));
        if (call(cli, "PUT", path_of("/auth/namespaces/%s/metadata/%s", argv[0], argv[1]), body, NULL) < 0)
                return 1;
        json_empty(cli);
        return 0;
}

static int ns_delete_metadata(sf_cli_t *cli, char **argv) {
        if (call(cli, "DELETE", path_of("/auth/namespaces/%s/metadata/%s", argv[0], argv[1]), NULL, NULL) < 0)
                return 1;
        json_empty(cli);
        return 0;
}

static int print_response(sf_cli_t *cli, json_object *out) {
        if (cli->out == OUT_JSON) {
                if (out)
                        sf_out_json(stdout, out);
                else
                        printf("null\n");
        }
        json_object_put(out);
        return 0;
}

static int ns_add_trust(sf_cli_t *cli, char **argv) {
        json_object *body = json_object_new_object(), *out = NULL;
        json_object_object_add(body, "external_namespace", json_object_new_string(argv[1]));
        if (call(cli, "POST", path_of("/auth/namespaces/%s/trust", argv[0], NULL), body, &out) < 0)
                return 1;
        return print_response(cli, out);
}

static int ns_remove_trust(sf_cli_t *cli, char **argv) {
        json_object *out = NULL;
        if (call(cli, "DELETE", path_of("/auth/namespaces/%s/trust/%s", argv[0], argv[1]), NULL, &out) < 0)
                return 1;
        return print_response(cli, out);
}

static const sf_cmd_t NAMESPACE_CMDS[] = {
        {"list", "", "List namespaces", 0, ns_list},
        {"create", "NAMESPACE", "Create a namespace.", 1, ns_create},
        {"delete", "NAMESPACE", "Delete a namespace.", 1, ns_delete},
        {"show", "NAMESPACE", "Show a namespace", 1, ns_show},
        {"add-key", "NAMESPACE KEYNAME KEY", "Add a key to a namespace (re-adding a name rotates its key).", 3,
         ns_add_key},
        {"delete-key", "NAMESPACE KEYNAME", "Delete a specific key from a namespace.", 2, ns_delete_key},
        {"get-metadata", "NAMESPACE", "Get metadata items", 1, ns_get_metadata},
        {"set-metadata", "NAMESPACE KEY VALUE", "Set a metadata item", 3, ns_set_metadata},
        {"delete-metadata", "NAMESPACE KEY", "Delete a metadata item", 2, ns_delete_metadata},
        {"add-trust", "NAMESPACE TRUSTED_NAMESPACE", "Allow another namespace access to our resources.", 2,
         ns_add_trust},
        {"remove-trust", "NAMESPACE TRUSTED_NAMESPACE", "Remove another namespace's access to this namespace.", 2,
         ns_remove_trust},
        {0},
};

static int cmd_version(sf_cli_t *cli, char **argv) {
        (void)cli;
        (void)argv;
        printf("%s\n", SF_CLI_USER_AGENT);
        return 0;
}

static const sf_group_t GROUPS[] = {
        {"namespace", "Namespace commands", NAMESPACE_CMDS},
        {0},
};

/* ---- help ---- */

static void root_help(FILE *f) {
        fputs(ROOT_HELP, f);
        for (const sf_group_t *g = GROUPS; g->name; g++)
                fprintf(f, "  %-12s %s\n", g->name, g->help);
        fprintf(f, "  %-12s %s\n", "version", "Print the client version (its User-Agent)");
}

static void group_help(FILE *f, const sf_group_t *g) {
        fprintf(f, "Usage: sf %s [OPTIONS] COMMAND [ARGS]...\n\n  %s\n\nCommands:\n", g->name, g->help);
        for (const sf_cmd_t *c = g->cmds; c->name; c++)
                fprintf(f, "  %-16s %s\n", c->name, c->help);
}

static void cmd_help(FILE *f, const sf_group_t *g, const sf_cmd_t *c) {
        fprintf(f, "Usage: sf %s %s [OPTIONS]%s%s\n\n  %s\n\nOptions:\n  --help  Show this message and exit.\n", g->name,
                c->name, *c->args ? " " : "", c->args, c->help);
}

static int usage_error(const char *usage_of, const char *msg, const char *arg) {
        fprintf(stderr, "Usage: sf %s\nTry 'sf --help' for help.\n\nError: %s%s%s%s\n", usage_of, msg,
                arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
        return 1;
}

static int want_help(int argc, char **argv) {
        for (int i = 0; i < argc; i++)
                if (!strcmp(argv[i], "--help"))
                        return 1;
        return 0;
}

int main(int argc, char **argv) {
        sf_cli_t cli = {.out = OUT_PRETTY};
        const sf_group_t *g = NULL;
        const sf_cmd_t *c = NULL;
        int i, rc;

        /* Global options come before the group, as upstream's click root group wants them. */
        for (i = 1; i < argc && argv[i][0] == '-'; i++) {
                const char *a = argv[i];
                char **dst = NULL;
                if (!strcmp(a, "--help")) {
                        root_help(stdout);
                        return 0;
                } else if (!strcmp(a, "--pretty")) cli.out = OUT_PRETTY;
                else if (!strcmp(a, "--simple")) cli.out = OUT_SIMPLE;
                else if (!strcmp(a, "--json")) cli.out = OUT_JSON;
                else if (!strcmp(a, "--verbose")) cli.client.verbose = 1;
                else if (!strcmp(a, "--no-verbose")) cli.client.verbose = 0;
                else if (!strcmp(a, "--namespace")) dst = &cli.client.namespace;
                else if (!strcmp(a, "--key")) dst = &cli.client.key;
                else if (!strcmp(a, "--apiurl")) dst = &cli.client.apiurl;
                else if (!strcmp(a, "--async-strategy") || !strcmp(a, "--async")) dst = &cli.client.async_strategy;
                else
                        return usage_error("[OPTIONS] COMMAND [ARGS]...", "No such option:", a);
                if (dst) {
                        if (i + 1 >= argc)
                                return usage_error("[OPTIONS] COMMAND [ARGS]...", "Option requires an argument:", a);
                        free(*dst);
                        *dst = strdup(argv[++i]);
                }
        }
        if (i >= argc) {
                root_help(stdout);
                return 0;
        }
        if (cli.client.async_strategy) {
                for (char *p = cli.client.async_strategy; *p; p++)
                        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
                if (strcmp(cli.client.async_strategy, "continue") && strcmp(cli.client.async_strategy, "pause") &&
                    strcmp(cli.client.async_strategy, "block"))
                        return usage_error("[OPTIONS] COMMAND [ARGS]...", "Invalid value for '--async-strategy':",
                                           cli.client.async_strategy);
        }

        if (!strcmp(argv[i], "version")) {
                if (want_help(argc - i - 1, argv + i + 1)) {
                        printf("Usage: sf version [OPTIONS]\n\n  Print the client version (its User-Agent)\n");
                        return 0;
                }
                return cmd_version(&cli, NULL);
        }
        for (g = GROUPS; g->name && strcmp(g->name, argv[i]); g++)
                ;
        if (!g->name) {
                usage_error("[OPTIONS] COMMAND [ARGS]...", "No such command", argv[i]);
                return 1;
        }
        i++;
        if (i >= argc || !strcmp(argv[i], "--help")) {
                group_help(stdout, g);
                return 0;
        }
        for (c = g->cmds; c->name && strcmp(c->name, argv[i]); c++)
                ;
        if (!c->name) {
                char u[128];
                snprintf(u, sizeof(u), "%s [OPTIONS] COMMAND [ARGS]...", g->name);
                return usage_error(u, "No such command", argv[i]);
        }
        i++;
        if (want_help(argc - i, argv + i)) {
                cmd_help(stdout, g, c);
                return 0;
        }
        if (argc - i != c->nargs) {
                char u[256];
                snprintf(u, sizeof(u), "%s %s [OPTIONS] %s", g->name, c->name, c->args);
                return usage_error(u, argc - i < c->nargs ? "Missing argument." : "Got unexpected extra argument.", NULL);
        }
        if (sf_client_configure(&cli.client) < 0) {
                fprintf(stderr, "ERROR: You have not specified the server to communicate with\n");
                return 1;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        rc = c->run(&cli, argv + i);
        fflush(stdout);
        sf_client_free(&cli.client);
        curl_global_cleanup();
        return rc ? 1 : 0;
}
