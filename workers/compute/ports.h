/* Network ports of a node for instance serial consoles and VDI graphics (api.md §7 step
 * 5): picked at random in [SF_PORT_MIN, SF_PORT_MAX), unique per node through Redis
 * (sf:port:<node>:<port> -> instance uuid, SET NX), released on delete. */
#pragma once
#include "keys.h"
#include "store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

/* The most ports one sf_ports_claim_many call takes (an instance has three). */
#define SF_PORTS_CLAIM_MAX 8

/* Claim port for owner: 0 if it is (now) owner's, -EADDRINUSE if another's, -EIO if
 * Redis cannot tell. */
int sf_ports_claim(sf_store_t *st, const char *node, const char *owner, int port);
/* Claim n ports for owner in one round trip: ret_taken[i] is true when port i is
 * another's (the others are owner's now).  -EIO if Redis cannot tell. */
int sf_ports_claim_many(sf_store_t *st, const char *node, const char *owner, const int *ports, size_t n,
                        bool *ret_taken);
/* Release port if owner holds it (another owner's claim is left alone).  0 or -EIO. */
int sf_ports_release(sf_store_t *st, const char *node, const char *owner, int port);
/* A random port in the range that nothing on this host listens on at addr (a bind test)
 * and that is not one of avoid[0..navoid).  Not claimed: the caller records, then
 * claims.  -EADDRNOTAVAIL if none is found after many tries. */
int sf_ports_pick(const char *addr, const int *avoid, int navoid, int *ret_port);
/* Whether addr:port can be bound now (nothing listens there). */
bool sf_ports_bindable(const char *addr, int port);
/* Release every port the instance record names (console_port, vdi_port, vdi_tls_port)
 * that this node holds for it.  0 or -EIO (Redis could not tell: try again). */
int sf_ports_release_instance(sf_store_t *st, const char *node, json_object *inst);
