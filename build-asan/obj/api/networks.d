build-asan/obj/api/networks.o: api/networks.c api/api.h api/auth.h \
 lib/ctx.h bus/bus.h lib/config.h lib/store.h api/http.h lib/intent.h \
 build-asan/gen/sf.pb-c.h lib/util.h lib/ipam.h lib/log.h lib/object.h \
 lib/state.h
api/api.h:
api/auth.h:
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
api/http.h:
lib/intent.h:
build-asan/gen/sf.pb-c.h:
lib/util.h:
lib/ipam.h:
lib/log.h:
lib/object.h:
lib/state.h:
