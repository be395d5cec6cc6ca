build-asan/obj/workers/blob/main.o: workers/blob/main.c \
 workers/blob/blob.h lib/ctx.h bus/bus.h lib/config.h lib/store.h \
 lib/worker.h lib/intent.h build-asan/gen/sf.pb-c.h lib/util.h lib/log.h \
 lib/netpolicy.h
workers/blob/blob.h:
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
lib/worker.h:
lib/intent.h:
build-asan/gen/sf.pb-c.h:
lib/util.h:
lib/log.h:
lib/netpolicy.h:
