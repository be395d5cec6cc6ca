/* sf admin ...: cluster administration (cli.md §1.2). Upstream nests a `lock` group with one
 * command `list`; our framework has one command level under a group, so `lock` is a
 * command whose one positional argument must be `list`: `sf admin lock list` as upstream. */
#include "cli.h"
#include "out.h"

#include <stdlib.h>
#include <string.h>

/* GET /admin/locks: {lock key: {pid, node, operation, ...}}. */
static int lock_list(sf_cli_t *cli) {
        static const char *const hdr[] = {"lock", "pid", "node", "operation"};
        json_object *locks = NULL;
        sf_table_t *t = NULL;

        if (sf_cli_call(cli, "GET", strdup("/admin/locks"), NULL, &locks) < 0)
                return 1;
        if (!locks)
                locks = json_object_new_object();
        if (cli->out == OUT_JSON) {
                sf_out_json(stdout, locks);
                json_object_put(locks);
                return 0;
        }
        if (cli->out == OUT_PRETTY)
                t = sf_table_new(4, hdr);
        else
                printf("lock,pid,node,operation\n");
        if (json_object_is_type(locks, json_type_object)) {
                json_object_object_foreach(locks, ref, meta) {
                        char *pid = sf_cli_pyfield(meta, "pid"), *node = sf_cli_pyfield(meta, "node"),
                             *op = sf_cli_pyfield(meta, "operation");
                        if (t) {
                                const char *row[] = {ref, pid, node, op};
                                sf_table_add(t, row);
                        } else {
                                printf("%s,%s,%s,%s\n", ref, pid, node, op);
                        }
                        free(pid);
                        free(node);
                        free(op);
                }
        }
        if (t) {
                sf_table_print(stdout, t);
                sf_table_free(t);
        }
        json_object_put(locks);
        return 0;
}

static int admin_lock(sf_cli_t *cli, sf_args_t *a) {
        if (strcmp(a->pos[0], "list")) {
                fprintf(stderr,
                        "Usage: sf admin lock [OPTIONS] COMMAND [ARGS]...\nTry 'sf admin lock --help' for help.\n\n"
                        "Error: No such command '%s'.\n",
                        a->pos[0]);
                return 1;
        }
        return lock_list(cli);
}

static const sf_cmd_t cmds[] = {
        SF_CMD("lock", "list", "Lock commands: `lock list` lists the locks held now (lock, pid, node, operation)", 1,
               admin_lock),
        {0},
};

const sf_group_t sf_group_admin = {"admin", "Admin commands", cmds};
