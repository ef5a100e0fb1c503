// A seccomp-notification flood (a test helper, built statically): 16 threads call an unknown
// system call number in a loop, forever; the main thread burns CPU.
//   ./flood
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *spam(void *arg) {
    (void)arg;
    for (;;) syscall(1000, 0, 0, 0);
    return 0;
}

int main(void) {
    pthread_t t;
    for (int i = 0; i < 16; i++) pthread_create(&t, 0, spam, 0);
    for (volatile unsigned long n = 0;; n++) {}
}
