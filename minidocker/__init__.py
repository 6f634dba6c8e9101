"""minidocker: Docker rebuilt from the Linux kernel up, chapter by chapter, to learn from.

Read the modules in chapter order:

    kernel.py      the system calls, each quoting its man page      (chapter 1)
    trace.py       how each step is recorded for --explain
    jsoncore.py    the JSON of records and messages, through json's C core (a faster start)
    cgroups/       resource limits: one interface, a v1 and a v2 driver
                   devices.py: which devices a container may open; devicefilter.py: v2's eBPF program
    rootfs.py      overlayfs, /proc, /dev, pivot_root vs chroot
    capabilities.py  root's power cut into pieces; Docker's default set
    seccomp.py     which system calls the container may make; Docker's default profile
    confinement.py the last steps before execve, the same for a container's first process and for exec
    launch.py      how a fork(2) becomes a container
    init.py        --init: a PID 1 that reaps and forwards signals    (chapter 2)
    spec.py        flag values and Docker's ENTRYPOINT + CMD rule
    store.py       containers on disk; images.py: images, the base image
    layers.py      layers: tar in and out, whiteouts, safe unpacking  (chapters 3, 7)
    supervisor.py  the shim beside each container; shim.c: its small waiting half, in C; enter.py: exec
    logfile.py     the container's log: json-file lines, rotated with rename(2), read as a stream
    compiled.py    the C programs (shim.c, demos/*.c): compiled once, cached by the hash of their source
    api.py         the Python API; cli.py: the command line over it (flags.py: Docker's flag grammar)
    notebook.py    the notebooks' Lab: a private state root, short cells, the trace as a table
    reference.py   image names: registry/repository:tag@digest      (chapter 3)
    content.py     digests: everything that arrives is checked
    archive.py     save / load: docker-archive and the OCI image layout
    registry.py    pull / push: the OCI distribution API over HTTP
    grade.py       the graded exercises (exercises/): stubs made from this code, and the grader;
    exercise.py    minidocker with one function replaced by a learner's
"""

__version__ = "0.1.0"
