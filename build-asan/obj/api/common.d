build-asan/obj/api/common.o: api/common.c api/api.h api/auth.h lib/ctx.h \
 bus/bus.h lib/config.h lib/store.h api/http.h lib/event.h lib/log.h \
 lib/state.h lib/util.h
api/api.h:
api/auth.h:
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
api/http.h:
lib/event.h:
lib/log.h:
lib/state.h:
lib/util.h:
