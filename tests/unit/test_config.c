/* Unit tests of config.c: the defaults of DESIGN §6, parsing and bounds, cross-field
 * rules, the upstream key file, secrets hidden in the start-up log line, and --help.
 * Every test starts from an environment without REQRUN_* variables and restores it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "reqrun/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* Every variable DESIGN §6 lists. */
static const char *const design_vars[] = {
    "REQRUN_NATS_URL",          "REQRUN_NATS_CREDS",
    "REQRUN_NATS_USER",         "REQRUN_NATS_PASSWORD",
    "REQRUN_NATS_TLS_CA",       "REQRUN_LISTEN",
    "REQRUN_EXECUTOR_LISTEN",   "REQRUN_MOCK_LISTEN",
    "REQRUN_UPSTREAM_URL",      "REQRUN_UPSTREAM_API_KEY",
    "REQRUN_UPSTREAM_API_KEY_FILE", "REQRUN_UPSTREAM_TIMEOUT_S",
    "REQRUN_EXECUTOR_CONCURRENCY", "REQRUN_MAX_ATTEMPTS",
    "REQRUN_DEADLINE_S",        "REQRUN_RETRY_BASE_MS",
    "REQRUN_RETRY_MAX_MS",      "REQRUN_RETRY_AMBIGUOUS",
    "REQRUN_WAIT_TIMEOUT_S",    "REQRUN_WAIT_MAX_S",
    "REQRUN_ACK_WAIT_S",        "REQRUN_MAX_ACK_PENDING",
    "REQRUN_REPLICAS",          "REQRUN_DEDUP_WINDOW_S",
    "REQRUN_RECORD_TTL_S",      "REQRUN_PROVISION",
    "REQRUN_API_KEYS_FILE",     "REQRUN_ALLOW_INSECURE",
    "REQRUN_TENANT_MAX_PENDING", "REQRUN_MAX_BODY_BYTES",
    "REQRUN_WEBHOOK_SECRETS_FILE", "REQRUN_WEBHOOK_SECRET",
    "REQRUN_WEBHOOK_ALLOW",     "REQRUN_LOG_BODIES",
};
#define N_DESIGN_VARS (sizeof design_vars / sizeof design_vars[0])

/* ---- environment save/restore ---- */

#define MAX_SAVED 128
static char *saved_env[MAX_SAVED]; /* "NAME=value" copies */
static size_t n_saved;

static void clear_reqrun_env(void)
{
    /* Collect names first: unsetenv edits environ. */
    char *names[MAX_SAVED];
    size_t n = 0;
    for (char **e = environ; *e != NULL && n < MAX_SAVED; e++) {
        if (strncmp(*e, "REQRUN_", 7) == 0) {
            size_t len = strcspn(*e, "=");
            names[n] = strndup(*e, len);
            assert_non_null(names[n]);
            n++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        unsetenv(names[i]);
        free(names[i]);
    }
}

static int setup(void **state)
{
    (void)state;
    n_saved = 0;
    for (char **e = environ; *e != NULL && n_saved < MAX_SAVED; e++) {
        if (strncmp(*e, "REQRUN_", 7) == 0)
            saved_env[n_saved++] = strdup(*e);
    }
    clear_reqrun_env();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    clear_reqrun_env();
    for (size_t i = 0; i < n_saved; i++) {
        char *eq = strchr(saved_env[i], '=');
        *eq = '\0';
        setenv(saved_env[i], eq + 1, 1);
        free(saved_env[i]);
    }
    n_saved = 0;
    return 0;
}

/* ---- helpers ---- */

static void load_ok(rr_config *cfg)
{
    char err[256] = "";
    rr_status s = rr_config_load(cfg, err, sizeof err);
    if (s != RR_OK)
        fail_msg("rr_config_load: %s (%s)", rr_status_str(s), err);
}

/* Sets name=value and expects the load to fail with an error naming `names`. */
static void load_refused(const char *name, const char *value, const char *named)
{
    setenv(name, value, 1);
    rr_config cfg;
    char err[256] = "";
    rr_status s = rr_config_load(&cfg, err, sizeof err);
    if (s != RR_CONFIG)
        fail_msg("%s=%s: got %s, want config error", name, value, rr_status_str(s));
    if (strstr(err, named) == NULL)
        fail_msg("%s=%s: error \"%s\" does not name %s", name, value, err, named);
    unsetenv(name);
}

static char *write_temp(const char *text)
{
    char *path = strdup("/tmp/rr_test_config_XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

/* Runs rr_config_log with fd 2 redirected to a temp file; returns what it wrote. */
static char *capture_log(const rr_config *cfg)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    rr_config_log(cfg);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    /* rr_log wrote to the fd directly: measure the file, not the FILE position. */
    assert_int_equal(fseek(tmp, 0, SEEK_END), 0);
    long n = ftell(tmp);
    assert_true(n > 0);
    char *buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    rewind(tmp);
    assert_int_equal(fread(buf, 1, (size_t)n, tmp), (size_t)n);
    fclose(tmp);
    return buf;
}

/* ---- tests ---- */

static void test_defaults(void **state)
{
    (void)state;
    rr_config cfg;
    load_ok(&cfg);
    assert_string_equal(cfg.nats_url, "nats://127.0.0.1:4222");
    assert_null(cfg.nats_creds);
    assert_null(cfg.nats_user);
    assert_null(cfg.nats_password);
    assert_null(cfg.nats_tls_ca);
    assert_string_equal(cfg.nats_inbox_prefix, "_INBOX");
    assert_string_equal(cfg.listen, "127.0.0.1:8080");
    assert_string_equal(cfg.executor_listen, "127.0.0.1:8081");
    assert_string_equal(cfg.mock_listen, "127.0.0.1:8090");
    assert_string_equal(cfg.upstream_url, "https://api.openai.com/v1");
    assert_null(cfg.upstream_api_key);
    assert_null(cfg.upstream_api_key_file);
    assert_int_equal(cfg.upstream_timeout_s, 300);
    assert_int_equal(cfg.executor_concurrency, 256);
    assert_int_equal(cfg.max_attempts, 5);
    assert_int_equal(cfg.deadline_s, 3600);
    assert_int_equal(cfg.retry_base_ms, 500);
    assert_int_equal(cfg.retry_max_ms, 60000);
    assert_true(cfg.retry_ambiguous);
    assert_int_equal(cfg.wait_timeout_s, 20);
    assert_int_equal(cfg.wait_max_s, 120);
    assert_int_equal(cfg.ack_wait_s, 30);
    assert_int_equal(cfg.max_ack_pending, 100000);
    assert_int_equal(cfg.replicas, 1);
    assert_int_equal(cfg.dedup_window_s, 120);
    assert_int_equal(cfg.record_ttl_s, 86400);
    assert_true(cfg.provision);
    assert_null(cfg.api_keys_file);
    assert_false(cfg.allow_insecure);
    assert_int_equal(cfg.tenant_max_pending, 10000);
    assert_int_equal(cfg.max_body_bytes, 4194304);
    assert_null(cfg.webhook_secrets_file);
    assert_null(cfg.webhook_secret);
    assert_null(cfg.webhook_allow);
    assert_false(cfg.log_bodies);
    /* MaxDeliver = MAX_ATTEMPTS x 2 + 5 (DESIGN §5) */
    assert_int_equal(rr_config_max_deliver(&cfg), 15);
    /* instance id defaults to <hostname>-<pid> */
    assert_non_null(cfg.instance_id);
    char pid[32];
    snprintf(pid, sizeof pid, "-%ld", (long)getpid());
    size_t il = strlen(cfg.instance_id), pl = strlen(pid);
    assert_true(il > pl && strcmp(cfg.instance_id + il - pl, pid) == 0);
    rr_config_free(&cfg);
    assert_null(cfg.nats_url);
    rr_config_free(NULL);
}

static void test_values_parsed(void **state)
{
    (void)state;
    setenv("REQRUN_NATS_URL", "nats://a:4222,nats://b:4222", 1);
    setenv("REQRUN_MAX_ATTEMPTS", "7", 1);
    setenv("REQRUN_DEADLINE_S", "600", 1);
    setenv("REQRUN_RETRY_BASE_MS", "100", 1);
    setenv("REQRUN_RETRY_MAX_MS", "1000", 1);
    setenv("REQRUN_MAX_ACK_PENDING", "250000", 1);
    setenv("REQRUN_STREAM_MAX_BYTES", "-1", 1);
    setenv("REQRUN_REPLICAS", "3", 1);
    setenv("REQRUN_INSTANCE_ID", "exec-7", 1);
    setenv("REQRUN_UPSTREAM_API_KEY", "sk-env", 1);
    setenv("REQRUN_WAIT_TIMEOUT_S", "", 1); /* empty: the default */
    rr_config cfg;
    load_ok(&cfg);
    assert_string_equal(cfg.nats_url, "nats://a:4222,nats://b:4222");
    assert_int_equal(cfg.max_attempts, 7);
    assert_int_equal(rr_config_max_deliver(&cfg), 19);
    assert_int_equal(cfg.deadline_s, 600);
    assert_int_equal(cfg.retry_base_ms, 100);
    assert_int_equal(cfg.retry_max_ms, 1000);
    assert_int_equal(cfg.max_ack_pending, 250000);
    assert_int_equal(cfg.stream_max_bytes, -1);
    assert_int_equal(cfg.replicas, 3);
    assert_string_equal(cfg.instance_id, "exec-7");
    assert_string_equal(cfg.upstream_api_key, "sk-env");
    assert_int_equal(cfg.wait_timeout_s, 20);
    rr_config_free(&cfg);
}

static void test_bools(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool value;
    } v[] = {{"true", true}, {"TRUE", true},   {"1", true},   {"yes", true},  {"on", true},
             {"false", false}, {"False", false}, {"0", false}, {"no", false}, {"off", false}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        setenv("REQRUN_RETRY_AMBIGUOUS", v[i].text, 1);
        setenv("REQRUN_PROVISION", v[i].text, 1);
        setenv("REQRUN_LOG_BODIES", v[i].text, 1);
        rr_config cfg;
        load_ok(&cfg);
        assert_int_equal(cfg.retry_ambiguous, v[i].value);
        assert_int_equal(cfg.provision, v[i].value);
        assert_int_equal(cfg.log_bodies, v[i].value);
        rr_config_free(&cfg);
    }
    unsetenv("REQRUN_RETRY_AMBIGUOUS");
    unsetenv("REQRUN_PROVISION");
    unsetenv("REQRUN_LOG_BODIES");
    static const char *const bad[] = {"maybe", "2", "tru", "truee", " true", "-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        load_refused("REQRUN_RETRY_AMBIGUOUS", bad[i], "REQRUN_RETRY_AMBIGUOUS");
        load_refused("REQRUN_ALLOW_INSECURE", bad[i], "REQRUN_ALLOW_INSECURE");
    }
}

static void test_bounds(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *lo_ok, *hi_ok; /* the bounds themselves are accepted */
        const char *below, *above;
    } v[] = {
        {"REQRUN_MAX_ATTEMPTS", "1", "100", "0", "101"},
        {"REQRUN_REPLICAS", "1", "5", "0", "6"},
        {"REQRUN_ACK_WAIT_S", "3", "3600", "2", "3601"},
        {"REQRUN_UPSTREAM_TIMEOUT_S", "1", "3600", "0", "3601"},
        {"REQRUN_EXECUTOR_CONCURRENCY", "1", "65536", "0", "65537"},
        {"REQRUN_MAX_BODY_BYTES", "1024", "7340032", "1023", "7340033"},
        {"REQRUN_MAX_ACK_PENDING", "1", "10000000", "0", "10000001"},
        {"REQRUN_DEDUP_WINDOW_S", "1", "86400", "0", "86401"},
        {"REQRUN_TENANT_MAX_PENDING", "1", "100000000", "0", "100000001"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        rr_config cfg;
        setenv(v[i].name, v[i].lo_ok, 1);
        load_ok(&cfg);
        rr_config_free(&cfg);
        setenv(v[i].name, v[i].hi_ok, 1);
        load_ok(&cfg);
        rr_config_free(&cfg);
        load_refused(v[i].name, v[i].below, v[i].name);
        load_refused(v[i].name, v[i].above, v[i].name);
        load_refused(v[i].name, "-5", v[i].name);
    }
    /* Bounds of the time variables that take part in cross-field rules. */
    load_refused("REQRUN_DEADLINE_S", "0", "REQRUN_DEADLINE_S");
    load_refused("REQRUN_RECORD_TTL_S", "59", "REQRUN_RECORD_TTL_S");
    load_refused("REQRUN_RETRY_BASE_MS", "0", "REQRUN_RETRY_BASE_MS");
    load_refused("REQRUN_WAIT_MAX_S", "3601", "REQRUN_WAIT_MAX_S");
}

static void test_non_numeric(void **state)
{
    (void)state;
    static const char *const bad[] = {"abc", "5x", "1.5", "1e3", "0x10", "five",
                                      "5 ", "99999999999999999999999", "--5"};
    static const char *const vars[] = {"REQRUN_MAX_ATTEMPTS", "REQRUN_WAIT_TIMEOUT_S",
                                       "REQRUN_RECORD_TTL_S", "REQRUN_MAX_BODY_BYTES"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (size_t j = 0; j < sizeof vars / sizeof vars[0]; j++)
            load_refused(vars[j], bad[i], vars[j]);
    }
}

static void test_cross_field_rules(void **state)
{
    (void)state;
    rr_config cfg;
    /* deadline below the record TTL */
    setenv("REQRUN_RECORD_TTL_S", "7200", 1);
    setenv("REQRUN_DEADLINE_S", "7199", 1);
    load_ok(&cfg);
    rr_config_free(&cfg);
    load_refused("REQRUN_DEADLINE_S", "7200", "REQRUN_DEADLINE_S");
    load_refused("REQRUN_DEADLINE_S", "7200", "REQRUN_RECORD_TTL_S");
    load_refused("REQRUN_DEADLINE_S", "9000", "REQRUN_DEADLINE_S");
    unsetenv("REQRUN_RECORD_TTL_S");
    load_refused("REQRUN_RECORD_TTL_S", "3600", "REQRUN_RECORD_TTL_S"); /* default deadline */

    /* wait timeout at most the wait max */
    setenv("REQRUN_WAIT_TIMEOUT_S", "120", 1);
    load_ok(&cfg);
    rr_config_free(&cfg);
    load_refused("REQRUN_WAIT_TIMEOUT_S", "121", "REQRUN_WAIT_TIMEOUT_S");
    setenv("REQRUN_WAIT_TIMEOUT_S", "30", 1);
    load_refused("REQRUN_WAIT_MAX_S", "29", "REQRUN_WAIT_MAX_S");
    unsetenv("REQRUN_WAIT_TIMEOUT_S");

    /* retry base at most the retry max */
    setenv("REQRUN_RETRY_BASE_MS", "60000", 1);
    load_ok(&cfg);
    rr_config_free(&cfg);
    load_refused("REQRUN_RETRY_BASE_MS", "60001", "REQRUN_RETRY_BASE_MS");
    setenv("REQRUN_RETRY_BASE_MS", "2000", 1);
    load_refused("REQRUN_RETRY_MAX_MS", "1999", "REQRUN_RETRY_MAX_MS");
    unsetenv("REQRUN_RETRY_BASE_MS");

    /* the inbox prefix is a literal subject */
    setenv("REQRUN_NATS_INBOX_PREFIX", "_INBOX_reqrun-ingress.a1", 1);
    load_ok(&cfg);
    assert_string_equal(cfg.nats_inbox_prefix, "_INBOX_reqrun-ingress.a1");
    rr_config_free(&cfg);
    static const char *const bad_prefixes[] = {
        "_INBOX.>", "_INBOX.*", "a..b", ".a", "a.", "a b", "a\tb",
        "x2345678901234567890123456789012345678901234567890123456789012345",
    };
    for (size_t i = 0; i < sizeof bad_prefixes / sizeof bad_prefixes[0]; i++)
        load_refused("REQRUN_NATS_INBOX_PREFIX", bad_prefixes[i], "REQRUN_NATS_INBOX_PREFIX");
    unsetenv("REQRUN_NATS_INBOX_PREFIX");
}

static void test_api_key_file(void **state)
{
    (void)state;
    char *path = write_temp("  \tsk-from-file-123 \r\n\n");
    setenv("REQRUN_UPSTREAM_API_KEY_FILE", path, 1);
    setenv("REQRUN_UPSTREAM_API_KEY", "sk-from-env", 1); /* the file is preferred */
    rr_config cfg;
    load_ok(&cfg);
    unlink(path); /* before asserting: a failure must not leave the file behind */
    assert_string_equal(cfg.upstream_api_key, "sk-from-file-123");
    assert_string_equal(cfg.upstream_api_key_file, path);
    rr_config_free(&cfg);
    free(path);

    path = write_temp("sk-no-newline");
    setenv("REQRUN_UPSTREAM_API_KEY_FILE", path, 1);
    unsetenv("REQRUN_UPSTREAM_API_KEY");
    load_ok(&cfg);
    unlink(path);
    free(path);
    assert_string_equal(cfg.upstream_api_key, "sk-no-newline");
    rr_config_free(&cfg);

    load_refused("REQRUN_UPSTREAM_API_KEY_FILE", "/nonexistent/rr-key",
                 "REQRUN_UPSTREAM_API_KEY_FILE");
    /* an empty key file is a mistake, not a key */
    path = write_temp(" \n");
    load_refused("REQRUN_UPSTREAM_API_KEY_FILE", path, "REQRUN_UPSTREAM_API_KEY_FILE");
    unlink(path);
    free(path);
}

static void test_log_hides_secrets(void **state)
{
    (void)state;
    char *path = write_temp("sk-file-secret-6\n");
    setenv("REQRUN_NATS_PASSWORD", "nats-secret-1", 1);
    setenv("REQRUN_UPSTREAM_API_KEY", "sk-env-secret-2", 1);
    setenv("REQRUN_WEBHOOK_SECRET", "whsec_c2VjcmV0LTM=", 1);
    setenv("REQRUN_MOCK_API_KEY", "mock-secret-4", 1);
    setenv("REQRUN_UPSTREAM_API_KEY_FILE", path, 1);
    /* Credentials inside a URL are secrets too. */
    setenv("REQRUN_NATS_URL",
           "nats://alice:url-secret-5@nats-0:4222,nats://bob:url-secret-7@nats-1:4222", 1);
    setenv("REQRUN_UPSTREAM_URL", "https://tok-secret-8@proxy.example.com/v1?k=v", 1);
    setenv("REQRUN_MAX_ATTEMPTS", "7", 1);
    rr_config cfg;
    load_ok(&cfg);
    char *log = capture_log(&cfg);
    rr_config_free(&cfg);
    unlink(path);
    free(path);

    /* the capture works: ordinary values are there */
    assert_non_null(strstr(log, "REQRUN_MAX_ATTEMPTS=7"));
    assert_non_null(strstr(log, "REQRUN_LISTEN=127.0.0.1:8080"));
    assert_non_null(strstr(log, "@nats-0:4222,nats://"));
    assert_non_null(strstr(log, "@nats-1:4222 "));
    assert_non_null(strstr(log, "@proxy.example.com/v1?k=v "));
    /* secrets are not */
    static const char *const secrets[] = {"nats-secret-1", "sk-env-secret-2", "c2VjcmV0LTM",
                                          "mock-secret-4", "url-secret-5",    "sk-file-secret-6",
                                          "url-secret-7", "tok-secret-8"};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        if (strstr(log, secrets[i]) != NULL)
            fail_msg("secret %s in the log line: %s", secrets[i], log);
    }
    assert_non_null(strstr(log, "REQRUN_NATS_PASSWORD=(set)"));
    assert_non_null(strstr(log, "REQRUN_UPSTREAM_API_KEY=(set)"));
    assert_non_null(strstr(log, "REQRUN_WEBHOOK_SECRET=(set)"));
    assert_non_null(strstr(log, "REQRUN_MOCK_API_KEY=(set)"));
    /* one line, JSON */
    assert_int_equal(log[0], '{');
    assert_non_null(strchr(log, '\n'));
    assert_int_equal(strchr(log, '\n')[1], '\0');
    free(log);

    /* Unset secrets show as (unset). */
    clear_reqrun_env();
    load_ok(&cfg);
    log = capture_log(&cfg);
    rr_config_free(&cfg);
    assert_non_null(strstr(log, "REQRUN_NATS_PASSWORD=(unset)"));
    assert_non_null(strstr(log, "REQRUN_UPSTREAM_API_KEY=(unset)"));
    assert_non_null(strstr(log, "REQRUN_WEBHOOK_SECRET=(unset)"));
    /* A URL without credentials is shown as is. */
    assert_non_null(strstr(log, "REQRUN_NATS_URL=nats://127.0.0.1:4222"));
    free(log);
}

static void test_help(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    setenv("REQRUN_NATS_PASSWORD", "help-must-not-show-this", 1);
    rr_config_print_help(f, "reqrun-test", "Test binary.");
    fclose(f);
    assert_non_null(text);
    assert_non_null(strstr(text, "reqrun-test"));
    assert_non_null(strstr(text, "--help"));
    assert_null(strstr(text, "help-must-not-show-this"));
    for (size_t i = 0; i < N_DESIGN_VARS; i++) {
        /* the name as a whole word at the start of an entry */
        char needle[96];
        snprintf(needle, sizeof needle, "  %s ", design_vars[i]);
        if (strstr(text, needle) == NULL)
            fail_msg("--help does not list %s", design_vars[i]);
    }
    /* defaults are shown next to the names */
    static const struct {
        const char *name, *def;
    } d[] = {{"REQRUN_MAX_ATTEMPTS", "5"},
             {"REQRUN_RECORD_TTL_S", "86400"},
             {"REQRUN_NATS_URL", "nats://127.0.0.1:4222"},
             {"REQRUN_MAX_BODY_BYTES", "4194304"}};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        char needle[96];
        snprintf(needle, sizeof needle, "  %s ", d[i].name);
        const char *line = strstr(text, needle);
        assert_non_null(line);
        const char *eol = strchr(line, '\n');
        assert_non_null(eol);
        char def[64];
        snprintf(def, sizeof def, "default %s", d[i].def);
        const char *at = strstr(line, def);
        assert_true(at != NULL && at < eol);
    }
    free(text);

    char *a1[] = {"bin", "--help", NULL};
    char *a2[] = {"bin", "-h", NULL};
    char *a3[] = {"bin", "--verbose", "x", NULL};
    char *a4[] = {"bin", NULL};
    assert_true(rr_config_wants_help(2, a1));
    assert_true(rr_config_wants_help(2, a2));
    assert_false(rr_config_wants_help(3, a3));
    assert_false(rr_config_wants_help(1, a4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values_parsed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bools, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_numeric, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_field_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_hides_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
