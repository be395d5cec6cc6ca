build-asan/obj/tools/sf-ctl.o: tools/sf-ctl.c tools/../api/api.h \
 tools/../api/auth.h lib/ctx.h bus/bus.h lib/config.h lib/store.h \
 tools/../api/http.h lib/log.h
tools/../api/api.h:
tools/../api/auth.h:
lib/ctx.h:
bus/bus.h:
lib/config.h:
lib/store.h:
tools/../api/http.h:
lib/log.h:
