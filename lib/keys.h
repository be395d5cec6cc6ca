/* Every Redis key sf uses, spelled once (docs/architecture.md "Redis keys" explains each).
 * Formats for printf-style calls; they concatenate with the command text, e.g.
 *     sf_store_cmd(s, "HMGET " SF_KEY_OBJ " rev doc", type, uuid);
 * Keys that Lua scripts build from a prefix use the *_PREFIX forms. */
#pragma once

#define SF_KEY_OBJ             "sf:obj:%s:%s"          /* type, uuid: hash {rev, doc} */
#define SF_KEY_IDX_ALL         "sf:idx:%s:all"         /* type: set of uuids */
#define SF_KEY_IDX             "sf:idx:%s:%s:%s"       /* type, index (ns|name|node), value */
#define SF_KEY_GEN             "sf:gen:%s"             /* type: bumped by every write and purge of one */
#define SF_KEY_EVENTS          "sf:events:%s:%s:%s"    /* type, uuid, event type: list, newest first */
#define SF_KEY_EVENTS_OLD      "sf:events:%s:%s"       /* type, uuid: before per-type lists (read, purged) */
#define SF_KEY_EVENTTS         "sf:eventts:%s:%s"      /* type, uuid: last event timestamp */
#define SF_KEY_INTENT          "sf:intent:%s"          /* intent id: hash */
#define SF_KEY_INTENT_PREFIX   "sf:intent:"            /* for Lua: prefix .. id */
#define SF_KEY_INTENT_OPEN     "sf:intent:open:%s:%s:%s:%s" /* subject, type, uuid, kind -> id */
#define SF_KEY_INTENTS_PENDING "sf:intents:pending"    /* zset of ids not yet done */
#define SF_KEY_LOCK            "sf:lock:%s"            /* lock name: "<token>:<holder>" */
#define SF_KEY_LOCK_PREFIX     "sf:lock:"              /* for SCAN MATCH prefix* */
#define SF_KEY_FENCE           "sf:fence:%s"           /* resource: newest fencing token */
#define SF_KEY_FENCECTR        "sf:fencectr"           /* source of fencing tokens */
#define SF_KEY_IPAM            "sf:ipam:%s"            /* network uuid: address -> owner */
#define SF_KEY_IPAMOWNERS      "sf:ipamowners:%s"      /* network uuid: owner -> address */
#define SF_KEY_VXID            "sf:vxid:%u"            /* VXLAN id -> network uuid */
#define SF_KEY_MAC             "sf:mac:%s"             /* MAC (lower case) -> interface uuid */
#define SF_KEY_PORT            "sf:port:%s:%d"         /* node, console/VDI port -> instance uuid */
#define SF_KEY_NETIFACES       "sf:netifaces:%s"       /* network uuid: set of interface uuids */
#define SF_KEY_ARTIFACTS_URL   "sf:artifacts:url:%s"   /* source URL: set of artifact uuids */
