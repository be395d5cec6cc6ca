build-asan/obj/workers/compute/domain.o: workers/compute/domain.c \
 workers/compute/domain.h lib/log.h lib/tmpl.h lib/util.h
workers/compute/domain.h:
lib/log.h:
lib/tmpl.h:
lib/util.h:
