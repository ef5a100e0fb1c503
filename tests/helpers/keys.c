// The caller's user keyring as seen from where this runs (a test helper, built statically).
//   ./keys list         serials of the keys in @u whose description starts with "ward:", one per line
//   ./keys read SERIAL  "ok LEN" when key SERIAL can be read, else "errno NAME"
//   ./keys clear        invalidate every "ward:" key in @u (what ward cached is gone)
//   ./keys junk         "junk N": how many keys "ward:seccomp:junk*" @u still links
//   ./keys fill         add keys "ward:seccomp:junkN" (4000 bytes, then smaller) to @u
//                       until not even 16 bytes fit: "full N" (N added)
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
    case EDQUOT: return "EDQUOT";
    default: return "other";
    }
}

int main(int argc, char **argv) {
    if (argc >= 2 && (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "junk") == 0 || strcmp(argv[1], "clear") == 0)) {
        int junk = strcmp(argv[1], "junk") == 0, clear = strcmp(argv[1], "clear") == 0, found = 0;
        int ids[1024];
        long n = syscall(SYS_keyctl, KEYCTL_READ, KEY_SPEC_USER_KEYRING, ids, sizeof ids);
        if (n < 0) { printf("errno %s\n", ename(errno)); return 0; }
        for (long i = 0; i < n / 4 && i < 1024; i++) {
            char d[512];
            long m = syscall(SYS_keyctl, KEYCTL_DESCRIBE, ids[i], d, sizeof d - 1);
            if (m <= 0) continue;
            d[m < (long)sizeof d ? m : (long)sizeof d - 1] = 0;
            char *desc = strrchr(d, ';');
            if (clear && desc && strncmp(desc + 1, "ward:", 5) == 0) syscall(SYS_keyctl, 21 /* KEYCTL_INVALIDATE */, ids[i]);
            else if (junk) found += desc && strncmp(desc + 1, "ward:seccomp:junk", 17) == 0;
            else if (!clear && desc && strncmp(desc + 1, "ward:", 5) == 0) printf("%d\n", ids[i]);
        }
        if (junk) printf("junk %d\n", found);
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "read") == 0) {
        char buf[65536];
        long n = syscall(SYS_keyctl, KEYCTL_READ, atoi(argv[2]), buf, sizeof buf);
        if (n < 0) printf("errno %s\n", ename(errno)); else printf("ok %ld\n", n);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "fill") == 0) {
        static char payload[4000];
        int added = 0;
        for (size_t size = sizeof payload; size >= 16; size /= 4) {
            for (;;) {
                char name[64];
                snprintf(name, sizeof name, "ward:seccomp:junk%d", added);
                if (syscall(SYS_add_key, "user", name, payload, size, KEY_SPEC_USER_KEYRING) >= 0) { added++; continue; }
                if (errno == EDQUOT) break;
                printf("errno %s\n", ename(errno));
                return 0;
            }
        }
        printf("full %d\n", added);
        return 0;
    }
    fprintf(stderr, "usage: keys list | keys read SERIAL | keys fill\n");
    return 2;
}
