#include "state.h"

#include <stddef.h>
#include <string.h>

typedef struct {
        const char *from; /* "" = no state yet */
        const char *to;   /* '|' separated */
} edge_t;

typedef struct {
        const char *type;
        const edge_t *edges;
        const char *active; /* '|' separated */
        const char *transitional;
} machine_t;

static const edge_t instance_edges[] = {
        {"", "initial|error"},
        {"initial", "preflight|delete-wait|deleted|initial-error"},
        {"preflight", "creating|delete-wait|deleted|preflight-error"},
        {"creating", "created|delete-wait|deleted|creating-error"},
        {"created", "delete-wait|deleted|created-error"},
        {"initial-error", "delete-wait|deleted|error"},
        {"preflight-error", "delete-wait|deleted|error"},
        {"creating-error", "delete-wait|deleted|error"},
        {"created-error", "delete-wait|deleted|error"},
        {"error", "delete-wait|deleted|error"},
        {"delete-wait", "deleted|delete-wait-error"},
        {"delete-wait-error", "error"},
        {NULL, NULL},
};
static const edge_t network_edges[] = {
        {"", "initial"},
        {"initial", "created|deleted|error"},
        {"created", "deleted|delete-wait|error"},
        {"delete-wait", "deleted|error"},
        {"error", "deleted|error"},
        {NULL, NULL},
};
static const edge_t simple_edges[] = {
        {"", "initial"},
        {"initial", "created|deleted|error"},
        {"created", "deleted|error"},
        {"error", "deleted|error"},
        {NULL, NULL},
};
static const edge_t blob_edges[] = {
        {"", "initial"},
        {"initial", "created|error|deleted"},
        {"created", "error|deleted"},
        {"error", "deleted"},
        {NULL, NULL},
};
static const edge_t created_edges[] = {
        {"", "created"},
        {"created", "deleted"},
        {NULL, NULL},
};
static const edge_t node_edges[] = {
        {"", "created|error|missing"},
        {"created", "deleted|error|missing|stopping"},
        {"stopping", "stopped|deleted|error|created"},
        {"stopped", "created|deleted|error"},
        {"error", "created|deleted"},
        {"missing", "created|deleted|error"},
        {NULL, NULL},
};

static const machine_t machines[] = {
        {"instance", instance_edges, "initial|preflight|creating|created|initial-error|preflight-error|"
                                     "creating-error|created-error|error|delete-wait",
         "initial|preflight|creating|delete-wait"},
        {"network", network_edges, "initial|creating|created|error|delete-wait", "initial|delete-wait"},
        {"networkinterface", simple_edges, "initial|created|error", "initial"},
        {"artifact", simple_edges, "initial|created|error", "initial"},
        {"blob", blob_edges, "initial|creating|created|error|delete-wait", "initial"},
        {"upload", created_edges, "created", ""},
        {"namespace", created_edges, "created", ""},
        {"node", node_edges, "created", ""},
};

static bool in_list(const char *list, const char *word) {
        size_t n = strlen(word);

        for (const char *p = list; p && *p;) {
                const char *bar = strchr(p, '|');
                size_t len = bar ? (size_t)(bar - p) : strlen(p);
                if (len == n && strncmp(p, word, n) == 0)
                        return true;
                p = bar ? bar + 1 : NULL;
        }
        return false;
}

static const machine_t *find(const char *type) {
        for (size_t i = 0; i < sizeof(machines) / sizeof(machines[0]); i++)
                if (strcmp(machines[i].type, type) == 0)
                        return &machines[i];
        return NULL;
}

bool sf_state_ok(const char *objtype, const char *from, const char *to) {
        const machine_t *m = find(objtype);

        if (!m || !to)
                return false;
        if (from && strcmp(from, to) == 0)
                return true;
        for (const edge_t *e = m->edges; e->from; e++)
                if (strcmp(e->from, from ? from : "") == 0)
                        return in_list(e->to, to);
        return false;
}

bool sf_state_active(const char *objtype, const char *state) {
        const machine_t *m = find(objtype);

        return m && state && in_list(m->active, state);
}

bool sf_state_transitional(const char *objtype, const char *state) {
        const machine_t *m = find(objtype);

        return m && state && in_list(m->transitional, state);
}
