// Hold MiB of memory in a memfd written with write(2), never mapped (a test helper, built
// statically): ./memfd MIB, then sleeps 2 s and prints "held".
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int mib = argc > 1 ? atoi(argv[1]) : 64;
    int fd = memfd_create("hog", 0);
    static char buf[1 << 20];
    memset(buf, 1, sizeof buf);
    for (int i = 0; i < mib; i++)
        if (write(fd, buf, sizeof buf) != sizeof buf) { puts("write failed"); return 1; }
    sleep(2);
    puts("held");
    return 0;
}
