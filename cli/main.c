/* sf: the Shaken Fist command-line client (cli.md). `sf [GLOBAL OPTIONS] GROUP COMMAND
 * [ARGS]`; output --pretty (default) / --simple / --json as upstream's; exit 0 on success,
 * 1 on any error (usage errors included). Help needs no server. */
#include "cli.h"
#include "out.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char ROOT_HELP[] =
        "Usage: sf [OPTIONS] COMMAND [ARGS]...\n"
        "\n"
        "Options:\n"
        "  --pretty / --simple / --json    Output format (default --pretty; the last one\n"
        "                                  wins)\n"
        "  --verbose / --no-verbose        Print each request and response to stderr\n"
        "  --namespace TEXT                Namespace to authenticate as\n"
        "                                  [env SHAKENFIST_NAMESPACE]\n"
        "  --key TEXT                      Key of that namespace [env SHAKENFIST_KEY]\n"
        "  --apiurl TEXT                   API URL, e.g. http://localhost:13000\n"
        "                                  [env SHAKENFIST_API_URL]\n"
        "  --async-strategy, --async [continue|pause|block]\n"
        "                                  How long to wait for creates and deletes\n"
        "                                  [env SHAKENFIST_ASYNC]\n"
        "  --help                          Show this message and exit.\n"
        "\n"
        "Without --apiurl or SHAKENFIST_API_URL the settings come from ~/.shakenfist,\n"
        "then /etc/sf/shakenfist.json (JSON with namespace, key and apiurl).\n"
        "Exit status: 0 on success, 1 on any error.\n"
        "Run 'sf COMMAND --help' for a group's commands, and\n"
        "'sf COMMAND SUBCOMMAND --help' for a command's arguments and options\n"
        "(help needs no server).\n"
        "\n"
        "Commands:\n";

/* The global options (before the group), for the parser and for completion alike. */
typedef enum { G_PRETTY, G_SIMPLE, G_JSON, G_VERBOSE, G_NO_VERBOSE, G_NAMESPACE, G_KEY, G_APIURL, G_ASYNC, G_HELP } gopt_t;
static const struct {
        const char *name;
        gopt_t which;
        int takes_value;
} GLOBAL_OPTS[] = {
        {"--pretty", G_PRETTY, 0},       {"--simple", G_SIMPLE, 0},        {"--json", G_JSON, 0},
        {"--verbose", G_VERBOSE, 0},     {"--no-verbose", G_NO_VERBOSE, 0}, {"--namespace", G_NAMESPACE, 1},
        {"--key", G_KEY, 1},             {"--apiurl", G_APIURL, 1},        {"--async-strategy", G_ASYNC, 1},
        {"--async", G_ASYNC, 1},         {"--help", G_HELP, 0},            {NULL, 0, 0},
};
static const char ASYNC_CHOICES[] = "[continue|pause|block]";

static int global_opt_find(const char *arg) {
        for (int k = 0; GLOBAL_OPTS[k].name; k++)
                if (!strcmp(GLOBAL_OPTS[k].name, arg))
                        return k;
        return -1;
}

/* Groups in the order `sf --help` lists them. */
static const sf_group_t *const GROUPS[] = {
        &sf_group_admin,  &sf_group_events,    &sf_group_instance, &sf_group_interface,
        &sf_group_namespace, &sf_group_network, &sf_group_node,   NULL,
};

static int cmd_version(sf_cli_t *cli, sf_args_t *a) {
        (void)cli;
        (void)a;
        printf("%s\n", SF_CLI_USER_AGENT);
        return 0;
}

/* ---- help ---- */

/* Help text wrapped at HELP_WIDTH columns, as click does: the cursor is at column col and
 * every further line starts there too. */
