#include "lock.h"
#include "keys.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

struct sf_lock {
        char name[160];
        char key[192];
        char value[128];
        uint64_t token;
        int ttl_ms;
        atomic_bool lost;
        atomic_bool stop;
        bool has_thread;
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cv;
        char host[128];
        int port;
        /* boot_ms() taken before the request that last found the lock ours (acquire
         * or refresh): the lock is ours at least until then + ttl_ms. */
        _Atomic int64_t confirmed_ms;
};

/* Milliseconds on a clock that also runs while the machine sleeps (Redis's expiry does). */
static int64_t boot_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_BOOTTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A check this soon after the lock was last found ours is answered without asking
 * Redis: the lock cannot have expired meanwhile (it lives ttl_ms from that request), and
 * nothing else removes a live holder's lock (sf_lock_break_dead only a dead process's). */
static int64_t check_window_ms(const sf_lock_t *l) {
        return l->ttl_ms / 10 < 1000 ? l->ttl_ms / 10 : 1000;
}

/* KEYS: lock, fence counter, fence-of-resource.  ARGV: holder, ttl. */
static const char ACQUIRE_LUA[] =
        "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
        "local t = redis.call('INCR', KEYS[2])\n"
        "redis.call('SET', KEYS[1], t .. ':' .. ARGV[1], 'PX', ARGV[2])\n"
        "redis.call('SET', KEYS[3], t)\n"
        "return t\n";
static const char REFRESH_LUA[] =
        "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
        "  return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end\n"
        "return 0\n";
static const char RELEASE_LUA[] =
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
        "return 0\n";

static int refresh_with(sf_store_t *s, sf_lock_t *l) {
        int64_t sent = boot_ms();
        _cleanup_reply_ redisReply *r = sf_store_cmd(s, "EVAL %s 1 %s %s %d", REFRESH_LUA, l->key,
                                                     l->value, l->ttl_ms);
        if (!r || r->type != REDIS_REPLY_INTEGER)
                return -EIO;
        if (r->integer != 1) {
                atomic_store(&l->lost, true);
                return -ENOLCK;
        }
        atomic_store(&l->confirmed_ms, sent);
        return 0;
}

static void *keepalive_main(void *arg) {
        sf_lock_t *l = arg;
        sf_store_t *s = NULL;

        pthread_mutex_lock(&l->mu);
        while (!atomic_load(&l->stop)) {
                struct timespec ts;
                int period = l->ttl_ms / 3;

                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += period / 1000;
                ts.tv_nsec += (long)(period % 1000) * 1000000;
                if (ts.tv_nsec >= 1000000000) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait(&l->cv, &l->mu, &ts);
                if (atomic_load(&l->stop))
                        break;
                if (!s && sf_store_connect(l->host, l->port, &s) < 0)
                        continue;
                if (refresh_with(s, l) == -ENOLCK) {
                        log_warn("lock %s: lost (token %llu)", l->name, (unsigned long long)l->token);
                        break;
                }
        }
        pthread_mutex_unlock(&l->mu);
        sf_store_free(s);
        return NULL;
}

int sf_lock_acquire(sf_store_t *s, const char *name, const char *holder, int ttl_ms, int wait_ms,
                    bool keepalive, sf_lock_t **ret) {
        int64_t deadline = sf_mono_ms() + wait_ms;
        char fence_key[192];
        sf_lock_t *l;

        if (ttl_ms < 30)
                return -EINVAL;
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        snprintf(l->name, sizeof(l->name), "%s", name);
        snprintf(l->key, sizeof(l->key), SF_KEY_LOCK, name);
        snprintf(fence_key, sizeof(fence_key), SF_KEY_FENCE, name);
        snprintf(l->host, sizeof(l->host), "%s", sf_store_host(s));
        l->port = sf_store_port(s);
        l->ttl_ms = ttl_ms;
        pthread_mutex_init(&l->mu, NULL);
        pthread_cond_init(&l->cv, NULL);
        for (int delay = 10;; delay = delay < 200 ? delay * 2 : 200) {
                int64_t sent = boot_ms();
                /* Once: after a lost reply the lock may be ours already, and a re-send
                 * would see it taken (or INCR the counter again).  If it was applied,
                 * it expires after ttl_ms: nobody refreshes it. */
                _cleanup_reply_ redisReply *r = sf_store_cmd_once(s, "EVAL %s 3 %s " SF_KEY_FENCECTR " %s %s %d",
                                                             ACQUIRE_LUA, l->key, fence_key, holder,
                                                             ttl_ms);
                if (!r || r->type != REDIS_REPLY_INTEGER) {
                        int err = r ? sf_store_reply_errno(r) : -EIO;
                        sf_lock_release(NULL, l);
                        return err < 0 ? err : -EIO;
                }
                if (r->integer > 0) {
                        l->token = (uint64_t)r->integer;
                        atomic_store(&l->confirmed_ms, sent);
                        break;
                }
                if (sf_mono_ms() >= deadline) {
                        sf_lock_release(NULL, l);
                        return -EBUSY;
                }
                struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)delay * 1000000};
                nanosleep(&ts, NULL);
        }
        snprintf(l->value, sizeof(l->value), "%llu:%s", (unsigned long long)l->token, holder);
        if (keepalive) {
                if (pthread_create(&l->thread, NULL, keepalive_main, l) == 0)
                        l->has_thread = true;
                else
                        log_warn("lock %s: no keepalive thread", name);
        }
        *ret = l;
        return 0;
}

int sf_lock_refresh(sf_store_t *s, sf_lock_t *l) { return refresh_with(s, l); }

int sf_lock_check(sf_store_t *s, sf_lock_t *l) {
        if (!l)
                return -ENOLCK;
        if (atomic_load(&l->lost))
                return -ENOLCK;
        if (boot_ms() - atomic_load(&l->confirmed_ms) < check_window_ms(l))
                return 0;
        return refresh_with(s, l);
}

bool sf_lock_lost(const sf_lock_t *l) { return atomic_load(&((sf_lock_t *)l)->lost); }

uint64_t sf_lock_token(const sf_lock_t *l) { return l->token; }

sf_fence_t sf_lock_fence(const sf_lock_t *l) {
        return (sf_fence_t){.resource = l->name, .token = l->token};
}

void sf_lock_release(sf_store_t *s, sf_lock_t *l) {
        if (!l)
                return;
        if (l->has_thread) {
                pthread_mutex_lock(&l->mu);
                atomic_store(&l->stop, true);
                pthread_cond_signal(&l->cv);
                pthread_mutex_unlock(&l->mu);
                pthread_join(l->thread, NULL);
        }
        if (s && l->token)
                freeReplyObject(sf_store_cmd(s, "EVAL %s 1 %s %s", RELEASE_LUA, l->key, l->value));
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        free(l);
}

void sf_lock_holder(const char *node, char *out, size_t len) {
        snprintf(out, len, "%s/%d", node, (int)getpid());
}

int sf_lock_break_dead(sf_store_t *s, const char *name, const char *node) {
        _cleanup_reply_ redisReply *r = sf_store_cmd(s, "GET " SF_KEY_LOCK, name);
        const char *holder, *slash;
        size_t nlen = strlen(node);
        long pid;

        if (!r)
                return -EIO;
        if (r->type != REDIS_REPLY_STRING)
                return 0;
        holder = strchr(r->str, ':'); /* "<token>:<node>/<pid>" */
        if (!holder)
                return 0;
        holder++;
        slash = strrchr(holder, '/');
        if (!slash || (size_t)(slash - holder) != nlen || strncmp(holder, node, nlen) != 0)
                return 0;
        pid = strtol(slash + 1, NULL, 10);
        if (pid <= 0 || pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
                return 0;
        {
                _cleanup_reply_ redisReply *d = sf_store_cmd(
                        s, "EVAL %s 1 " SF_KEY_LOCK " %s",
                        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
                        name, r->str);
                if (!d || d->type != REDIS_REPLY_INTEGER)
                        return -EIO;
                if (d->integer == 1)
                        log_info("lock %s: broke the lock of dead process %ld", name, pid);
                return (int)d->integer;
        }
}

int sf_lock_acquire_worker(sf_store_t *s, const char *name, const char *node, int ttl_ms, int wait_ms,
                           sf_lock_t **ret) {
        char holder[160];
        int r;

        sf_lock_holder(node, holder, sizeof(holder));
        r = sf_lock_acquire(s, name, holder, ttl_ms, 0, true, ret);
        if (r == -EBUSY && sf_lock_break_dead(s, name, node) == 1)
                r = sf_lock_acquire(s, name, holder, ttl_ms, 0, true, ret);
        if (r == -EBUSY && wait_ms > 0)
                r = sf_lock_acquire(s, name, holder, ttl_ms, wait_ms, true, ret);
        return r;
}
