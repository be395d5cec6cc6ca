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

static void root_help(FILE *f) {
        fputs(ROOT_HELP, f);
        for (int i = 0; GROUPS[i]; i++)
                fprintf(f, "  %-12s %s\n", GROUPS[i]->name, GROUPS[i]->help);
        fprintf(f, "  %-12s %s\n", "version", "Print the client version (its User-Agent)");
}

static void group_help(FILE *f, const sf_group_t *g) {
        fprintf(f, "Usage: sf %s [OPTIONS] COMMAND [ARGS]...\n\n  %s\n\nCommands:\n", g->name, g->help);
        for (const sf_cmd_t *c = g->cmds; c->name; c++)
                fprintf(f, "  %-16s %s\n", c->name, c->help);
}

static void cmd_help(FILE *f, const sf_group_t *g, const sf_cmd_t *c) {
        fprintf(f, "Usage: sf %s %s [OPTIONS]%s%s\n\n  %s\n\nOptions:\n", g->name, c->name, *c->args ? " " : "",
                c->args, c->help);
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
                        fprintf(f, "  %s\n  %-28s  %s%s\n", spec, "", o->help, o->multiple ? " (repeatable)" : "");
                else
                        fprintf(f, "  %-28s  %s%s\n", spec, o->help, o->multiple ? " (repeatable)" : "");
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

int main(int argc, char **argv) {
        sf_cli_t cli = {.out = OUT_PRETTY};
        const sf_group_t *g = NULL;
        const sf_cmd_t *c = NULL;
        sf_args_t args = {0};
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
        for (int k = 0; GROUPS[k]; k++)
                if (!strcmp(GROUPS[k]->name, argv[i]))
                        g = GROUPS[k];
        if (!g)
                return usage_error("[OPTIONS] COMMAND [ARGS]...", "No such command", argv[i]);
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
        if (parse_args(g, c, argc - i, argv + i, &args))
                return 1;
        if (!c->offline && sf_client_configure(&cli.client) < 0) {
                fprintf(stderr, "ERROR: You have not specified the server to communicate with\n");
                return 1;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        rc = c->run(&cli, &args);
        fflush(stdout);
        free(args.pos);
        sf_client_free(&cli.client);
        curl_global_cleanup();
        return rc ? 1 : 0;
}