#define HELP_WIDTH 79
static void help_wrapped(FILE *f, int col, const char *text, const char *suffix) {
        char buf[1024], *save = NULL;
        int at = col;
        snprintf(buf, sizeof(buf), "%s%s", text, suffix);
        for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
                int len = (int)strlen(w);
                if (at > col && at + 1 + len > HELP_WIDTH) {
                        fprintf(f, "\n%*s", col, "");
                        at = col;
                }
                at += fprintf(f, "%s%s", at > col ? " " : "", w);
        }
        fputc('\n', f);
}

static void root_help(FILE *f) {
        fputs(ROOT_HELP, f);
        for (int i = 0; GROUPS[i]; i++) {
                fprintf(f, "  %-12s ", GROUPS[i]->name);
                help_wrapped(f, 15, GROUPS[i]->help, "");
        }
        fprintf(f, "  %-12s %s\n", "version", "Print the client version (its User-Agent)");
}

static void group_help(FILE *f, const sf_group_t *g) {
        fprintf(f,
                "Usage: sf %s [OPTIONS] COMMAND [ARGS]...\n\n  %s\n\nOptions:\n  --help  Show this message and exit.\n\n"
                "Commands:\n",
                g->name, g->help);
        for (const sf_cmd_t *c = g->cmds; c->name; c++) {
                fprintf(f, "  %-16s ", c->name);
                help_wrapped(f, 19, c->help, "");
        }
}

static void cmd_help(FILE *f, const sf_group_t *g, const sf_cmd_t *c) {
        fprintf(f, "Usage: sf %s %s [OPTIONS]%s%s\n\n  ", g->name, c->name, *c->args ? " " : "", c->args);
        help_wrapped(f, 2, c->help, "");
        fprintf(f, "\nOptions:\n");
        for (const sf_opt_t *o = c->opts; o && o->name; o++) {
                char spec[96];
                int n = 0;
                if (o->shortname)
                        n = snprintf(spec, sizeof(spec), "-%c, ", o->shortname);
                n += snprintf(spec + n, sizeof(spec) - (size_t)n, "--%s", o->name);
                if (o->neg)
                        n += snprintf(spec + n, sizeof(spec) - (size_t)n, " / --%s", o->neg);
                if (o->metavar)
                        snprintf(spec + n, sizeof(spec) - (size_t)n, " %s", o->metavar);
                if (strlen(spec) > 28)
                        fprintf(f, "  %s\n  %-28s  ", spec, "");
                else
                        fprintf(f, "  %-28s  ", spec);
                help_wrapped(f, 32, o->help, o->multiple ? " (repeatable)" : "");
        }
        fprintf(f, "  %-28s  %s\n", "--help", "Show this message and exit.");
}

static int usage_error(const char *usage_of, const char *msg, const char *arg) {
        fprintf(stderr, "Usage: sf %s\nTry 'sf --help' for help.\n\nError: %s%s%s%s\n", usage_of, msg,
                arg ? " '" : "", arg ? arg : "", arg ? "'" : "");
        return 1;
}

static int want_help(int argc, char **argv) {
        for (int i = 0; i < argc && strcmp(argv[i], "--"); i++)
                if (!strcmp(argv[i], "--help"))
                        return 1;
        return 0;
}

/* ---- command arguments (click's rules) ---- */

static int add_value(sf_args_t *a, int oi, const char *v) {
        if (!a->opts[oi].multiple)
                a->nvalues[oi] = 0;
        if (a->nvalues[oi] >= SF_MAX_VALUES)
                return -1;
        a->values[oi][a->nvalues[oi]++] = v;
        return 0;
}

/* Parses argv (after the command name) into a. Returns 0, or 1 after a usage error. */
static int parse_args(const sf_group_t *g, const sf_cmd_t *c, int argc, char **argv, sf_args_t *a) {
        char usage[256];
        int only_pos = 0;
        snprintf(usage, sizeof(usage), "%s %s [OPTIONS]%s%s", g->name, c->name, *c->args ? " " : "", c->args);
        a->opts = c->opts;
        a->pos = calloc((size_t)argc + 1, sizeof(char *));
        if (!a->pos)
                abort();
        for (int i = 0; i < argc; i++) {
                char *arg = argv[i];
                int oi = -1, neg = 0;
                const char *inline_val = NULL;
                if (only_pos || arg[0] != '-' || !arg[1]) {
                        a->pos[a->npos++] = arg;
                        continue;
                }
                if (!strcmp(arg, "--")) {
                        only_pos = 1;
                        continue;
                }
                if (arg[1] == '-') {
                        const char *name = arg + 2, *eq = strchr(name, '=');
                        size_t len = eq ? (size_t)(eq - name) : strlen(name);
                        for (int k = 0; c->opts && c->opts[k].name; k++) {
                                if (strlen(c->opts[k].name) == len && !strncmp(c->opts[k].name, name, len)) {
                                        oi = k;
                                        break;
                                }
                                if (c->opts[k].neg && strlen(c->opts[k].neg) == len &&
                                    !strncmp(c->opts[k].neg, name, len)) {
                                        oi = k;
                                        neg = 1;
                                        break;
                                }
                        }
                        if (eq)
                                inline_val = eq + 1;
                } else {
                        for (int k = 0; c->opts && c->opts[k].name; k++)
                                if (c->opts[k].shortname == arg[1]) {
                                        oi = k;
                                        break;
                                }
                        if (oi >= 0 && arg[2])
                                inline_val = arg + 2;
                }
                if (oi < 0)
                        return usage_error(usage, "No such option:", arg);
                const sf_opt_t *o = &c->opts[oi];
                if (!o->metavar) {
                        if (inline_val)
                                return usage_error(usage, "Option does not take a value:", arg);
                        add_value(a, oi, neg ? "0" : "1");
                        continue;
                }
                if (!inline_val) {
                        if (i + 1 >= argc)
                                return usage_error(usage, "Option requires an argument:", arg);
                        inline_val = argv[++i];
                }
                if (add_value(a, oi, inline_val) < 0)
                        return usage_error(usage, "Too many values for option:", arg);
        }
        if (a->npos < c->nargs)
                return usage_error(usage, "Missing argument.", NULL);
        if (a->npos > c->nargs + c->noptargs)
                return usage_error(usage, "Got unexpected extra argument:", a->pos[c->nargs + c->noptargs]);
        return 0;
}

/* ---- completion ----
 * tools/sf-completion.bash calls `sf __complete CWORD WORD...` with the words after `sf`
 * up to the cursor (bash's COMP_WORDS[1..COMP_CWORD]) and CWORD the index of the word
 * being completed. Candidates come from the same tables the parser uses, so completion
 * never drifts from the code; one per line, filtered by the typed prefix. Exit 0, or 2 when
 * the word is a file name (the script then lets bash complete files). Names of instances,
 * networks, nodes and namespaces for REF arguments are fetched only when a server is
 * configured, with a short timeout, and any error stays silent (stderr is /dev/null). */

#define COMPLETE_TIMEOUT_MS 3000 /* /auth checks a bcrypt key: slow on a busy node */
#define COMPLETE_FILES 2
#define COMPLETE_MAX_WORDS 256

static const char *const EVENT_TYPES[] = {"audit", "mutate", "status", "usage", "resources", "prune", "historic", NULL};

/* Printed before each candidate: "--opt=" when the shell kept "--opt=value" as one word. */
static char offer_prefix[64];

static void offer(const char *cur, const char *word) {
        if (word && !strncmp(word, cur, strlen(cur)))
                printf("%s%s\n", offer_prefix, word);
}

/* Each choice of a metavar such as "[continue|pause|block]" or "{list}"; 0 if it has none. */
static int offer_choices(const char *cur, const char *spec) {
        char buf[256], *save = NULL;
        int n = 0;
        snprintf(buf, sizeof(buf), "%s", spec);
        for (char *t = strtok_r(buf, "[]{}|.", &save); t; t = strtok_r(NULL, "[]{}|.", &save)) {
                for (const char *p = t; *p; p++)
                        if (!((*p >= 'a' && *p <= 'z') || *p == '-' || *p == '_'))
                                return n;
                offer(cur, t);
                n++;
        }
        return n;
}

/* The names (and, once something is typed, the uuids) the API lists at path. */
static int offer_remote_names(sf_client_t *client, const char *path, const char *cur) {
        json_object *list = NULL;
        int r = 0;
        if (sf_client_configure(client) < 0)
                return 0;
        client->timeout_ms = COMPLETE_TIMEOUT_MS;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        if (sf_client_request(client, "GET", path, NULL, &list) == 0 && json_object_is_type(list, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(list); i++) {
                        json_object *o = json_object_array_get_idx(list, i), *v;
                        if (json_object_object_get_ex(o, "name", &v) && json_object_is_type(v, json_type_string))
                                offer(cur, json_object_get_string(v));
                        if (*cur && json_object_object_get_ex(o, "uuid", &v) && json_object_is_type(v, json_type_string))
                                offer(cur, json_object_get_string(v));
                }
        } else {
                r = -1;
        }
        json_object_put(list);
        curl_global_cleanup();
        return r;
}

/* Which list a positional argument's metavar names ("INSTANCE_REF", "NETWORK_REF", "NODE",
 * "TRUSTED_NAMESPACE"; a bare "REF" is the group's own kind). NULL = none. */
static const char *ref_list_path(const char *group, const char *token) {
        static const struct {
                const char *word, *group, *path;
        } KINDS[] = {
                {"INSTANCE", "instance", "/instances"}, {"NETWORK", "network", "/networks"},
                {"NODE", "node", "/nodes"},             {"NAMESPACE", "namespace", "/auth/namespaces"},
        };
        for (size_t k = 0; k < sizeof(KINDS) / sizeof(KINDS[0]); k++)
                if (strstr(token, KINDS[k].word))
                        return KINDS[k].path;
        if (!strcmp(token, "REF"))
                for (size_t k = 0; k < sizeof(KINDS) / sizeof(KINDS[0]); k++)
                        if (!strcmp(group, KINDS[k].group))
                                return KINDS[k].path;
        return NULL;
}

static int complete_positional(sf_client_t *client, const sf_group_t *g, const sf_cmd_t *c, int npos, const char *cur) {
        char buf[256], *save = NULL, *token = NULL;
        const char *path;
        int k = 0, found = 0;
        snprintf(buf, sizeof(buf), "%s", c->args);
        for (char *t = strtok_r(buf, " ", &save); t && !found; t = strtok_r(NULL, " ", &save), k++) {
                token = t;
                found = k == npos;
        }
        if (!token || (!found && !strstr(token, "...")))
                return 0; /* past the last argument (unless it repeats) */
        if (offer_choices(cur, token))
                return 0;
        if (strstr(token, "PATH") || strstr(token, "FILE") || strstr(token, "DESTINATION") || strstr(token, "SOURCE"))
                return COMPLETE_FILES;
        if ((path = ref_list_path(g->name, token)))
                offer_remote_names(client, path, cur);
        return 0;
}

static int complete_opt_value(sf_client_t *client, const sf_opt_t *o, const char *cur) {
        if (!o->metavar)
                return 0;
        if (offer_choices(cur, o->metavar))
                return 0;
        if (o == &sf_cli_events_opts[0]) { /* -t of every `events` command: an event type */
                for (int k = 0; EVENT_TYPES[k]; k++)
                        offer(cur, EVENT_TYPES[k]);
                return 0;
        }
        if (strstr(o->metavar, "PATH") || strstr(o->metavar, "FILE"))
                return COMPLETE_FILES;
        if (!strcmp(o->name, "network") || !strcmp(o->name, "floated"))
                return offer_remote_names(client, "/networks", cur), 0;
        if (!strcmp(o->name, "namespace"))
                return offer_remote_names(client, "/auth/namespaces", cur), 0;
        if (!strcmp(o->name, "placement"))
                return offer_remote_names(client, "/nodes", cur), 0;
        return 0;
}

/* The option of c that `arg` (--name, --neg, -x, --name=v) names; NULL if none. */
static const sf_opt_t *cmd_opt_find(const sf_cmd_t *c, const char *arg, int *ret_inline) {
        const char *eq = strchr(arg, '=');
        for (const sf_opt_t *o = c->opts; o && o->name; o++) {
                if (arg[1] == '-') {
                        size_t len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
                        if ((strlen(o->name) == len && !strncmp(o->name, arg + 2, len)) ||
                            (o->neg && strlen(o->neg) == len && !strncmp(o->neg, arg + 2, len))) {
                                *ret_inline = eq != NULL;
                                return o;
                        }
                } else if (o->shortname && o->shortname == arg[1]) {
                        *ret_inline = arg[2] != 0;
                        return o;
                }
        }
        return NULL;
}

static int complete_main(int argc, char **argv) {
        enum { P_GLOBAL, P_VERSION, P_GROUP, P_CMD } phase = P_GLOBAL;
        sf_client_t client = {0};
        const sf_group_t *g = NULL;
        const sf_cmd_t *c = NULL;
        const sf_opt_t *pending = NULL; /* a command option whose value is being typed */
        int pending_global = -1, npos = 0, only_pos = 0, rc = 0, n = 0, cword;
        char *ws[COMPLETE_MAX_WORDS], *cur = NULL;
        const char *value_cur;

        if (!freopen("/dev/null", "w", stderr))
                return 0;
        if (argc < 1 || (cword = atoi(argv[0])) < 0 || cword >= argc || cword >= COMPLETE_MAX_WORDS)
                return 0;
        char **words = argv + 1;
        /* bash splits "--opt=v" and "http://h:p" at '=' and ':' (COMP_WORDBREAKS): glue back. */
        for (int j = 0; j < cword; j++) {
                if (n == 0 || (strcmp(words[j], "=") && strcmp(words[j], ":"))) {
                        ws[n++] = strdup(words[j]);
                        continue;
                }
                char *joined;
                const char *sep = words[j], *next = j + 1 < cword ? words[++j] : "";
                if (asprintf(&joined, "%s%s%s", ws[n - 1], sep, next) < 0)
                        abort();
                free(ws[n - 1]);
                ws[n - 1] = joined;
        }
        const char *raw = cword < argc - 1 ? words[cword] : "";
        if (n > 0 && (!strcmp(raw, "=") || (cword > 0 && !strcmp(words[cword - 1], "=")))) {
                /* the value of --opt= is being typed: bash replaces only the part after '=' */
                if (asprintf(&cur, "%s%s", ws[--n], !strcmp(raw, "=") ? "=" : raw) < 0)
                        abort();
                free(ws[n]);
        } else {
                cur = strdup(raw);
                if (cur[0] == '-' && strchr(cur, '=')) /* one word: candidates keep "--opt=" */
                        snprintf(offer_prefix, sizeof(offer_prefix), "%.*s", (int)(strchr(cur, '=') - cur + 1), cur);
        }

        for (int j = 0; j < n; j++) {
                const char *w = ws[j];
                if (phase == P_GLOBAL && w[0] == '-') {
                        int k = global_opt_find(w);
                        if (k >= 0 && GLOBAL_OPTS[k].takes_value) {
                                if (j + 1 >= n) {
                                        pending_global = k;
                                        break;
                                }
                                char **dst = GLOBAL_OPTS[k].which == G_APIURL      ? &client.apiurl
                                             : GLOBAL_OPTS[k].which == G_NAMESPACE ? &client.namespace
                                             : GLOBAL_OPTS[k].which == G_KEY       ? &client.key
                                                                                   : NULL;
                                if (dst) {
                                        free(*dst);
                                        *dst = strdup(ws[j + 1]);
                                }
                                j++;
                        }
                } else if (phase == P_GLOBAL) {
                        if (!strcmp(w, "version")) {
                                phase = P_VERSION;
                                continue;
                        }
                        for (int k = 0; GROUPS[k]; k++)
                                if (!strcmp(GROUPS[k]->name, w))
                                        g = GROUPS[k];
                        if (!g)
                                goto cleanup;
                        phase = P_GROUP;
                } else if (phase == P_GROUP && w[0] != '-') {
                        for (c = g->cmds; c->name && strcmp(c->name, w); c++)
                                ;
                        if (!c->name)
                                goto cleanup;
                        phase = P_CMD;
                } else if (phase == P_CMD && !only_pos && !strcmp(w, "--")) {
                        only_pos = 1;
                } else if (phase == P_CMD && !only_pos && w[0] == '-' && w[1]) {
                        int has_inline = 0;
                        const sf_opt_t *o = cmd_opt_find(c, w, &has_inline);
                        if (o && o->metavar && !has_inline) {
                                if (j + 1 >= n) {
                                        pending = o;
                                        break;
                                }
                                j++;
                        }
                } else if (phase == P_CMD) {
                        npos++;
                }
        }

        value_cur = strchr(cur, '=') ? strchr(cur, '=') + 1 : cur;
        if (pending_global >= 0) {
                if (GLOBAL_OPTS[pending_global].which == G_ASYNC)
                        offer_choices(cur, ASYNC_CHOICES);
        } else if (pending) {
                rc = complete_opt_value(&client, pending, cur);
        } else if (cur[0] == '-' && strchr(cur, '=')) {
                int has_inline = 0;
                const sf_opt_t *o = phase == P_CMD ? cmd_opt_find(c, cur, &has_inline) : NULL;
                int k = phase == P_GLOBAL ? global_opt_find(strndupa(cur, (size_t)(strchr(cur, '=') - cur))) : -1;
                if (o)
                        rc = complete_opt_value(&client, o, value_cur);
                else if (k >= 0 && GLOBAL_OPTS[k].which == G_ASYNC)
                        offer_choices(value_cur, ASYNC_CHOICES);
        } else if (phase == P_GLOBAL) {
                if (cur[0] == '-') {
                        for (int k = 0; GLOBAL_OPTS[k].name; k++)
                                offer(cur, GLOBAL_OPTS[k].name);
                } else {
                        for (int k = 0; GROUPS[k]; k++)
                                offer(cur, GROUPS[k]->name);
                        offer(cur, "version");
                }
        } else if (phase == P_VERSION || phase == P_GROUP) {
                if (cur[0] == '-')
                        offer(cur, "--help");
                else
                        for (const sf_cmd_t *k = phase == P_GROUP ? g->cmds : NULL; k && k->name; k++)
                                offer(cur, k->name);
        } else if (cur[0] == '-' && !only_pos) {
                for (const sf_opt_t *o = c->opts; o && o->name; o++) {
                        char buf[96];
                        snprintf(buf, sizeof(buf), "--%s", o->name);
                        offer(cur, buf);
                        if (o->neg) {
                                snprintf(buf, sizeof(buf), "--%s", o->neg);
                                offer(cur, buf);
                        }
                }
                offer(cur, "--help");
        } else {
                rc = complete_positional(&client, g, c, npos, cur);
        }

cleanup:
        fflush(stdout);
        for (int j = 0; j < n; j++)
                free(ws[j]);
        free(cur);
        sf_client_free(&client);
        return rc;
}

int main(int argc, char **argv) {
        static const char ROOT_USAGE[] = "[OPTIONS] COMMAND [ARGS]...";
        sf_cli_t cli = {.out = OUT_PRETTY};
        const sf_group_t *g = NULL;
        const sf_cmd_t *c = NULL;
        sf_args_t args = {0};
        int i, rc = 0;

        if (argc > 1 && !strcmp(argv[1], "__complete"))
                return complete_main(argc - 2, argv + 2);

        /* Global options come before the group, as upstream's click root group wants them. */
        for (i = 1; i < argc && argv[i][0] == '-'; i++) {
                const char *a = argv[i];
                int k = global_opt_find(a);
                char **dst = NULL;
                if (k < 0) {
                        rc = usage_error(ROOT_USAGE, "No such option:", a);
                        goto cleanup;
                }
                switch (GLOBAL_OPTS[k].which) {
                case G_HELP: root_help(stdout); goto cleanup;
                case G_PRETTY: cli.out = OUT_PRETTY; break;
                case G_SIMPLE: cli.out = OUT_SIMPLE; break;
                case G_JSON: cli.out = OUT_JSON; break;
                case G_VERBOSE: cli.client.verbose = 1; break;
                case G_NO_VERBOSE: cli.client.verbose = 0; break;
                case G_NAMESPACE: dst = &cli.client.namespace; break;
                case G_KEY: dst = &cli.client.key; break;
                case G_APIURL: dst = &cli.client.apiurl; break;
                case G_ASYNC: dst = &cli.client.async_strategy; break;
                }
                if (dst) {
                        if (i + 1 >= argc) {
                                rc = usage_error(ROOT_USAGE, "Option requires an argument:", a);
                                goto cleanup;
                        }
                        free(*dst);
                        *dst = strdup(argv[++i]);
                }
        }
        if (i >= argc) {
                root_help(stdout);
                goto cleanup;
        }
        if (cli.client.async_strategy) {
                for (char *p = cli.client.async_strategy; *p; p++)
                        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
                if (strcmp(cli.client.async_strategy, "continue") && strcmp(cli.client.async_strategy, "pause") &&
                    strcmp(cli.client.async_strategy, "block")) {
                        rc = usage_error(ROOT_USAGE, "Invalid value for '--async-strategy':", cli.client.async_strategy);
                        goto cleanup;
                }
        }

        if (!strcmp(argv[i], "version")) {
                if (want_help(argc - i - 1, argv + i + 1))
                        printf("Usage: sf version [OPTIONS]\n\n  Print the client version (its User-Agent)\n");
                else
                        rc = cmd_version(&cli, NULL);
                goto cleanup;
        }
        for (int k = 0; GROUPS[k]; k++)
                if (!strcmp(GROUPS[k]->name, argv[i]))
                        g = GROUPS[k];
        if (!g) {
                rc = usage_error(ROOT_USAGE, "No such command", argv[i]);
                goto cleanup;
        }
        i++;
        if (i >= argc || !strcmp(argv[i], "--help")) {
                group_help(stdout, g);
                goto cleanup;
        }
        for (c = g->cmds; c->name && strcmp(c->name, argv[i]); c++)
                ;
        if (!c->name) {
                char u[128];
                snprintf(u, sizeof(u), "%s [OPTIONS] COMMAND [ARGS]...", g->name);
                rc = usage_error(u, "No such command", argv[i]);
                goto cleanup;
        }
        i++;
        if (want_help(argc - i, argv + i)) {
                cmd_help(stdout, g, c);
                goto cleanup;
        }
        if (parse_args(g, c, argc - i, argv + i, &args)) {
                rc = 1;
                goto cleanup;
        }
        if (!c->offline && sf_client_configure(&cli.client) < 0) {
                fprintf(stderr, "ERROR: You have not specified the server to communicate with\n");
                rc = 1;
                goto cleanup;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        rc = c->run(&cli, &args) ? 1 : 0;
        fflush(stdout);
        curl_global_cleanup();
cleanup:
        free(args.pos);
        sf_client_free(&cli.client);
        return rc;
}
