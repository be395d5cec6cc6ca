build-asan/obj/tests/integration/test_blob.o: \
 tests/integration/test_blob.c lib/ctx.h bus/bus.h lib/config.h \
 lib/store.h lib/event.h lib/exec.h lib/intent.h build-asan/gen/sf.pb-c.h \
 lib/util.h lib/lock.h lib/log.h lib/netpolicy.h lib/worker.h \
 tests/integration/../../workers/blob/blob.h \
 tests/integration/../../workers/blob/fetch.h
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
lib/event.h:
lib/exec.h:
lib/intent.h:
build-asan/gen/sf.pb-c.h:
lib/util.h:
lib/lock.h:
lib/log.h:
lib/netpolicy.h:
lib/worker.h:
tests/integration/../../workers/blob/blob.h:
tests/integration/../../workers/blob/fetch.h:
