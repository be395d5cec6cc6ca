build-asan/obj/tests/unit/test_netpolicy.o: tests/unit/test_netpolicy.c \
 lib/netpolicy.h lib/config.h
lib/netpolicy.h:
lib/config.h:
