// The caller's user keyring as seen from where this runs (a test helper, built statically).
//   ./keys list         serials of the keys in @u whose description starts with "ward:", one per line
//   ./keys read SERIAL  "ok LEN" when key SERIAL can be read, else "errno NAME"
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEY_SPEC_USER_KEYRING -4
#define KEYCTL_DESCRIBE 6
#define KEYCTL_READ 11

static const char *ename(int e) {
    switch (e) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOKEY: return "ENOKEY";
    case EKEYREVOKED: return "EKEYREVOKED";
    case ENOSYS: return "ENOSYS";
    default: return "other";
    }
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "list") == 0) {
        int ids[1024];
        long n = syscall(SYS_keyctl, KEYCTL_READ, KEY_SPEC_USER_KEYRING, ids, sizeof ids);
        if (n < 0) { printf("errno %s\n", ename(errno)); return 0; }
        for (long i = 0; i < n / 4 && i < 1024; i++) {
            char d[512];
            long m = syscall(SYS_keyctl, KEYCTL_DESCRIBE, ids[i], d, sizeof d - 1);
            if (m <= 0) continue;
            d[m < (long)sizeof d ? m : (long)sizeof d - 1] = 0;
            char *desc = strrchr(d, ';');
            if (desc && strncmp(desc + 1, "ward:", 5) == 0) printf("%d\n", ids[i]);
        }
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "read") == 0) {
        char buf[65536];
        long n = syscall(SYS_keyctl, KEYCTL_READ, atoi(argv[2]), buf, sizeof buf);
        if (n < 0) printf("errno %s\n", ename(errno)); else printf("ok %ld\n", n);
        return 0;
    }
    fprintf(stderr, "usage: keys list | keys read SERIAL\n");
    return 2;
}
