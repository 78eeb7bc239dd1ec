/* Replays inputs through a fuzz target's LLVMFuzzerTestOneInput without libFuzzer, so
 * the normal build re-checks the seed corpus and every past crash. Arguments are files
 * or directories (dot files skipped); with none, the two directories compiled in as
 * RR_REPLAY_CORPUS and RR_REPLAY_REGRESSIONS. Fails when an input cannot be read, or when
 * nothing at all was replayed (a wrong path must not pass). */
#include "fuzz_target.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* Reads path into an exact-size buffer (so ASan sees over-reads); NULL on error. */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    uint8_t *buf = NULL;
    size_t n = 0;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0)
        goto out;
    n = (size_t)st.st_size;
    buf = malloc(n > 0 ? n : 1);
    if (buf != NULL && fread(buf, 1, n, f) != n) {
        free(buf);
        buf = NULL;
    }
out:
    fclose(f);
    *len = n;
    return buf;
}

static int replay_file(const char *path, size_t *count)
{
    size_t len = 0;
    uint8_t *data = read_file(path, &len);
    if (data == NULL) {
        fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
    int rc = LLVMFuzzerTestOneInput(data, len);
    free(data);
    if (rc != 0) {
        fprintf(stderr, "replay: %s: the target returned %d\n", path, rc);
        return -1;
    }
    (*count)++;
    return 0;
}

static int skip_dot(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

static int replay_path(const char *path, size_t *count)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_file(path, count);
    struct dirent **names = NULL;
    int n = scandir(path, &names, skip_dot, alphasort);
    if (n < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char file[4096];
        snprintf(file, sizeof file, "%s/%s", path, names[i]->d_name);
        if (rc == 0 && replay_file(file, count) != 0)
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    int rc = 0;
    if (argc > 1) {
        for (int i = 1; i < argc && rc == 0; i++)
            rc = replay_path(argv[i], &count);
    } else {
#if defined(RR_REPLAY_CORPUS) && defined(RR_REPLAY_REGRESSIONS)
        const char *dirs[] = {RR_REPLAY_CORPUS, RR_REPLAY_REGRESSIONS};
        for (size_t i = 0; i < sizeof dirs / sizeof dirs[0] && rc == 0; i++)
            rc = replay_path(dirs[i], &count);
#endif
    }
    if (rc != 0)
        return 1;
    if (count == 0) {
        fprintf(stderr, "replay: no input found\n");
        return 1;
    }
    printf("replay: %zu input(s), no failure\n", count);
    return 0;
}
