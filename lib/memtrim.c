#include "memtrim.h"

#include "log.h"

#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

long sf_mem_rss_kb(void) {
        char line[256];
        long kb = -1;
        FILE *f = fopen("/proc/self/status", "re");

        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
                        break;
        fclose(f);
        return kb;
}

typedef struct {
        uintptr_t start, end;
        bool candidate; /* file-backed, private, not writable */
        long anon_kb;
} mapping_t;

static void mapping_drop(const mapping_t *m) {
        if (m->candidate && m->anon_kb == 0 && m->end > m->start)
                madvise((void *)m->start, m->end - m->start, MADV_DONTNEED);
}

int sf_mem_trim(long *ret_kb) {
        char line[4352];
        mapping_t cur = {0};
        long before = sf_mem_rss_kb(), after;
        FILE *f;

        malloc_trim(0);
        f = fopen("/proc/self/smaps", "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                unsigned long s, e, inode;
                char perms[8], path[4096] = "";
                long kb;

                if (sscanf(line, "%lx-%lx %7s %*s %*s %lu %4095s", &s, &e, perms, &inode, path) >= 4 &&
                    strchr(line, '-') < strchr(line, ' ')) {
                        mapping_drop(&cur); /* the previous mapping is complete */
                        cur = (mapping_t){.start = s, .end = e, .anon_kb = -1};
                        cur.candidate = inode != 0 && path[0] == '/' && perms[0] == 'r' && perms[1] != 'w' &&
                                        perms[3] == 'p';
                        continue;
                }
                if (sscanf(line, "Anonymous: %ld kB", &kb) == 1)
                        cur.anon_kb = kb;
        }
        mapping_drop(&cur);
        fclose(f);
        after = sf_mem_rss_kb();
        if (ret_kb)
                *ret_kb = before >= 0 && after >= 0 ? before - after : 0;
        return 0;
}

static int trimmer_interval_s;

static int64_t cpu_ms(void) {
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return 0;
        return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
               (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

static void *trimmer_main(void *arg) {
        int64_t last = cpu_ms();
        bool trimmed = false;

        (void)arg;
        for (;;) {
                int64_t now;
                sleep((unsigned)trimmer_interval_s);
                now = cpu_ms();
                if (now - last > (int64_t)trimmer_interval_s * 10) {
                        trimmed = false; /* busy: trim again once it is idle */
                } else if (!trimmed) {
                        long kb = 0;
                        if (sf_mem_trim(&kb) == 0)
                                log_debug("idle: gave back %ld kB", kb);
                        trimmed = true;
                        now = cpu_ms(); /* the trim's own work is not activity */
                }
                last = now;
        }
        return NULL;
}

int sf_mem_trimmer_start(int check_s) {
        pthread_attr_t attr;
        pthread_t t;
        int r;

        mallopt(M_ARENA_MAX, 2);
        trimmer_interval_s = check_s > 0 ? check_s : 15;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 128 * 1024);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        r = pthread_create(&t, &attr, trimmer_main, NULL);
        pthread_attr_destroy(&attr);
        return -r;
}
