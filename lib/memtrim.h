/* Giving resident memory back while a daemon is idle.  An idle sf daemon's resident set is
 * mostly pages of shared libraries it touched once, at start-up (OpenSSL's provider
 * tables, libvirt's and GnuTLS's initialisation), and heap the allocator keeps. */
#pragma once
#include <stddef.h>

/* malloc_trim, then drop this process's page-table entries of file-backed, private,
 * read-only mappings that hold no page of their own (smaps "Anonymous: 0 kB": nothing
 * relocated or copied on write): their contents are the file's, and a later access
 * maps the page again from the page cache (a minor fault), as after the kernel reclaimed
 * it.  Writable mappings, copied-on-write ones (RELRO), shared and anonymous memory are
 * never touched.  *ret_kb (may be NULL): resident kB before minus after.  0 or a
 * negative errno (smaps unreadable). */
int sf_mem_trim(long *ret_kb);
/* VmRSS of this process in kB, or -1. */
long sf_mem_rss_kb(void);
/* A thread that trims (sf_mem_trim) once whenever the process has been idle, using less
 * than 1% of a CPU over the last check_s seconds, and again only after it was busy.
 * Also caps malloc at 2 arenas (one per thread by default: each keeps its own free
 * memory).  0 or a negative errno. */
int sf_mem_trimmer_start(int check_s);
