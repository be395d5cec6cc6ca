build-asan/obj/workers/blob/fetch.o: workers/blob/fetch.c \
 workers/blob/fetch.h lib/netpolicy.h lib/config.h lib/log.h lib/util.h
workers/blob/fetch.h:
lib/netpolicy.h:
lib/config.h:
lib/log.h:
lib/util.h:
