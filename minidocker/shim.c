/*
 * shim.c -- what stays beside a detached container while it runs (chapter 2).
 *
 *     shim LOG MAX-SIZE MAX-FILE PID FD:STREAM[,FD:STREAM] -- FINISH-COMMAND...
 *
 * A detached container may run for weeks, and every one has a process beside
 * it: Docker's containerd-shim, podman's conmon, minidocker's supervisor.  So
 * that process should be small.  The supervisor (supervisor.py) needs most of
 * minidocker to *start* a container; once the container runs, all that is
 * left to do is copy its output into the log and wait for it to exit.  So the
 * supervisor replaces itself with this program (execve keeps the PID, so the
 * container stays its child).  A Python interpreter doing the same costs about
 * 8 MB of memory (RSS); this program about 1.2 MB, most of it pages of the C
 * library that every process on the machine shares (PSS: about 0.15 MB).
 *
 * It is told where the log is (LOG), when to rotate it (MAX-SIZE bytes, -1 for
 * never; MAX-FILE files in all), which process is the container (PID),
 * and which of its inherited file descriptors carry the container's stdout
 * and stderr (FD:STREAM: the read ends of two pipes, or one terminal master
 * with -t).  It then:
 *
 *  1. opens a pidfd for PID -- a file descriptor that becomes readable when
 *     that process exits (pidfd_open(2)) -- so one poll(2) waits for output
 *     and for the exit at the same time;
 *  2. writes every chunk of output it reads to LOG as one JSON line, in the
 *     format of Docker's json-file log driver, byte for byte what the
 *     supervisor writes (logfile.LogWriter):
 *         {"log": "hi\n", "stream": "stdout", "time": "2026-11-29T04:41:44.123456Z"}
 *     and rotates LOG as LogWriter does (logfile.py tells why): before the
 *     entry that would take LOG past MAX-SIZE, LOG.1, LOG.2 ... move up one
 *     name, LOG becomes LOG.1 and a new, empty LOG begins -- between lines
 *     only, so what completes a line still goes into the full file;
 *  3. once the container has exited, reads what is still buffered in the
 *     pipes (without blocking: a process that outlived it may hold them open);
 *  4. reaps it with waitpid(2), and execs FINISH-COMMAND with the wait status
 *     appended as its last argument -- the full supervisor, which records how
 *     the container ended (supervisor.finish).
 *
 * Output is bytes, but JSON strings are text.  Like Python's
 * bytes.decode("utf-8", "surrogateescape"), this program reads well-formed
 * UTF-8 as characters and turns every other byte 0xXY into the lone surrogate
 * U+DCXY, which `minidocker logs` turns back into that byte: any output, even
 * binary, comes back from the log exactly as the container wrote it.
 *
 * Errors in the arguments or in setting up print one line and exit 125.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536   /* the most one read(2) takes, and so one log line holds: as supervisor._copy */
#define MAX_OUTPUTS 2 /* stdout and stderr (or, with -t, one terminal) */

/* The log being written, and when to rotate it. */
static struct {
    const char *path;
    int fd;
    long long size, max_size; /* max_size -1: never rotate */
    int max_files;
    int at_line_start; /* does what the file holds end with a whole line? */
} log_file;

struct output {
    int fd;
    const char *stream; /* "stdout" or "stderr" */
    int open;           /* 0 once it has reached its end */
};

static unsigned char chunk[CHUNK];
/* One log line.  Its worst case, every byte written as \udcXX (6 characters), is large, but the
 * kernel gives a program memory for these arrays only on the pages it actually writes to. */
static char line[6 * CHUNK + 128];

static void fail(const char *what)
{
    fprintf(stderr, "shim: %s: %s\n", what, strerror(errno));
    exit(125);
}

static void usage(void)
{
    fprintf(stderr, "usage: shim LOG MAX-SIZE MAX-FILE PID FD:STREAM[,FD:STREAM] -- FINISH-COMMAND...\n");
    exit(125);
}

