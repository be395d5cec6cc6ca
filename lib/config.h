/* Configuration: environment variables SF_*, with defaults safe for one node.
 * `make run` writes them to build/run/sf.env; production sets them in the unit files. */
#pragma once
#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define SF_CONFIG_EVENT_TYPES 7 /* event types with a retention setting */

typedef struct sf_config {
        char node[64];            /* SF_NODE: this node's name (default: short hostname) */
        char redis_host[128];     /* SF_REDIS_HOST (127.0.0.1) */
        int redis_port;           /* SF_REDIS_PORT (6379) */
        char redis_password[256]; /* SF_REDIS_PASSWORD, or SF_REDIS_PASSWORD_FILE (none) */
        char nats_url[256];       /* SF_NATS_URL (nats://127.0.0.1:4222) */
        char nats_user[128];      /* SF_NATS_USER (none) */
        char nats_password[256];  /* SF_NATS_PASSWORD, or SF_NATS_PASSWORD_FILE (none) */
        char api_bind[64];        /* SF_API_BIND (127.0.0.1): loopback unless configured */
        int api_port;             /* SF_API_PORT (13000) */
        char api_url[256];        /* SF_API_URL (http://<bind>:<port>) as told to clients */
        char storage[PATH_MAX];   /* SF_STORAGE (/srv/sf): instances/, blobs/, image_cache/, dhcp/ */
        char domain_type[16];     /* SF_DOMAIN_TYPE: auto | kvm | qemu (auto) */
        char libvirt_uri[128];    /* SF_LIBVIRT_URI (qemu:///system) */
        char auth_secret[256];    /* SF_AUTH_SECRET, or the contents of SF_AUTH_SECRET_FILE */
        char zone[64];            /* SF_ZONE (shakenfist) */
        char mesh_ip[64];         /* SF_MESH_IP (127.0.0.1): VXLAN underlay address */
        char mesh_dev[32];        /* SF_MESH_DEV (lo) */
        char dns_server[64];      /* SF_DNS_SERVER (8.8.8.8) */
        int mtu;                  /* SF_MTU (1450): guest MTU on VXLAN networks */
        char network_node[64];    /* SF_NETWORK_NODE (this node): runs netns, dnsmasq, NAT */
        char floating_network[32];/* SF_FLOATING_NETWORK (192.168.20.0/24): NAT egress + floating IPs */
        int ack_wait_s;           /* SF_ACK_WAIT (15): JetStream redelivery after a silent worker */
        int max_attempts;         /* SF_MAX_ATTEMPTS (5): failed attempts before term + error */
        int redrive_after_s;      /* SF_REDRIVE_AFTER (60): untouched pending intent is re-published */
        int cleaner_delay_s;      /* SF_CLEANER_DELAY (3600): deleted records answer by UUID this long */
        int auth_rate_per_min;    /* SF_AUTH_RATE (120): POST /auth per client address per minute, */
        int auth_burst;           /* SF_AUTH_BURST (20): ... after a burst of this many; then 429 */
        int auth_audit_window_s;  /* SF_AUTH_AUDIT_WINDOW (60): failed POST /auth are counted per
                                     namespace and address; one audit event per window */
        int stuck_after_s;        /* SF_STUCK_AFTER (600): an object this long in a transitional
                                   * state without progress gets its intent again */
        int reconcile_interval_s; /* SF_RECONCILE_INTERVAL (30): between reconciler passes */
        int lock_ttl_ms;          /* SF_LOCK_TTL_MS (30000): sf-compute's instance locks; a paused
                                   * holder loses its lock after this long */
        int download_timeout_s;   /* SF_DOWNLOAD_TIMEOUT (1800): total time one image download may take */
        uint64_t download_max_bytes; /* SF_DOWNLOAD_MAX_BYTES (20 GiB): larger images are refused */
        char download_allow[1024];/* SF_DOWNLOAD_ALLOW (""): CIDR[:port],... exempt from lib/netpolicy.h */
        int blob_concurrency;     /* SF_BLOB_CONCURRENCY (4): downloads sf-blob runs at once */
        /* How long events of each type are kept, seconds, -1 = forever (api.md §5), in the
         * order of SF_EVENT_TYPES (lib/event.h): SF_EVENT_RETENTION_AUDIT (90 d), _MUTATE
         * (90 d), _STATUS (7 d), _USAGE (30 d), _RESOURCES (7 d), _PRUNE (30 d), _HISTORIC (90 d). */
        int64_t event_retention_s[SF_CONFIG_EVENT_TYPES];
        /* GET /events/stream (docs/events-stream.md) */
        int stream_heartbeat_s;   /* SF_STREAM_HEARTBEAT (15): keepalive comment and token re-check */
        int stream_max_subscribers; /* SF_STREAM_MAX_SUBSCRIBERS (256): more at once => 503 */
        int stream_backlog;       /* SF_STREAM_BACKLOG (1000): events a subscriber may lag; then dropped */
        int stream_write_timeout_s; /* SF_STREAM_WRITE_TIMEOUT (30): socket unwritable this long => dropped */
        int stream_ring;          /* SF_STREAM_RING (8192): recent events kept in memory for resume */
        /* The scheduler and nodes (api.md §7 step 2, §8) */
        double cpu_overcommit_ratio;       /* SF_CPU_OVERCOMMIT_RATIO (16): vCPUs per node CPU */
        double ram_overcommit_ratio;       /* SF_RAM_OVERCOMMIT_RATIO (3.0): instance RAM / node RAM */
        double ram_system_reservation_gib; /* SF_RAM_SYSTEM_RESERVATION (2.0 GiB) kept for the host */
        int minimum_free_disk_gib;         /* SF_MINIMUM_FREE_DISK (20 GiB) kept free on a node */
        int scheduler_cache_timeout_s;     /* SF_SCHEDULER_CACHE_TIMEOUT (5): sf-api re-reads node metrics */
        int node_checkin_max_s;            /* SF_NODE_CHECKIN_MAXIMUM (120): silent longer => missing */
        int usage_event_frequency_s;       /* SF_USAGE_EVENT_FREQUENCY (60; 0 = off): usage events */
        char console_bind[64];    /* SF_CONSOLE_BIND (127.0.0.1): serial consoles and VDI listen here */
} sf_config_t;

/* Fill cfg from the environment. -EINVAL with a log line on a malformed value. */
int sf_config_load(sf_config_t *cfg);

/* The node name as a NATS subject token (dots and wildcards become '_'). */
void sf_config_node_token(const char *node, char *out, size_t outlen);
