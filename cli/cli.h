/* The command framework of sf (cli/): a group is a table of commands, a command declares its
 * positional arguments and options, main.c parses argv against them (click's rules: options
 * anywhere after the command, `--opt VALUE` or `--opt=VALUE`, `-x VALUE`, flag pairs
 * `--uefi/--bios`) and prints offline help from the same tables. One file per group:
 * cmd_<group>.c exports `const sf_group_t sf_group_<group>`. */
#pragma once
#include "client.h"

#include <json-c/json.h>
#include <stdio.h>

typedef enum { OUT_PRETTY, OUT_SIMPLE, OUT_JSON } sf_outmode_t;

/* Table entries (designated, so fields added later need no edits):
 *   SF_CMD("show", "REF", "Show an instance", 1, run_show, .opts = show_opts)
 *   SF_OPT("network", 'n', "NET[@ADDR]", "A network to attach", .multiple = 1)
 *   SF_OPT("uefi", 0, NULL, "Boot with UEFI", .neg = "bios")                      */
#define SF_CMD(name_, args_, help_, nargs_, run_, ...) \
        {.name = (name_), .args = (args_), .help = (help_), .nargs = (nargs_), .run = (run_), __VA_ARGS__}
#define SF_OPT(name_, short_, metavar_, help_, ...) \
        {.name = (name_), .shortname = (short_), .metavar = (metavar_), .help = (help_), __VA_ARGS__}

typedef struct {
        sf_client_t client;
        sf_outmode_t out;
} sf_cli_t;

/* An option. metavar NULL = a flag (value "1", or "0" when given as its `neg` spelling);
 * otherwise it takes a value. `multiple` keeps every value in order; else the last wins. */
typedef struct {
        const char *name;    /* long name without dashes, e.g. "network" */
        char shortname;      /* 0 = none */
        const char *metavar; /* e.g. "NET[@ADDR]"; NULL for flags */
        const char *help;
        int multiple;
        const char *neg;     /* flags only: the negative spelling, e.g. "bios" for "uefi" */
} sf_opt_t;

#define SF_MAX_OPTS 24
#define SF_MAX_VALUES 64

typedef struct {
        char **pos;                  /* positional arguments (npos of them) */
        int npos;
        const sf_opt_t *opts;
        int nvalues[SF_MAX_OPTS];    /* per option, how many values were given */
        const char *values[SF_MAX_OPTS][SF_MAX_VALUES];
} sf_args_t;

typedef struct {
        const char *name, *args, *help;
        int nargs; /* required positional arguments */
        int (*run)(sf_cli_t *cli, sf_args_t *a);
        const sf_opt_t *opts; /* terminated by {0}; NULL = none */
        int noptargs;         /* optional positional arguments after the required ones */
        int offline;          /* runs without a server configuration (e.g. completion helpers) */
} sf_cmd_t;

typedef struct {
        const char *name, *help;
        const sf_cmd_t *cmds;
} sf_group_t;

/* ---- option values (name = the option's long name) ---- */
/* The last value given, or NULL. */
const char *sf_arg(const sf_args_t *a, const char *name);
/* Every value given, in order; *n = count. */
const char *const *sf_arg_all(const sf_args_t *a, const char *name, int *n);
/* A flag: 1 given, 0 given as its negative spelling, dflt when absent. */
int sf_arg_flag(const sf_args_t *a, const char *name, int dflt);

/* ---- requests ---- */
/* sf_client_request, then frees path and body. ret may be NULL. 0 or -1 (error printed). */
int sf_cli_call(sf_cli_t *cli, const char *method, char *path, json_object *body, json_object **ret);
/* fmt with up to two %s, each replaced by a percent-encoded segment. Caller frees. */
char *sf_cli_path(const char *fmt, const char *a, const char *b);

/* Upstream's get_blob_data: the bytes of blob uuid into f, in one GET
 * /blobs/<uuid>/data?offset=0, or, when the server lists blob-data-limit, in requests of
 * at most 512 MiB until a short one (upstream forgets to advance the offset between them;
 * sf advances it).  0, or -1 with the error printed. */
int sf_cli_blob_download(sf_cli_t *cli, const char *uuid, FILE *f);

/* ---- output helpers ---- */
/* Python str() of o[key] ("None" when absent). Caller frees. */
char *sf_cli_pyfield(json_object *o, const char *key);
/* With --json prints `{}`; otherwise nothing (upstream's action commands). */
void sf_cli_json_empty(sf_cli_t *cli);
/* With --json prints the response (null when none); otherwise nothing. Takes `out`. */
int sf_cli_print_response(sf_cli_t *cli, json_object *out);
/* datetime.fromtimestamp(ts) in local time, as upstream prints event timestamps. */
void sf_cli_pytime(double ts, char *buf, size_t len);
/* Upstream's events command for any object: GET /<plural>/<ref>/events with -t/-l. */
int sf_cli_events(sf_cli_t *cli, const char *plural, sf_args_t *a);
/* Options -t/--type and -l/--limit for sf_cli_events commands. */
extern const sf_opt_t sf_cli_events_opts[];
/* PUT /<plural>/<ref>/metadata/<key> {value}; with parse_special, `tags` and `affinity`
 * values are sent JSON-parsed (upstream's instance set-metadata; invalid JSON is an error). */
int sf_cli_set_metadata(sf_cli_t *cli, const char *plural, const char *ref, const char *key, const char *value,
                        int parse_special);
int sf_cli_delete_metadata(sf_cli_t *cli, const char *plural, const char *ref, const char *key);
/* The metadata block of upstream's show commands (pretty `Metadata:` + `    %-8s: %s`,
 * simple `metadata,key,value` + `metadata,k,v`); md may be NULL (empty). */
void sf_cli_metadata_block(sf_cli_t *cli, json_object *md);

/* ---- groups (cmd_<name>.c) ---- */
extern const sf_group_t sf_group_admin, sf_group_events, sf_group_instance, sf_group_interface,
        sf_group_namespace, sf_group_network, sf_group_node;
