/*
 * syscall_probe.c -- which system calls does this container let through?
 *
 *     usage: syscall_probe NAME...
 *
 * For each NAME it makes that system call once, with arguments chosen so
 * that nothing on the machine changes even where the call is allowed (an
 * invalid clock, a flag the kernel rejects, a key in this process's own
 * keyring), and prints one line:
 *
 *     keyctl: EPERM        the call failed with this errno
 *     keyctl: ok           the call succeeded
 *
 * Under a seccomp filter a denied call never reaches the code that would
 * check its arguments: it fails with the filter's errno (EPERM in Docker's
 * profile, ENOSYS for clone3).  Without a filter the same call gets as far
 * as the kernel lets it: "ok", or the errno of its own checks (EINVAL for
 * the invalid clock) -- or EPERM from a missing capability, which is why the
 * probe prefers arguments that fail a check made *before* the capability
 * check (clock_settime of CLOCK_MONOTONIC is EINVAL for everyone).
 *
 * Exit status: 0, or 2 for an unknown NAME.  It runs inside the busybox
 * image, which has no C library: compiled with gcc -static
 * (minidocker/demos/__init__.py, probe_binary()).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KEYCTL_GET_KEYRING_ID 0
#define KEY_SPEC_SESSION_KEYRING (-3)
#define KEY_SPEC_PROCESS_KEYRING (-2)

static long probe_ptrace_attach(void)
{
    /* Attach to a child of our own (no other process is touched), then let it go. */
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    long result = ptrace(PTRACE_ATTACH, child, 0, 0);
    int saved = errno;
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    errno = saved;
    return result;
}

static long probe_ptrace_other(const char *pid_text)
{
    /* Attach to a process the test names (one of its own, on the host), and let it go at once. */
    pid_t pid = (pid_t)atoi(pid_text);
    long result = ptrace(PTRACE_ATTACH, pid, 0, 0);
    if (result == 0) {
        int saved = errno;
        waitpid(pid, NULL, __WALL);
        ptrace(PTRACE_DETACH, pid, 0, 0);
        errno = saved;
    }
    return result;
}

static long probe(const char *name)
{
    if (!strncmp(name, "ptrace-attach=", 14))  /* ptrace-attach=PID: someone else's process */
        return probe_ptrace_other(name + 14);
    if (!strcmp(name, "keyctl"))
        return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    if (!strcmp(name, "add_key"))  /* into this process's own keyring: gone when it exits */
        return syscall(SYS_add_key, "user", "minidocker-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING);
    if (!strcmp(name, "request_key"))  /* no such key, no upcall: ENOKEY where allowed */
        return syscall(SYS_request_key, "user", "minidocker-probe-absent", NULL, 0);
    if (!strcmp(name, "bpf"))  /* an empty attribute: EINVAL where allowed */
        return syscall(SYS_bpf, 0, NULL, 0);
    if (!strcmp(name, "perf_event_open"))  /* no attribute: EFAULT where allowed */
        return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0);
    if (!strcmp(name, "kexec_load"))  /* flags the kernel rejects: EINVAL, nothing is loaded */
        return syscall(SYS_kexec_load, 0, 0, NULL, 0xdead0000UL);
    if (!strcmp(name, "open_by_handle_at"))  /* no directory fd, no handle */
        return syscall(SYS_open_by_handle_at, -1, NULL, 0);
    if (!strcmp(name, "init_module"))  /* an empty module: ENOEXEC where allowed */
        return syscall(SYS_init_module, NULL, 0, "");
    if (!strcmp(name, "finit_module"))  /* no file: EBADF where allowed */
        return syscall(SYS_finit_module, -1, "", 0);
    if (!strcmp(name, "delete_module"))
        return syscall(SYS_delete_module, "minidocker_probe_absent", O_NONBLOCK);
    if (!strcmp(name, "clock_settime")) {  /* the monotonic clock cannot be set: EINVAL for everyone */
        struct timespec ts = {0, 0};
        return syscall(SYS_clock_settime, CLOCK_MONOTONIC, &ts);
    }
    if (!strcmp(name, "settimeofday")) {  /* an invalid time: EINVAL, checked before CAP_SYS_TIME */
        struct timeval tv = {0, 2000000};
        return syscall(SYS_settimeofday, &tv, NULL);
    }
    if (!strcmp(name, "unshare-user"))  /* a user namespace for this process only */
        return unshare(CLONE_NEWUSER);
    if (!strcmp(name, "mount"))  /* onto a path that does not exist: ENOENT where allowed */
        return syscall(SYS_mount, "none", "/minidocker-probe-absent", "tmpfs", 0, NULL);
    if (!strcmp(name, "ptrace-attach"))
        return probe_ptrace_attach();
    if (!strcmp(name, "personality"))  /* READ_IMPLIES_EXEC: not one of the allowed personas */
        return syscall(SYS_personality, PER_LINUX | READ_IMPLIES_EXEC);
    if (!strcmp(name, "personality-query"))  /* 0xffffffff only asks */
        return syscall(SYS_personality, 0xffffffffUL);
    if (!strcmp(name, "clone3"))  /* size 0: EINVAL where allowed */
        return syscall(SYS_clone3, NULL, 0);
    if (!strcmp(name, "getpid"))  /* an ordinary call, for comparison */
        return syscall(SYS_getpid);
    errno = 0;
    return -2;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        errno = 0;
        long result = probe(argv[i]);
        if (result == -2 && errno == 0) {
            fprintf(stderr, "syscall_probe: unknown call %s\n", argv[i]);
            return 2;
        }
        if (result == -1)
            printf("%s: %s\n", argv[i], strerrorname_np(errno) ? strerrorname_np(errno) : strerror(errno));
        else
            printf("%s: ok\n", argv[i]);
        fflush(stdout);
    }
    return 0;
}