/* ---- JSON, as Python's json.dumps writes it (ensure_ascii: the log is plain ASCII) ---- */

static char *put(char *out, const char *text)
{
    while (*text)
        *out++ = *text++;
    return out;
}

/* \uXXXX, in lowercase hex as Python writes it. */
static char *put_u_escape(char *out, unsigned unit)
{
    static const char hex[] = "0123456789abcdef";
    *out++ = '\\';
    *out++ = 'u';
    for (int shift = 12; shift >= 0; shift -= 4)
        *out++ = hex[(unit >> shift) & 0xf];
    return out;
}

/*
 * The length (1-4) of the well-formed UTF-8 sequence at the start of s, and its code point;
 * 0 if there is none there.  "Well-formed" as the Unicode standard (table 3-7) and Python's
 * decoder define it: the shortest encoding only (no overlong C0 80 for U+0000), no encoded
 * surrogates (ED A0 80 is U+D800, which only UTF-16 may use), nothing above U+10FFFF.
 */
static int utf8_sequence(const unsigned char *s, size_t available, unsigned *code_point)
{
    unsigned char lowest = 0x80, highest = 0xbf; /* the range allowed for the second byte */
    int length;

    if (s[0] < 0x80) {
        *code_point = s[0];
        return 1;
    } else if (s[0] >= 0xc2 && s[0] <= 0xdf) { /* C0 and C1 could only start overlong sequences */
        length = 2;
        *code_point = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        length = 3;
        *code_point = s[0] & 0x0f;
        if (s[0] == 0xe0)
            lowest = 0xa0; /* below: overlong, U+0800 fits in two bytes */
        if (s[0] == 0xed)
            highest = 0x9f; /* above: the surrogates U+D800..U+DFFF */
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        length = 4;
        *code_point = s[0] & 0x07;
        if (s[0] == 0xf0)
            lowest = 0x90; /* below: overlong, fits in three bytes */
        if (s[0] == 0xf4)
            highest = 0x8f; /* above: beyond U+10FFFF */
    } else {
        return 0; /* 80..BF continue a sequence, they cannot start one; F5..FF are beyond U+10FFFF */
    }
    if (available < (size_t)length || s[1] < lowest || s[1] > highest)
        return 0; /* cut short (perhaps at the end of this chunk), or one of the cases above */
    for (int i = 1; i < length; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0; /* not a continuation byte */
        *code_point = *code_point << 6 | (s[i] & 0x3f);
    }
    return length;
}

/*
 * The bytes as the inside of a JSON string, as json.dumps(data.decode("utf-8", "surrogateescape"))
 * writes it.  A byte that starts no well-formed sequence becomes \udcXX; the next byte is then
 * looked at afresh -- Python's decoder resumes at the same place, since the bytes it skips with
 * the bad one are continuation bytes, which could start nothing either.
 */
static char *put_json_string(char *out, const unsigned char *data, size_t size)
{
    size_t i = 0;
    while (i < size) {
        unsigned code_point;
        int length = utf8_sequence(data + i, size - i, &code_point);
        if (length == 0) {
            out = put_u_escape(out, 0xdc00 | data[i]); /* surrogateescape: U+DC80..U+DCFF */
            i++;
            continue;
        }
        i += length;
        switch (code_point) {
        case '"':  out = put(out, "\\\""); break;
        case '\\': out = put(out, "\\\\"); break;
        case '\n': out = put(out, "\\n"); break;
        case '\r': out = put(out, "\\r"); break;
        case '\t': out = put(out, "\\t"); break;
        case '\b': out = put(out, "\\b"); break;
        case '\f': out = put(out, "\\f"); break;
        default:
            if (code_point >= 0x20 && code_point <= 0x7e) {
                *out++ = (char)code_point; /* printable ASCII as itself */
            } else if (code_point < 0x10000) {
                out = put_u_escape(out, code_point); /* control characters, DEL, the rest of the BMP */
            } else { /* beyond the BMP: JSON spells it as a UTF-16 surrogate pair */
                code_point -= 0x10000;
                out = put_u_escape(out, 0xd800 | code_point >> 10);
                out = put_u_escape(out, 0xdc00 | (code_point & 0x3ff));
            }
        }
    }
    return out;
}

/* Now, in RFC 3339 UTC with microseconds, as store.now() writes it: 2026-11-29T04:41:44.123456Z. */
static char *put_timestamp(char *out)
{
    struct timespec now;
    struct tm utc;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    out += strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &utc);
    return out + sprintf(out, ".%06ldZ", now.tv_nsec / 1000);
}

/* ---- the log ---- */

static void write_all(int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t written = write(fd, data, size);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return; /* a full disk loses log lines, but we keep reading: the container must not block */
        data += written;
        size -= (size_t)written;
    }
}

/* The entry for `size` bytes of output as one JSON line in `line`; returns its length. */
static size_t entry(const unsigned char *data, size_t size, const char *stream)
{
    char *end = put(line, "{\"log\": \"");
    end = put_json_string(end, data, size);
    end = put(end, "\", \"stream\": \"");
    end = put(end, stream);
    end = put(end, "\", \"time\": \"");
    end = put_timestamp(end);
    end = put(end, "\"}\n");
    return (size_t)(end - line);
}

static void append(size_t length, const unsigned char *data, size_t size)
{
    write_all(log_file.fd, line, length);
    log_file.size += (long long)length;
    log_file.at_line_start = data[size - 1] == '\n';
}

/* LOG.N-1 ... LOG.1 move up one name (the last is dropped), LOG becomes LOG.1, a new LOG begins. */
static void rotate(void)
{
    static char from[4096 + 16], to[4096 + 16];
    close(log_file.fd);
    if (log_file.max_files < 2) {
        unlink(log_file.path); /* a reader that has it open still reads it to its end */
    } else {
        int rotated = 1; /* the first free number after .1, .2 ... (at most MAX-FILE - 1, which is dropped) */
        snprintf(to, sizeof to, "%s.%d", log_file.path, rotated);
        while (rotated < log_file.max_files - 1 && access(to, F_OK) == 0)
            snprintf(to, sizeof to, "%s.%d", log_file.path, ++rotated);
        for (int number = rotated; number > 1; number--) { /* renaming onto the last drops it */
            snprintf(from, sizeof from, "%s.%d", log_file.path, number - 1);
            snprintf(to, sizeof to, "%s.%d", log_file.path, number);
            rename(from, to);
        }
        snprintf(to, sizeof to, "%s.1", log_file.path);
        rename(log_file.path, to);
    }
    log_file.fd = open(log_file.path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    log_file.size = 0; /* (if the open failed, as after rm -f, the writes fail too: we keep reading) */
    log_file.at_line_start = 1;
}

/* Copy one chunk of an output into the log, as one line written at once; 0 at the output's end. */
static int copy(struct output *output)
{
    ssize_t got;
    do
        got = read(output->fd, chunk, sizeof chunk);
    while (got < 0 && errno == EINTR);
    if (got <= 0)
        return 0; /* 0: end of file; EAGAIN: drained; EIO: a terminal whose other side has closed */

    const unsigned char *data = chunk;
    size_t size = (size_t)got, length = entry(data, size, output->stream);
    if (log_file.max_size > 0 && log_file.size > 0 && log_file.size + (long long)length > log_file.max_size) {
        const unsigned char *newline = memchr(data, '\n', size);
        if (!log_file.at_line_start && newline) { /* finish the line this file holds the start of */
            size_t line_end = (size_t)(newline - data) + 1;
            append(entry(data, line_end, output->stream), data, line_end);
            data += line_end;
            size -= line_end;
            length = size ? entry(data, size, output->stream) : 0;
        }
        rotate();
    }
    if (size)
        append(length, data, size);
    return 1;
}

/* ---- the arguments ---- */

/* A decimal number from `lowest` to `highest` that must be followed by `end_char`; *end is set to that character. */
static long long parse_number(const char *text, long long lowest, long long highest, char end_char,
                              const char **end)
{
    char *stop;
    errno = 0;
    long long number = strtoll(text, &stop, 10);
    if (stop == text || errno || number < lowest || number > highest || *stop != end_char)
        usage();
    *end = stop;
    return number;
}

/* "5:stdout,7:stderr" (or "" when there is no output to read). argv is left as it is:
 * it is what `ps` shows. */
static int parse_outputs(const char *text, struct output outputs[MAX_OUTPUTS])
{
    int count = 0;
    while (*text) {
        if (count == MAX_OUTPUTS)
            usage();
        outputs[count].fd = (int)parse_number(text, 0, 0x7fffffff, ':', &text);
        text++;
        if (strncmp(text, "stdout", 6) == 0)
            outputs[count].stream = "stdout";
        else if (strncmp(text, "stderr", 6) == 0)
            outputs[count].stream = "stderr";
        else
            usage();
        text += 6;
        if (*text != ',' && *text != '\0')
            usage();
        if (*text == ',')
            text++;
        outputs[count++].open = 1;
    }
    return count;
}

int main(int argc, char **argv)
{
    if (argc < 8 || strcmp(argv[6], "--") != 0)
        usage();
    const char *rest;
    log_file.path = argv[1];
    log_file.max_size = parse_number(argv[2], -1, 0x7fffffffffffffff, '\0', &rest);
    log_file.max_files = (int)parse_number(argv[3], 1, 0x7fffffff, '\0', &rest);
    pid_t pid = (pid_t)parse_number(argv[4], 1, 0x7fffffff, '\0', &rest);
    struct output outputs[MAX_OUTPUTS];
    int output_count = parse_outputs(argv[5], outputs);

    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0); /* the system call: glibc wraps it only from 2.36 */
    if (pidfd < 0)
        fail("pidfd_open");
    log_file.fd = open(log_file.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (log_file.fd < 0)
        fail(log_file.path);
    log_file.size = lseek(log_file.fd, 0, SEEK_END); /* a container started again goes on where it stopped */
    log_file.at_line_start = 1;

    /* 1, 2: copy output until the container exits. */
    int exited = 0;
    while (!exited) {
        struct pollfd watched[MAX_OUTPUTS + 1];
        struct output *watched_output[MAX_OUTPUTS];
        int count = 0;
        for (int i = 0; i < output_count; i++) {
            if (outputs[i].open) {
                watched[count] = (struct pollfd){.fd = outputs[i].fd, .events = POLLIN};
                watched_output[count++] = &outputs[i];
            }
        }
        watched[count] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        if (poll(watched, (nfds_t)count + 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            fail("poll");
        }
        for (int i = 0; i < count; i++) /* POLLIN, or POLLHUP/POLLERR: read(2) tells which */
            if (watched[i].revents && !copy(watched_output[i]))
                watched_output[i]->open = 0;
        exited = watched[count].revents != 0;
    }

    /* 3: what is still buffered once the container is gone. */
    for (int i = 0; i < output_count; i++) {
        if (outputs[i].open) {
            fcntl(outputs[i].fd, F_SETFL, fcntl(outputs[i].fd, F_GETFL) | O_NONBLOCK);
            while (copy(&outputs[i]))
                ;
        }
        close(outputs[i].fd);
    }
    close(log_file.fd);
    close(pidfd);

    /* 4: reap it, and become the command that records how it ended. */
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            fail("waitpid");
    char status_text[16];
    snprintf(status_text, sizeof status_text, "%d", status);
    int finish_count = argc - 7;
    char *finish[finish_count + 2];
    memcpy(finish, argv + 7, (size_t)finish_count * sizeof *finish);
    finish[finish_count] = status_text;
    finish[finish_count + 1] = NULL;
    execv(finish[0], finish);
    fail(finish[0]);
}
