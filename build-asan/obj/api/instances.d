build-asan/obj/api/instances.o: api/instances.c api/api.h api/auth.h \
 lib/ctx.h bus/bus.h lib/config.h lib/store.h api/http.h lib/event.h \
 lib/intent.h build-asan/gen/sf.pb-c.h lib/util.h lib/ipam.h lib/log.h \
 lib/netpolicy.h lib/object.h lib/state.h
api/api.h:
api/auth.h:
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
api/http.h:
lib/event.h:
lib/intent.h:
build-asan/gen/sf.pb-c.h:
lib/util.h:
lib/ipam.h:
lib/log.h:
lib/netpolicy.h:
lib/object.h:
lib/state.h:
