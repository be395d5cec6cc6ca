build-asan/obj/api/main.o: api/main.c api/api.h api/auth.h lib/ctx.h \
 bus/bus.h lib/config.h lib/store.h api/http.h lib/log.h lib/util.h
api/api.h:
api/auth.h:
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
api/http.h:
lib/log.h:
lib/util.h:
