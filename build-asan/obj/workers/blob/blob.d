build-asan/obj/workers/blob/blob.o: workers/blob/blob.c \
 workers/blob/blob.h lib/ctx.h bus/bus.h lib/config.h lib/store.h \
 lib/worker.h lib/intent.h build-asan/gen/sf.pb-c.h lib/util.h \
 lib/event.h workers/blob/fetch.h lib/netpolicy.h lib/lock.h lib/log.h \
 lib/object.h
workers/blob/blob.h:
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
lib/worker.h:
lib/intent.h:
build-asan/gen/sf.pb-c.h:
lib/util.h:
lib/event.h:
workers/blob/fetch.h:
lib/netpolicy.h:
lib/lock.h:
lib/log.h:
lib/object.h:
