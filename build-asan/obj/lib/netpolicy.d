build-asan/obj/lib/netpolicy.o: lib/netpolicy.c lib/netpolicy.h \
 lib/config.h lib/log.h lib/util.h
lib/netpolicy.h:
lib/config.h:
lib/log.h:
lib/util.h:
